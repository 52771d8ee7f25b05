"""labs/reference.py's solutions: the local target's `fraudlab` commands for each lab (what
`make lab-N-solution TARGET=local` runs), run as make runs them (.venv-labs), an unknown lab
refused with the list of labs, and the cluster solution of lab 09 ending with the replay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import LABS, ROOT, lab_env, load_lab_module

LABS_PYTHON = ROOT / ".venv-labs" / "bin" / "python"
FRAUDLAB = ".venv/bin/fraudlab"
FRESH = [
    f"{FRAUDLAB} down   # a failure is ignored",
    f"{FRAUDLAB} demo",
    f"{FRAUDLAB} up",
]
# What the Makefile's lab-%-solution rule ran before it called reference.py (the same commands).
LOCAL_PLANS = {
    0: FRESH,
    2: [f"{FRAUDLAB} simulate"],
    3: [f"{FRAUDLAB} pipeline"],
    4: [FRESH[0], "make --no-print-directory feast", FRESH[1], f"{FRAUDLAB} up --features"],
    5: FRESH,
    6: FRESH,
    7: [
        *FRESH,
        "env FRAUD_LAB_CODE=labs/07-testing-ml-systems/starter "
        f"{FRAUDLAB} train --model logistic_regression --broken",
    ],
    8: [
        "make --no-print-directory actionlint",
        "make --no-print-directory test-fast PYTEST_ARGS=--junitxml=test-artifacts/test-fast.xml",
        "env FRAUD_LAB_CODE=labs/08-packaging-and-ci/starter bash scripts/podman-image.sh",
    ],
    9: FRESH,
    10: [
        *FRESH[:2],
        f"{FRAUDLAB} up --canary",
        f"{FRAUDLAB} replay --url http://127.0.0.1:8085",
        f"{FRAUDLAB} route drill",
    ],
    13: [
        FRESH[0],
        "env FRAUD_DRIFT_START=2018-08-01 FRAUD_DRIFT_EXTRA_TERMINALS=10 FRAUD_DRIFT_AMOUNT_FACTOR=1.6 "
        f"FRAUD_DRIFT_NIGHT_CUSTOMERS=20 {FRAUDLAB} demo",
        f"{FRAUDLAB} up --monitoring",
        f"{FRAUDLAB} replay --day 2018-08-10",
        "wait-for-a-retraining-cycle",
    ],
    14: [
        *FRESH,
        f"env FRAUD_LAB_CODE=labs/14-distributed-training-ray/starter {FRAUDLAB} tune --model lightgbm",
    ],
    15: [*FRESH[:2], f"{FRAUDLAB} up --auth"],
    17: [],  # local mode runs no LLM server: make lab-17-solution only copies the solved module
    18: [
        *FRESH,
        f"env FRAUD_LAB_CODE=labs/18-responsible-ai/starter {FRAUDLAB} replay --day 2018-08-08",
        f"label-the-top-queued-case {FRAUDLAB}",
        f"env FRAUD_LAB_CODE=labs/18-responsible-ai/starter {FRAUDLAB} retrain",
        f"{FRAUDLAB} model-card",
        f"{FRAUDLAB} report --day 2018-08-08",
    ],
}


@pytest.fixture(scope="module")
def reference():
    load_lab_module(0)  # puts labs/ on sys.path
    import reference

    return reference


def solution(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`.venv-labs/bin/python labs/reference.py solution ARGS`, as the Makefile runs it."""
    python = LABS_PYTHON if LABS_PYTHON.exists() else Path(sys.executable)
    return subprocess.run(
        [str(python), str(LABS / "reference.py"), "solution", *args],
        cwd=ROOT,
        env=env or lab_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("lab", sorted(LOCAL_PLANS))
def test_local_solution_plan(lab):
    result = solution(f"{lab:02d}", "--target", "local", "--dry-run", "--fraudlab", FRAUDLAB)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == LOCAL_PLANS[lab]


def test_lab11_local_solution_makes_data_only_without_a_replay(tmp_path):
    args = ("11", "--target", "local", "--dry-run", "--fraudlab", FRAUDLAB, "--day", "2018-08-09")
    env = lab_env({"FRAUD_DATA_DIR": str(tmp_path)})
    monitoring = [f"{FRAUDLAB} up --monitoring", f"{FRAUDLAB} replay --day 2018-08-09"]
    fresh = solution(*args, env=env)
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.splitlines() == [*FRESH[:2], *monitoring]
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "replay-2018-08-08.json").write_text("{}")
    replayed = solution(*args, env=env)
    assert replayed.stdout.splitlines() == [FRESH[0], *monitoring]


def test_lab12_local_solution_renders_the_learners_rules_then_stops_the_model(tmp_path):
    """The monitoring stack with the starter's burnrate.py (the solution copied there first), the
    demo's data only without a replay, then the fault until FraudModelDown reaches Alertmanager."""
    args = ("12", "--target", "local", "--dry-run", "--fraudlab", FRAUDLAB)
    env = lab_env({"FRAUD_DATA_DIR": str(tmp_path)})
    up = f"env FRAUD_LAB_CODE=labs/12-alerting-and-incidents/starter {FRAUDLAB} up --monitoring"
    fault = "stop-the-model-until-FraudModelDown-fires"
    fresh = solution(*args, env=env)
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.splitlines() == [*FRESH[:2], up, fault]
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "replay-2018-08-08.json").write_text("{}")
    assert solution(*args, env=env).stdout.splitlines() == [FRESH[0], up, fault]


def test_local_plan_defaults(reference):
    """Without --day, fraudlab's own default day; without --fraudlab, this repository's .venv."""
    assert reference.local_plan(11, "fl", None, replayed=True)[-1] == (["fl", "replay"], False)
    result = solution("2", "--target", "local", "--dry-run")
    assert result.stdout.splitlines() == [f"{ROOT}/.venv/bin/fraudlab simulate"]


@pytest.mark.parametrize("target", ["local", "cluster"])
def test_a_lab_without_a_solution_is_refused_with_the_labs(target):
    result = solution("1", "--target", target)
    assert result.returncode == 2
    assert result.stderr.strip() in (
        "error: lab 01 has no local solution; labs: 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18",
        "error: no cluster solution for lab 01; labs: 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18",
    ), result.stderr
    assert result.stdout == ""


def test_local_solution_runs_the_commands_in_order(tmp_path):
    """A stand-in fraudlab that records its calls: `down` may fail, any other failure stops."""
    calls = tmp_path / "calls"
    fake = tmp_path / "fraudlab"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        'case "$1" in down) exit 1 ;; demo) exit "${FAIL_DEMO:-0}" ;; esac\n'
    )
    fake.chmod(0o755)
    env = lab_env({"FRAUD_DATA_DIR": str(tmp_path / "data")})
    ok = solution("9", "--target", "local", "--fraudlab", str(fake), env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert calls.read_text().splitlines() == ["down", "demo", "up"]
    assert ok.stdout.splitlines()[-1] == (
        "Lab 09 is at its known-good end state. Check it: make lab-9 TARGET=local"
    )
    calls.unlink()
    failed = solution(
        "6", "--target", "local", "--fraudlab", str(fake), env={**env, "FAIL_DEMO": "3"}
    )
    assert failed.returncode == 1
    assert calls.read_text().splitlines() == ["down", "demo"]
    assert f"error: `{fake} demo` failed (exit status 3)" in failed.stderr
    missing = solution("2", "--target", "local", "--fraudlab", str(tmp_path / "nope"), env=env)
    assert missing.returncode == 1
    assert f"error: no {tmp_path / 'nope'}; run: make install" in missing.stderr


def test_lab09_cluster_solution_ends_with_the_replay(reference, monkeypatch):
    ran = []
    monkeypatch.setattr(
        reference, "cluster_solution", lambda args: ran.append(("deploy", args.lab))
    )
    monkeypatch.setattr(
        reference.subprocess,
        "run",
        lambda cmd, **kw: ran.append((cmd, kw.get("cwd"))) or subprocess.CompletedProcess(cmd, 0),
    )
    reference.main(["solution", "9", "--day", "2018-08-09"])
    assert ran == [
        ("deploy", 9),
        (["make", "--no-print-directory", "replay-cluster", "DAY=2018-08-09"], reference.ROOT),
    ]
    ran.clear()
    reference.main(["solution", "6"])
    assert ran == [("deploy", 6)]


def test_the_makefile_leaves_the_plans_to_reference_py():
    lines = (ROOT / "Makefile").read_text().split("\nlab-%-solution:", 1)[1].split("\n\n", 1)[0]
    assert (
        '$(LABS_BIN)/python labs/reference.py --overlay "$(OVERLAY)" solution "$$n" --target "$(TARGET)"'
        in lines
    )
    assert "fraudlab demo" not in lines and "replay-cluster" not in lines and "case" not in lines


def test_lab13_scenario_is_the_readmes(reference):
    """The local solution drifts the data and replays the alert's day exactly as the lab's steps
    tell the learner to, and its drill fires the alert at kube-prometheus-stack's Alertmanager."""
    readme = (LABS / "13-continuous-training" / "README.md").read_text()
    for name, value in reference.LAB13_DRIFT.items():
        assert f"{name}={value}" in readme, name
    assert f"make replay DAY={reference.LAB13_ALERT_DAY}" in readme
    versions = (ROOT / "scripts" / "versions.sh").read_text()
    namespace, target = reference.ALERTMANAGER
    assert f'KPS_NAMESPACE="{namespace}"' in versions
    assert 'KPS_RELEASE="kube-prometheus-stack"' in versions
    assert target == "statefulset/alertmanager-kube-prometheus-stack-alertmanager"
    assert f"-n {namespace} exec {target}" in readme


def test_lab13_local_solution_waits_for_the_controllers_cycle(reference, tmp_path, monkeypatch):
    """The wait step reads the controller's /status (a real HTTP server here): 0 after a cycle
    without an error, 1 after a failed cycle or when the controller does not answer."""
    import http.server
    import json
    import threading

    from reference_app.launchers.stack import free_port

    answers = [{"history": []}, {"history": [{"outcome": {"decision": "challenger"}}]}]

    class Status(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the handler's name in http.server
            body = json.dumps(answers[0] if len(answers) == 1 else answers.pop(0)).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Status)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "stack.json").write_text(
        json.dumps({"ct-controller": {"url": f"http://127.0.0.1:{port}"}})
    )
    monkeypatch.setenv("FRAUD_DATA_DIR", str(tmp_path))
    try:
        assert reference.wait_for_a_cycle(timeout_s=30) == 0  # after one empty answer
        answers[:] = [{"history": [{"outcome": {"error": "DatasetError: no features"}}]}]
        assert reference.wait_for_a_cycle(timeout_s=30) == 1
    finally:
        server.shutdown()
        server.server_close()
    assert reference.wait_for_a_cycle(timeout_s=30) == 1  # nothing answers any more


def test_lab14_cluster_solution_runs_a_fresh_rayjob(reference, monkeypatch):
    """Lab 14's solution installs KubeRay, deletes any RayJob `tune` before applying the one with
    the solved folds.py (KubeRay never reruns a finished RayJob), then waits for Complete."""
    calls: list[tuple] = []
    monkeypatch.setattr(reference, "preflight", lambda: None)
    monkeypatch.setattr(reference, "render", lambda overlay: [])
    monkeypatch.setattr(
        reference,
        "select",
        lambda objects, parts: [{"kind": "Part", "metadata": {"name": p}} for p in parts],
    )
    monkeypatch.setattr(
        reference,
        "exercise_objects",
        lambda objects, lab: [{"kind": "RayJob", "metadata": {"name": "tune"}, "lab": lab}],
    )
    monkeypatch.setattr(reference, "install_releases", lambda *n: calls.append(("helm", *n)))
    monkeypatch.setattr(reference, "kubectl", lambda *a, **kw: calls.append(("kubectl", *a)))
    monkeypatch.setattr(reference, "apply", lambda objects: calls.append(("apply", objects)))
    monkeypatch.setattr(reference, "wait", lambda waits: calls.append(("wait", waits)))
    reference.main(["solution", "14"])
    assert calls[0] == ("helm", *reference.RELEASES_FOR(14)) and "kuberay-operator" in calls[0]
    delete = calls.index(
        ("kubectl", "-n", "fraud-lab", "delete", "rayjob", "tune", "--ignore-not-found")
    )
    applied, waited = calls[delete + 1], calls[delete + 2]
    assert applied[0] == "apply" and applied[1][-1] == {
        "kind": "RayJob",
        "metadata": {"name": "tune"},
        "lab": 14,
    }
    assert {"kind": "Part", "metadata": {"name": "tuning-access"}} in applied[1]
    assert waited == (
        "wait",
        [["--for=jsonpath={.status.jobDeploymentStatus}=Complete", "rayjob/tune"]],
    )
    assert reference.EXERCISE_WORKLOADS[14] == ("RayJob", "tune", "ray-head")


def test_optional_parts_are_the_objects_make_deploy_leaves_out(reference, tmp_path):
    """OPTIONAL_PARTS names exactly the parts' objects labelled fraud-lab.io/optional in the kind
    overlay (what scripts/deploy.sh filters out; their NetworkPolicies are in no part), each with
    the lab whose stage applies it."""
    from tests.static.k8s import prepare_manifests, render

    labelled = {
        (o["kind"], o["metadata"]["name"])
        for o in render("kind", prepare_manifests(tmp_path))
        if "fraud-lab.io/optional" in (o["metadata"].get("labels") or {})
    }
    in_parts = {entry[:2] for entries in reference.PARTS.values() for entry in entries}
    optional = {e[:2] for part in reference.OPTIONAL_PARTS for e in reference.PARTS[part]}
    assert optional == labelled & in_parts
    for part, lab in reference.OPTIONAL_PARTS.items():
        assert any(part in parts for stage_lab, parts, _ in reference.STAGES if stage_lab == lab)


@pytest.mark.parametrize("lab", [11, 13, 15, 16, 18])
def test_later_labs_build_on_no_optional_part_of_another_lab(reference, lab):
    assert not [
        p for p in reference.prerequisites(lab) if reference.OPTIONAL_PARTS.get(p, lab) != lab
    ]


def test_a_later_labs_solution_skips_the_optional_stages_and_their_waits(reference, monkeypatch):
    """Lab 13's solution applies no feature store, canary or Ray cluster, and waits for none."""
    calls: list[tuple] = []
    monkeypatch.setattr(reference, "preflight", lambda: None)
    monkeypatch.setattr(reference, "render", lambda overlay: [])
    monkeypatch.setattr(
        reference,
        "select",
        lambda objects, parts: [{"kind": "Part", "metadata": {"name": p}} for p in parts],
    )
    monkeypatch.setattr(reference, "exercise_objects", lambda objects, lab: [])
    monkeypatch.setattr(reference, "install_releases", lambda *n: None)
    monkeypatch.setattr(reference, "kubectl", lambda *a, **kw: None)
    monkeypatch.setattr(reference, "apply", lambda objects: calls.append(("apply", objects)))
    monkeypatch.setattr(reference, "wait", lambda waits: calls.append(("wait", waits)))
    reference.main(["solution", "13"])
    applied = {o["metadata"]["name"] for c in calls if c[0] == "apply" for o in c[1]}
    waited = [w for c in calls if c[0] == "wait" for w in c[1]]
    assert applied.isdisjoint(reference.OPTIONAL_PARTS), applied
    assert {"mlflow", "serving", "continuous-training"} <= applied, applied
    assert not [w for w in waited if "feature" in w[-1] or "canary" in w[-1] or "rayjob" in w[-1]]
