"""Lab 15 · Security, privacy, compliance: what the static tier (tests/static/test_policies.py)
asks of the manifests, checked live.

Cluster: Pod Security restricted is enforced (the namespace's labels, a privileged pod refused
in a server-side dry run that creates nothing, every running pod within it); the default-deny
NetworkPolicies hold (a probe pod that no policy allows reaches nothing, the allowed paths work,
the model's repository API refuses a caller without the token); each ServiceAccount may do what
its table row says and no more (SubjectAccessReviews, as `kubectl auth can-i --as=…`); no
credential sits in a rendered manifest or in the image's config and history; the model inventory
(your ServiceAccount, Role, RoleBinding and NetworkPolicy) ran. Local: every server listens on
127.0.0.1 only, MLflow asks for a user, no log file holds a credential. Both: your redact.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import labkit
from labkit import NAMESPACE, hint, kubectl

LAB = "labs/15-security-and-compliance"
APPLY = kubectl(f"apply -k {LAB}/starter")
PROBE = "netpol-probe"
APPLY_PROBE = kubectl(f"apply -k {LAB}/probe")
INVENTORY = "model-inventory"
INVENTORY_POLICY = "kubernetes-api-model-inventory"
API_SERVER_EGRESS = {("10.96.0.0/16", 443), ("172.16.0.0/12", 6443)}
SELDON = "machinelearning.seldon.io/seldondeployments"
# What each ServiceAccount may do (✓) and may not (✗): `kubectl auth can-i VERB RESOURCE[/NAME]
# --as=system:serviceaccount:fraud-lab:ACCOUNT`. A resource is "group/plural" ("plural" in the
# core group); NAME is one object (None: a request without a name, such as list or create).
# --8<-- [start:permissions]
PERMISSIONS: list[tuple[str, str, str, str | None, bool]] = [
    (INVENTORY, "list", SELDON, None, True),
    (INVENTORY, "get", SELDON, "fraud-detector", True),
    (INVENTORY, "patch", SELDON, "fraud-detector", False),
    ("retrain", "patch", SELDON, "fraud-detector", True),
    ("retrain", "patch", SELDON, "fraud-detector-canary", False),
    ("retrain", "delete", SELDON, "fraud-detector", False),
    ("ct-controller", "create", "argoproj.io/workflows", None, True),
    ("ct-controller", "delete", "argoproj.io/workflows", None, False),
    ("slo-rules", "patch", "monitoring.coreos.com/prometheusrules", "fraud-lab-slo", True),
    ("slo-rules", "patch", "monitoring.coreos.com/prometheusrules", "fraud-lab", False),
    ("pipeline", "create", "argoproj.io/workflowtaskresults", None, True),
    ("pipeline", "create", "pods", None, False),
    ("fraud-detector", "list", "pods", None, False),
    ("mlflow", "list", "configmaps", None, False),
    ("default", "list", "pods", None, False),
]
# Never, for any ServiceAccount of fraud-lab: read a Secret, start a pod, grant itself a Role.
FORBIDDEN_TO_ALL = [
    ("get", "secrets"),
    ("list", "secrets"),
    ("create", "pods"),
    ("create", "rbac.authorization.k8s.io/rolebindings"),
]
# --8<-- [end:permissions]
# The probe (labs/15-security-and-compliance/probe) may reach none of these; names are Services.
DENIED_TO_THE_PROBE = [("mlflow", 5000), ("postgres", 5432), ("fraud-detector-nodeport", 9000)]
# Allowed paths, tried from inside the workloads that own them: (pod selector, container, targets).
ALLOWED_PATHS = [
    ("app.kubernetes.io/name=mlflow", "mlflow", [("postgres", 5432), ("s3", 8333)]),
    (labkit.MODEL_POD_SELECTOR, labkit.MODEL_CONTAINER, [("mlflow", 5000)]),
]
REPOSITORY_INDEX = "/v2/repository/index"
SECRETS_DIR = labkit.MLFLOW_SECRETS_FILE.parent


def split(resource: str) -> tuple[str, str]:
    """("group", "plural") of "group/plural"; ("", "plural") for the core group."""
    group, _, plural = resource.rpartition("/")
    return group, plural


# --- kind mode: Pod Security -------------------------------------------------------------------------
@pytest.mark.cluster("reads the namespace")
def test_namespace_enforces_restricted(k8s):
    """Namespace `fraud-lab` enforces, warns and audits Pod Security `restricted`."""
    labels = ((k8s.namespace(NAMESPACE) or {}).get("metadata") or {}).get("labels") or {}
    found = {
        mode: labels.get(f"pod-security.kubernetes.io/{mode}")
        for mode in ("enforce", "warn", "audit")
    }
    assert set(found.values()) == {"restricted"}, hint(
        "enforce, warn and audit: restricted",
        ", ".join(f"{m}: {v}" for m, v in found.items()),
        kubectl("apply -k manifests/base/namespaces"),
    )


@pytest.mark.cluster("asks the API server")
@pytest.mark.needs("test_namespace_enforces_restricted")
def test_privileged_pod_is_refused(k8s):
    """A privileged pod (root, host network, hostPath) is refused in `fraud-lab`: a server-side dry run, which creates nothing."""
    refusal = k8s.dry_run_pod(labkit.privileged_pod())
    assert refusal is not None and "PodSecurity" in refusal, hint(
        'a refusal: violates PodSecurity "restricted:…"',
        "admitted (the dry run would have created it)" if refusal is None else refusal,
        kubectl(
            f"-n {NAMESPACE} run lab15-dry-run --image=busybox:1.37 --dry-run=server "
            '--overrides=\'{"spec":{"hostNetwork":true}}\''
        ),
    )


@pytest.mark.cluster("reads the pods")
def test_every_pod_is_restricted(k8s):
    """Every pod running in `fraud-lab` meets `restricted`: non-root, no privilege escalation, all capabilities dropped, a seccomp profile, no host access."""
    problems = [p for pod in k8s.pods(NAMESPACE, "") for p in labkit.restricted_problems(pod)]
    assert not problems, hint(
        "no pod outside restricted",
        "; ".join(problems[:5]) + (f" (+{len(problems) - 5})" if len(problems) > 5 else ""),
        kubectl(f"-n {NAMESPACE} get pod {problems[0].split('/')[0].split(':')[0]} -o yaml"),
    )


# --- kind mode: NetworkPolicies -----------------------------------------------------------------------
@pytest.mark.cluster("reads the NetworkPolicies")
def test_default_deny_is_in_place(k8s):
    """NetworkPolicy `default-deny` selects every pod of `fraud-lab` for Ingress and Egress with no rule, and `allow-dns` opens DNS only."""
    deny = (k8s.networkpolicy("default-deny") or {}).get("spec") or {}
    dns = (k8s.networkpolicy("allow-dns") or {}).get("spec") or {}
    problems = []
    if deny.get("podSelector") not in ({}, None) or set(deny.get("policyTypes") or []) != {
        "Ingress",
        "Egress",
    }:
        problems.append(f"default-deny: {deny or 'missing'}")
    elif deny.get("ingress") or deny.get("egress"):
        problems.append("default-deny has rules")
    ports = {p.get("port") for rule in dns.get("egress") or [] for p in rule.get("ports") or []}
    if ports != {53}:
        problems.append(f"allow-dns opens ports {sorted(ports, key=str) or 'none'}")
    assert not problems, hint(
        "default-deny (podSelector {}, Ingress+Egress, no rules); allow-dns to port 53 only",
        "; ".join(problems),
        "make deploy   (it applies manifests/base/security with the rest of the system)",
    )


def probe_pod(k8s) -> str | None:
    running = [
        p for p in k8s.pods(NAMESPACE, f"app.kubernetes.io/name={PROBE}") if labkit.pod_ready(p)
    ]
    return running[0]["metadata"]["name"] if running else None


def run_probe(pod: str, container: str, targets: list[tuple[str, int]]) -> dict[str, str]:
    result = labkit.run_in(
        labkit.pod_host(pod, container), labkit.probe_command(targets), seconds=45
    )
    return (
        json.loads(result.stdout.strip().splitlines()[-1])
        if result.rc == 0
        else {"probe": (result.stderr or result.stdout).strip()[-200:]}
    )


@pytest.mark.cluster("runs the probe in its pod")
@pytest.mark.needs("test_default_deny_is_in_place")
def test_probe_reaches_nothing(k8s):
    """A pod no policy allows (`netpol-probe`) reaches neither MLflow :5000, PostgreSQL :5432 nor the model :9000 (its repository API included): each connection times out."""
    pod = probe_pod(k8s)
    assert pod, hint(
        f"a Running pod labelled app.kubernetes.io/name={PROBE} (the lab's step 3)",
        "none",
        APPLY_PROBE,
    )
    found = run_probe(pod, PROBE, DENIED_TO_THE_PROBE)
    leaks = {k: v for k, v in found.items() if v != "timeout"}
    assert not leaks, hint(
        "timeout for " + ", ".join(f"{h}:{p}" for h, p in DENIED_TO_THE_PROBE),
        ", ".join(f"{k} {v}" for k, v in leaks.items()),
        kubectl(f"-n {NAMESPACE} get networkpolicy")
        + "   ('no DNS answer': the probe cannot tell; 'open': a policy lets it through)",
    )


@pytest.mark.cluster("runs the probe in the workloads' pods")
@pytest.mark.needs("test_default_deny_is_in_place")
def test_allowed_paths_work(k8s):
    """The allowed paths work under the default deny: MLflow reaches PostgreSQL :5432 and the S3 store :8333, the model reaches MLflow :5000."""
    problems = []
    for selector, container, targets in ALLOWED_PATHS:
        pods = [p for p in k8s.pods(NAMESPACE, selector) if labkit.pod_ready(p)]
        if not pods:
            problems.append(f"no ready pod {selector}")
            continue
        found = run_probe(pods[0]["metadata"]["name"], container, targets)
        problems += [f"{container} → {k}: {v}" for k, v in found.items() if v != "open"]
    assert not problems, hint(
        "open: mlflow → postgres:5432, s3:8333; fraud-detector → mlflow:5000",
        "; ".join(problems),
        kubectl(f"-n {NAMESPACE} describe networkpolicy mlflow postgres s3 mlflow-clients"),
    )


@pytest.mark.cluster("calls the model through its NodePort")
def test_repository_api_needs_the_token(endpoints):
    """The model's repository API refuses a caller without the admin token, even on the allowed path (NodePort): POST /v2/repository/index → 401 or 403."""
    import httpx

    url = f"{endpoints.model}{REPOSITORY_INDEX}"
    try:
        status: int | str = httpx.post(url, json={}, timeout=labkit.HTTP_TIMEOUT_S).status_code
    except httpx.HTTPError as err:
        status = labkit.describe_error(err)
    assert status in (401, 403), hint(
        "401 or 403",
        f"{status}",
        f"curl -s -i -X POST {url} -d '{{}}'   (reference_app/serving/gate.py closes it)",
    )


# --- kind mode: what each ServiceAccount may do ---------------------------------------------------------
def can(k8s, account: str, verb: str, resource: str, name: str | None = None) -> bool:
    group, plural = split(resource)
    return k8s.can_i(account, verb, plural, group, name)


def can_i_command(account: str, verb: str, resource: str, name: str | None) -> str:
    group, plural = split(resource)
    what = f"{plural}.{group}" if group else plural
    return kubectl(
        f"-n {NAMESPACE} auth can-i {verb} {what}{'/' + name if name else ''} "
        f"--as=system:serviceaccount:{NAMESPACE}:{account}"
    )


@pytest.mark.cluster("asks the API server (SubjectAccessReview)")
def test_model_inventory_may_read_seldondeployments_only(k8s):
    """ServiceAccount `model-inventory` may get and list SeldonDeployments, and not change them (your Role and RoleBinding)."""
    rows = [r for r in PERMISSIONS if r[0] == INVENTORY]
    wrong = [r for r in rows if can(k8s, *r[:4]) != r[4]]
    assert not wrong, hint(
        "; ".join(
            f"{v} {res.split('/')[-1]}{'/' + n if n else ''}: {'yes' if ok else 'no'}"
            for _, v, res, n, ok in rows
        ),
        "; ".join(
            f"{v} {res.split('/')[-1]}{'/' + n if n else ''}: {'no' if ok else 'yes'}"
            for _, v, res, n, ok in wrong
        ),
        can_i_command(*wrong[0][:4]) + f"   (then: {APPLY})",
    )


@pytest.mark.cluster("asks the API server (SubjectAccessReview)")
def test_service_accounts_match_the_permission_table(k8s):
    """Each ServiceAccount may do what its row of the lab's table says (retrain patches fraud-detector only, ct-controller creates Workflows, …) and no more."""
    wrong = [r for r in PERMISSIONS if r[0] != INVENTORY and can(k8s, *r[:4]) != r[4]]
    assert not wrong, hint(
        "every row of PERMISSIONS in labs/15-security-and-compliance/test_lab.py",
        "; ".join(
            f"{a} {'may' if not ok else 'may not'} {v} {res}{'/' + n if n else ''}"
            for a, v, res, n, ok in wrong
        ),
        can_i_command(*wrong[0][:4]),
    )


@pytest.mark.cluster("asks the API server (SubjectAccessReview)")
def test_no_service_account_reads_secrets(k8s):
    """No ServiceAccount of `fraud-lab` may read Secrets, create pods or bind itself a Role."""
    found = [
        (account, verb, resource)
        for account in k8s.service_accounts()
        for verb, resource in FORBIDDEN_TO_ALL
        if can(k8s, account, verb, resource)
    ]
    assert not found, hint(
        "no: " + ", ".join(f"{v} {r}" for v, r in FORBIDDEN_TO_ALL),
        "; ".join(f"{a} may {v} {r}" for a, v, r in found),
        can_i_command(*found[0], None) if found else None,
    )


# --- kind mode: your model inventory --------------------------------------------------------------------
@pytest.mark.cluster("reads the ServiceAccount and the NetworkPolicy")
def test_model_inventory_account_and_policy(k8s):
    """ServiceAccount `model-inventory` mounts its token (the inventory calls the API), and NetworkPolicy `kubernetes-api-model-inventory` lets its pods reach the API server only: 10.96.0.0/16:443 and 172.16.0.0/12:6443."""
    account = k8s.serviceaccount(INVENTORY) or {}
    policy = (k8s.networkpolicy(INVENTORY_POLICY) or {}).get("spec") or {}
    problems = []
    if not account:
        problems.append(f"no ServiceAccount {INVENTORY}")
    elif account.get("automountServiceAccountToken") is False:
        problems.append("automountServiceAccountToken: false (no token, no API)")
    selector = (policy.get("podSelector") or {}).get("matchLabels") or {}
    if selector.get("app.kubernetes.io/name") != INVENTORY:
        problems.append(f"podSelector {selector or 'missing'}")
    rules = {
        (peer.get("ipBlock", {}).get("cidr"), port.get("port"))
        for rule in policy.get("egress") or []
        for peer in rule.get("to") or [{}]
        for port in rule.get("ports") or [{}]
    }
    if rules != API_SERVER_EGRESS:
        problems.append(
            "egress " + (", ".join(f"{c}:{p}" for c, p in sorted(rules, key=str)) or "none")
        )
    assert not problems, hint(
        "token mounted; egress 10.96.0.0/16:443 and 172.16.0.0/12:6443, nothing else",
        "; ".join(problems),
        APPLY,
    )


EXERCISE_WORKLOAD = f"CronJob {INVENTORY}"
"""The workload that runs the learner's redact.py (mounted from its ConfigMap at /lab-code)."""


def exercise_pod(k8s) -> dict:
    """The pod spec of `EXERCISE_WORKLOAD`."""
    return labkit.pod_spec(k8s.cronjob(INVENTORY) or {})


@pytest.mark.cluster("reads the CronJob")
def test_inventory_runs_your_redact(k8s):
    """The model inventory CronJob runs your redact.py: its ConfigMap (`lab-code-15-…`) mounted at /lab-code, FRAUD_LAB_CODE=/lab-code."""
    labkit.assert_runs_lab_code(k8s, exercise_pod(k8s), 15, "redact.py", APPLY)


@pytest.mark.cluster("reads the Jobs")
@pytest.mark.needs("test_model_inventory_may_read_seldondeployments_only")
def test_inventory_job_succeeded(k8s):
    """The newest Job of CronJob `model-inventory` has succeeded: your Role, RoleBinding and NetworkPolicy let it list SeldonDeployments and read MLflow."""
    jobs = sorted(
        k8s.jobs(f"app.kubernetes.io/name={INVENTORY}"),
        key=lambda j: j["metadata"].get("creationTimestamp") or "",
    )
    state = labkit.job_state(jobs[-1]) if jobs else None
    assert jobs and labkit.job_succeeded(jobs[-1]), hint(
        "a succeeded Job (run one now: the command below)",
        "no Job yet" if not jobs else f"{jobs[-1]['metadata']['name']}: {state}",
        kubectl(f"-n {NAMESPACE} create job --from=cronjob/{INVENTORY} {INVENTORY}-now")
        if not jobs
        else kubectl(f"-n {NAMESPACE} logs job/{jobs[-1]['metadata']['name']}"),
    )


# --- kind mode: credentials in manifests and image --------------------------------------------------------
def generated_secrets() -> dict[str, str]:
    """NAME → value of every credential make secrets generated (manifests/overlays/kind/secrets)."""
    return {
        f"{path.stem}:{key}": value
        for path in sorted(SECRETS_DIR.glob("*.env"))
        for key, value in labkit.read_env_file(path).items()
        if labkit.security.CREDENTIAL_NAME.search(key)
    }


@pytest.mark.cluster("renders the overlay with its generated secrets")
def test_no_credential_in_rendered_manifests():
    """No generated credential appears in the rendered overlay outside its three Secrets (`kubectl kustomize manifests/overlays/kind`)."""
    secrets = generated_secrets()
    kubectl_bin = next(
        (p for p in (Path(labkit.REPO_ROOT) / ".venv" / "bin" / "kubectl",) if p.exists()),
        "kubectl",
    )
    out = subprocess.run(
        [str(kubectl_bin), "kustomize", str(labkit.REPO_ROOT / "manifests" / "overlays" / "kind")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    import yaml

    class Loader(yaml.SafeLoader):
        """kustomize prints AlertmanagerConfig's `matchType: =` unquoted; YAML 1.1 reads a bare
        `=` as the "value" tag, Kubernetes (YAML 1.2) the string "="."""

    Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: node.value)
    docs = [d for d in yaml.load_all(out.stdout, Loader=Loader) if d] if out.returncode == 0 else []
    leaks = [
        f"{d['kind']}/{d['metadata']['name']}: {name}"
        for d in docs
        if d.get("kind") != "Secret"
        for name in labkit.found_secrets(json.dumps(d), secrets)
    ]
    assert secrets and docs and not leaks, hint(
        "credentials only inside Secrets postgres-credentials, s3-credentials, mlflow-credentials",
        "no generated secrets (make secrets)"
        if not secrets
        else (out.stderr.strip()[-200:] if not docs else "; ".join(leaks)),
        "make secrets && kubectl kustomize manifests/overlays/kind | grep -n <value>",
    )


@pytest.mark.cluster("reads the image from the kind registry")
def test_no_credential_in_the_image():
    """The app image's config and layer history (its build steps) hold no credential: no generated secret, no PASSWORD/TOKEN/SECRET variable with a value."""
    # The image config's `config.Env` and `history[].created_by` (OCI image spec, config.md:
    # https://github.com/opencontainers/image-spec/blob/main/config.md), read from the registry.
    image = labkit.registry_image(labkit.app_image_tag())
    assert not isinstance(image, str), hint(
        "the app image in the kind registry", image, "make images"
    )
    text = "\n".join(image.env + image.history)
    found = labkit.found_secrets(text, generated_secrets())
    found += [
        e.split("=", 1)[0]
        for e in image.env
        if labkit.security.CREDENTIAL_NAME.search(e.split("=", 1)[0]) and e.split("=", 1)[1]
    ]
    assert not found, hint(
        "no credential in Env or history",
        ", ".join(found),
        f"podman image inspect {image.reference} --format '{{{{.Config.Env}}}}'; "
        f"podman image history --no-trunc {image.reference}",
    )


# --- local mode: loopback, MLflow auth, logs --------------------------------------------------------------
def stack() -> dict:
    return json.loads(labkit.stack_file().read_text())


def optional_setting(name: str) -> str | None:
    """A FRAUD_* setting as the app reads it (environment, then .env), or None when unset."""
    try:
        return labkit.setting(name) or None
    except KeyError:  # no default: not set anywhere
        return None


def admin_password() -> str | None:
    return optional_setting("FRAUD_MLFLOW_ADMIN_PASSWORD")


def admin_user() -> str:
    return optional_setting("FRAUD_MLFLOW_ADMIN_USERNAME") or "admin"


@pytest.mark.local("reads the local stack's processes")
def test_servers_listen_on_loopback_only(endpoints):
    """Every server of the local stack (stack.json) listens on 127.0.0.1 only, none on 0.0.0.0 or another address."""
    pids = {
        name: entry["pid"]
        for name, entry in stack().items()
        if isinstance(entry, dict) and "pid" in entry
    }
    sockets = labkit.listening_sockets(pids)
    assert not isinstance(sockets, str), hint("the listening sockets", sockets, "make install")
    exposed = [
        f"{n} {a}" for n, found in sockets.items() for a in found if not labkit.is_loopback(a)
    ]
    empty = [n for n, found in sockets.items() if not found]
    assert not exposed and not empty, hint(
        "every listening socket on 127.0.0.1 (or ::1)",
        "; ".join(exposed + [f"{n}: no listening socket" for n in empty]),
        "ss -ltnp   (then: make down && make up)",
    )


def test_mlflow_refuses_anonymous_requests(endpoints):
    """MLflow answers 401 to a request without credentials (basic auth: `fraudlab up --auth`)."""
    url = f"{endpoints.mlflow}/api/2.0/mlflow/experiments/search?max_results=1"
    status = labkit.http_status(url)
    assert status == 401, hint(
        "401 Unauthorized",
        f"{status}",
        "echo FRAUD_MLFLOW_ADMIN_PASSWORD=$(openssl rand -hex 16) >> .env && make down && .venv/bin/fraudlab up --auth",
    )


@pytest.mark.needs("test_mlflow_refuses_anonymous_requests")
def test_mlflow_admin_signs_in(endpoints):
    """MLflow answers 200 to the admin user with its password (local: FRAUD_MLFLOW_ADMIN_PASSWORD; cluster: the generated Secret)."""
    auth = endpoints.mlflow_auth
    if endpoints.target == "local":
        password = admin_password()
        auth = (admin_user(), password) if password else None
    url = f"{endpoints.mlflow}/api/2.0/mlflow/experiments/search?max_results=1"
    status = labkit.http_status(url, auth=auth) if auth else None
    assert status == 200, hint(
        "200 for the admin user",
        "no FRAUD_MLFLOW_ADMIN_PASSWORD in the environment or .env"
        if auth is None
        else f"{status}",
        "grep FRAUD_MLFLOW_ADMIN_PASSWORD .env   (the password `fraudlab up --auth` started MLflow with)",
    )


@pytest.mark.local("reads the local stack's log files")
def test_no_credential_in_the_logs(endpoints):
    """No log file of the local stack holds the MLflow admin password or the model repository's admin token."""
    state = labkit.data_dir() / "state"
    secrets = {"FRAUD_MLFLOW_ADMIN_PASSWORD": admin_password() or ""}
    token = state / "serving-admin-token"
    if token.is_file():
        secrets["the serving admin token"] = token.read_text().strip()
    logs = sorted({Path(p) for p in endpoints.logs.values()} | set((state / "logs").glob("*.log")))
    found = [
        f"{log.name}: {name}"
        for log in logs
        if log.is_file()
        for name in labkit.found_secrets(log.read_text(errors="replace"), secrets)
    ]
    assert logs and not found, hint(
        "no credential in " + (", ".join(p.name for p in logs) or "the stack's logs"),
        "; ".join(found) or "no log files",
        f"grep -n -F -f <(cut -d= -f2- .env) {state}/logs/*.log",
    )


# --- your Python: the log redaction --------------------------------------------------------------------------
@pytest.mark.parametrize("behaviour", labkit.exercise_behaviours(15))
def test_exercise(exercise, behaviour):
    """Your redact: {behaviour}."""
    labkit.assert_behaviour(exercise, behaviour)
