"""The lab validators under test: run them as learners do (.venv-labs, labs/pytest.ini), and a
small reference local stack (real MLflow and MLServer on free 127.0.0.1 ports) to run them on."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from reference_app.config import Settings
from reference_app.launchers.stack import free_port, start_mlflow
from tests.integration.conftest import REPLAY_DAY, SCALE_ENV, run_fraudlab

ROOT = Path(__file__).resolve().parents[2]
LABS = ROOT / "labs"
LABS_PYTEST = ROOT / ".venv-labs" / "bin" / "pytest"
LAB_DIRS = {int(p.name[:2]): p for p in sorted(LABS.glob("[0-9][0-9]-*")) if p.is_dir()}
CHECK_LINE = re.compile(r"^(✓|✗|–) (.+)$")
SUMMARY_LINE = re.compile(r"^(\d+)/(\d+) checks passed(?: \((.*)\))?$")
# Variables of the machine that would change what the validators see.
SCRUBBED = ("KUBECONFIG", "LAB_SLO_P95_MS", *[k for k in os.environ if k.startswith("FRAUD_")])


def pytest_configure(config: pytest.Config) -> None:
    # The validators' own markers (labs/pytest.ini), for the tests that import their checks.
    config.addinivalue_line(
        "markers", "needs(*checks): lab validators: skipped when a named earlier check did not pass"
    )
    config.addinivalue_line("markers", "local(reason): lab validators: checks the local stack only")


def lab_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a validator run: this one without FRAUD_* / kube settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    return {**env, **(extra or {})}


def run_lab(
    lab: int | Path,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    timeout: int = 120,
) -> subprocess.CompletedProcess:
    """`.venv-labs/bin/pytest -c labs/pytest.ini <lab>/test_lab.py ARGS` as `make lab-N` runs it."""
    if not LABS_PYTEST.exists():
        pytest.fail(f"{LABS_PYTEST} is missing: make test creates it (or: make labs)")
    test_file = (LAB_DIRS[lab] if isinstance(lab, int) else lab) / "test_lab.py"
    ini = test_file.parent.parent / "pytest.ini"
    return subprocess.run(
        [str(LABS_PYTEST), "-c", str(ini), str(test_file), *args],
        cwd=cwd,
        env=env or lab_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def parse(output: str) -> dict:
    """The learner's output as data: header, checks (symbol, text, indented hint lines), summary."""
    lines = output.rstrip("\n").splitlines()
    checks: list[dict] = []
    summary = None
    for line in lines:
        m = CHECK_LINE.match(line)
        if m:
            checks.append({"symbol": m.group(1), "text": m.group(2), "hint": []})
        elif line.startswith("    ") and checks:
            checks[-1]["hint"].append(line.strip())
        elif SUMMARY_LINE.match(line):
            summary = SUMMARY_LINE.match(line).groups()
    return {
        "header": lines[0] if lines else "",
        "checks": checks,
        "summary": summary,
        "lines": lines,
    }


def check(parsed: dict, startswith: str) -> dict:
    """The one check whose text starts with `startswith`."""
    found = [c for c in parsed["checks"] if c["text"].startswith(startswith)]
    assert len(found) == 1, f"{len(found)} checks start with {startswith!r}:\n" + "\n".join(
        parsed["lines"]
    )
    return found[0]


def load_lab_module(lab: int) -> ModuleType:
    """A lab's test_lab.py as a module (labkit importable), to call its checks directly."""
    if str(LABS) not in sys.path:
        sys.path.insert(0, str(LABS))
    path = LAB_DIRS[lab] / "test_lab.py"
    spec = importlib.util.spec_from_file_location(f"lab_{lab:02d}_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fraudlab_ok(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run a `fraudlab` command; fail with its output when it fails."""
    result = run_fraudlab(env, *args)
    assert result.returncode == 0, (
        f"fraudlab {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.fixture(scope="session")
def reference_stack(tmp_path_factory):
    """The end state of the local labs at reduced scale, made the learner's way: the pipeline, a
    champion trained, tested and promoted in MLflow, `fraudlab up` (MLflow + MLServer in the background,
    state/stack.json), and a replay report.

    Yields the environment for validator runs (FRAUD_DATA_DIR, the relaxed gate).
    """
    data_dir = tmp_path_factory.mktemp("labs-stack") / "data"
    ports = {name: free_port() for name in ("mlflow", "http", "grpc", "metrics")}
    env = {
        **SCALE_ENV,
        "FRAUD_DATA_DIR": str(data_dir),
        "FRAUD_MLFLOW_PORT": str(ports["mlflow"]),
        "FRAUD_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{ports['mlflow']}",
        "FRAUD_HTTP_PORT": str(ports["http"]),
        "FRAUD_GRPC_PORT": str(ports["grpc"]),
        "FRAUD_METRICS_PORT": str(ports["metrics"]),
        "FRAUD_INFERENCE_URL": f"http://127.0.0.1:{ports['http']}",
    }
    fraudlab_ok(env, "pipeline")
    # Train with a short-lived MLflow on the same store; `fraudlab up` serves the champion.
    with start_mlflow(Settings(data_dir=str(data_dir), mlflow_port=ports["mlflow"])):
        fraudlab_ok(env, "train", "--model", "logistic_regression")
    fraudlab_ok(env, "up")
    try:
        fraudlab_ok(env, "replay", "--day", REPLAY_DAY)
        yield {
            "FRAUD_DATA_DIR": str(data_dir),
            "FRAUD_GATE_MIN_AUC": SCALE_ENV["FRAUD_GATE_MIN_AUC"],
            "FRAUD_GATE_MIN_AP": SCALE_ENV["FRAUD_GATE_MIN_AP"],
        }
    finally:
        run_fraudlab(env, "down")


def stack_copy(
    reference_stack: dict, tmp_path_factory, name: str, *more_ports: str
) -> tuple[Path, dict[str, int], dict[str, str]]:
    """A copy of the reference state (datasets, MLflow store, reports; not its logs, stack file or
    MLServer configs) in a new data folder, for a stack of its own on free ports: MLflow,
    MLServer's three and `more_ports` (each FRAUD_<NAME>_PORT).

    Returns:
        (the data folder, the ports by name, the environment for `fraudlab` there).
    """
    data_dir = tmp_path_factory.mktemp(f"labs-{name}") / "data"
    shutil.copytree(
        Path(reference_stack["FRAUD_DATA_DIR"]),
        data_dir,
        ignore=shutil.ignore_patterns("logs", "stack.json", "mlserver*"),
    )
    ports = {n: free_port() for n in ("MLFLOW", "HTTP", "GRPC", "METRICS", *more_ports)}
    env = {
        **SCALE_ENV,
        "FRAUD_DATA_DIR": str(data_dir),
        **{f"FRAUD_{n}_PORT": str(port) for n, port in ports.items()},
        "FRAUD_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{ports['MLFLOW']}",
    }
    return data_dir, ports, env


@pytest.fixture(scope="session")
def monitoring_stack(reference_stack, tmp_path_factory):
    """Lab 11's end state: a copy of the reference state (datasets, MLflow store, replay report)
    with `fraudlab up --monitoring` (MLflow, MLServer, the drift monitor, Prometheus scraping every
    second, Alertmanager, the continuous-training controller) on free ports, and a replay, so the
    model has scored transactions. A copy: whatever the controller does stays out of the session's
    reference stack.

    Yields the environment for validator runs.
    """
    data_dir, ports, env = stack_copy(
        reference_stack,
        tmp_path_factory,
        "monitoring",
        "MONITOR",
        "PROMETHEUS",
        "ALERTMANAGER",
        "CT",
    )
    env |= {
        "FRAUD_INFERENCE_URL": f"http://127.0.0.1:{ports['HTTP']}",
        "FRAUD_SCRAPE_INTERVAL_S": "1",
    }
    fraudlab_ok(env, "up", "--monitoring")
    try:
        fraudlab_ok(env, "replay", "--day", REPLAY_DAY)
        yield {"FRAUD_DATA_DIR": str(data_dir)}
    finally:
        run_fraudlab(env, "down")


@pytest.fixture(scope="session")
def features_stack(reference_stack, tmp_path_factory):
    """Lab 04's end state: a copy of the reference state with `fraudlab up --features` on free
    ports (MLflow, MLServer, and the Feast feature store: exported, applied, materialized, the
    feature server from .venv-feast).

    Yields the environment for validator runs.
    """
    data_dir, ports, env = stack_copy(
        reference_stack, tmp_path_factory, "features", "FEATURE_SERVER"
    )
    env |= {
        "FRAUD_INFERENCE_URL": f"http://127.0.0.1:{ports['HTTP']}",
        "FRAUD_FEATURE_SERVER_URL": f"http://127.0.0.1:{ports['FEATURE_SERVER']}",
    }
    fraudlab_ok(env, "up", "--features")
    try:
        yield {"FRAUD_DATA_DIR": str(data_dir)}
    finally:
        run_fraudlab(env, "down")


@pytest.fixture(scope="session")
def canary_stack(reference_stack, tmp_path_factory):
    """Lab 10's end state: a copy of the reference state with a second version of the model
    carrying the alias challenger, `fraudlab up --canary` on free ports (the champion's MLServer,
    the challenger's and the shadow's on its ports + 100 and + 200, the router), a replay through
    the router and the promotion drill (`fraudlab route drill`).

    Yields the environment for validator runs.
    """
    data_dir, ports, env = stack_copy(reference_stack, tmp_path_factory, "canary", "ROUTER")
    with start_mlflow(Settings(data_dir=str(data_dir), mlflow_port=ports["MLFLOW"])):
        fraudlab_ok(env, "train", "--model", "logistic_regression", "--no-promote")
        alias = (
            "from reference_app import tracking; "
            f"c = tracking.configure('http://127.0.0.1:{ports['MLFLOW']}'); "
            "c.set_registered_model_alias('fraud-detector', 'challenger', "
            "tracking.latest_version('fraud-detector'))"
        )
        subprocess.run([sys.executable, "-c", alias], check=True, env={**os.environ, **env})
    fraudlab_ok(env, "up", "--canary")
    try:
        router = f"http://127.0.0.1:{ports['ROUTER']}"
        fraudlab_ok(env, "replay", "--day", REPLAY_DAY, "--url", router)
        fraudlab_ok(env, "route", "drill")
        yield {"FRAUD_DATA_DIR": str(data_dir)}
    finally:
        run_fraudlab(env, "down")


LAB15_ADMIN_PASSWORD = "lab15-admin-9c4e1f"


@pytest.fixture(scope="session")
def auth_stack(reference_stack, tmp_path_factory):
    """Lab 15's end state: a copy of the reference state with `fraudlab up --auth` (MLflow's
    basic-auth app; the admin password in FRAUD_MLFLOW_ADMIN_PASSWORD, as .env would give it) on
    free ports.

    Yields the environment for validator runs (with the password).
    """
    data_dir, ports, env = stack_copy(reference_stack, tmp_path_factory, "auth")
    env |= {
        "FRAUD_INFERENCE_URL": f"http://127.0.0.1:{ports['HTTP']}",
        "FRAUD_MLFLOW_ADMIN_PASSWORD": LAB15_ADMIN_PASSWORD,
    }
    fraudlab_ok(env, "up", "--auth")
    try:
        yield {"FRAUD_DATA_DIR": str(data_dir), "FRAUD_MLFLOW_ADMIN_PASSWORD": LAB15_ADMIN_PASSWORD}
    finally:
        run_fraudlab(env, "down")


@pytest.fixture(scope="session")
def drill_stack(reference_stack, tmp_path_factory):
    """Lab 07's end state: a copy of the reference state with `fraudlab up` on free ports and the
    drill run against it (`fraudlab train --broken`: a broken candidate the model tests block).
    A copy: the session's reference stack keeps its champion as its only version.

    Yields the environment for validator runs.
    """
    data_dir, _, env = stack_copy(reference_stack, tmp_path_factory, "drill")
    fraudlab_ok(env, "up")
    try:
        fraudlab_ok(env, "train", "--model", "logistic_regression", "--broken")
        yield {**reference_stack, "FRAUD_DATA_DIR": str(data_dir)}
    finally:
        run_fraudlab(env, "down")


# Lab 14 at test scale: one model, 3 trials over 2 folds, at most 100 rounds (4 reports, ASHA's
# first rung at 2), on a local Ray of 2 CPUs (127.0.0.1).
LAB14_TUNE_ENV = {
    "FRAUD_TUNE_MODELS": "lightgbm",
    "FRAUD_TUNE_TRIALS": "3",
    "FRAUD_TUNE_LIGHTGBM_MAX_ROUNDS": "100",
    "FRAUD_TUNE_CONCURRENCY": "2",
    "FRAUD_TUNE_FOLDS": "2",
    "FRAUD_RAY_NUM_CPUS": "2",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}


@pytest.fixture(scope="session")
def tune_stack(reference_stack, tmp_path_factory):
    """Lab 14's end state: a copy of the reference state with `fraudlab up` on free ports and a
    small search run against it (`fraudlab tune` with the solved folds.py: its tuned LightGBM
    registered and gated). A copy: the session's reference stack keeps its champion.

    Yields the environment for validator runs.
    """
    data_dir, _, env = stack_copy(reference_stack, tmp_path_factory, "tune")
    fraudlab_ok(env, "up")
    try:
        solved = str(LAB_DIRS[14] / "solution")
        fraudlab_ok({**env, **LAB14_TUNE_ENV, "FRAUD_LAB_CODE": solved}, "tune")
        yield {**reference_stack, "FRAUD_DATA_DIR": str(data_dir)}
    finally:
        run_fraudlab(env, "down")


@pytest.fixture
def data_copy(reference_stack, tmp_path) -> Path:
    """A copy of the reference datasets, reports and stack file, to break without harm."""
    source = Path(reference_stack["FRAUD_DATA_DIR"])
    target = tmp_path / "data"
    shutil.copytree(
        source,
        target,
        ignore=shutil.ignore_patterns("mlartifacts", "mlflow.db*", "logs", "mlserver"),
    )
    return target
