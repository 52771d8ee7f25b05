"""The lab validators' pytest setup: the options (`--target`, `--lab-json`, `--tracebacks`,
`--list`) and the fixtures the checks use (`k8s`, `endpoints`, `mlflow`, `prometheus`,
`datasets`, …).

`make lab-N` runs `labs/NN-*/test_lab.py` with `.venv-labs/bin/pytest -c labs/pytest.ini`. The
learner's output (one line per check, hints, the N/M line, the exit status, JUnit XML and the
JSON summary) and the `cluster` / `local` / `needs` markers are the plugin labkit/reporter.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import labkit
from labkit.reporter import EARLIER_FAILED, GATES, description

pytest_plugins = ["labkit.reporter"]

TARGETS = ("cluster", "local")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fraud lab")
    group.addoption(
        "--target",
        choices=TARGETS,
        default="cluster",
        help="cluster: the kind cluster (context kind-fraud-lab); local: the local stack on 127.0.0.1",
    )
    group.addoption(
        "--lab-json",
        metavar="PATH",
        default=None,
        help="also write a JSON summary of the checks to PATH (for instructors)",
    )
    group.addoption(
        "--tracebacks",
        action="store_true",
        default=False,
        help="show Python tracebacks of failed checks (course development)",
    )
    group.addoption(
        "--list",
        action="store_true",
        default=False,
        help="print what a run where every check passes looks like, without running the checks",
    )


# --- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> str:
    """`cluster` or `local`."""
    return request.config.getoption("--target")


def gate(
    request: pytest.FixtureRequest, name: str, problem: str | None, expected: str, fix: str | None
) -> None:
    """Fail the first check that needs a broken prerequisite, skip the later ones with the reason."""
    if problem is None:
        return
    gates = request.config.stash[GATES]
    if name in gates:
        pytest.skip(f"{EARLIER_FAILED}: {gates[name]}")
    gates[name] = description(request.node)
    pytest.fail(labkit.hint(expected, problem, fix), pytrace=False)


@pytest.fixture(scope="session")
def _cluster(target: str) -> tuple[labkit.Cluster | None, labkit.ClusterError | None]:
    if target != "cluster":
        return None, labkit.ClusterError(
            "the local target has no cluster", "make lab-N TARGET=cluster"
        )
    try:
        return labkit.connect(), None
    except labkit.ClusterError as err:
        return None, err


@pytest.fixture
def k8s(request: pytest.FixtureRequest, _cluster) -> labkit.Cluster:
    """Kubernetes clients for context `kind-fraud-lab`, and only that context.

    The first check that uses it fails with a one-line reason when the kubeconfig or context is
    missing, points elsewhere or does not answer; the following checks are skipped.
    """
    cluster, err = _cluster
    gate(
        request,
        "k8s",
        None if cluster else str(err),
        f"context {labkit.KUBE_CONTEXT} in your kubeconfig, pointing at the kind cluster, answering",
        err.fix if err else None,
    )
    return cluster


@pytest.fixture(scope="session")
def _endpoints(target: str) -> labkit.Endpoints:
    return labkit.cluster_endpoints() if target == "cluster" else labkit.local_endpoints()


@pytest.fixture
def endpoints(request: pytest.FixtureRequest, _endpoints: labkit.Endpoints) -> labkit.Endpoints:
    """MLflow, model and Prometheus URLs of the target (local: from `<data dir>/state/stack.json`)."""
    ep = _endpoints
    expected = (
        "the local stack running (make up writes state/stack.json)"
        if ep.target == "local"
        else "MLflow credentials from make secrets"
    )
    gate(request, "endpoints", ep.problem, expected, ep.fix)
    return ep


@pytest.fixture
def mlflow(endpoints: labkit.Endpoints) -> labkit.MlflowApi:
    """MLflow's REST API on the target (with the admin user on the cluster)."""
    return labkit.MlflowApi(endpoints.mlflow, endpoints.mlflow_auth)


@pytest.fixture
def prometheus(request: pytest.FixtureRequest, endpoints: labkit.Endpoints) -> labkit.PrometheusApi:
    """Prometheus's HTTP API on the target (local: the `prometheus` entry of stack.json, which only
    `make up-monitoring` writes; cluster: NodePort 30090)."""
    problem = (
        None
        if endpoints.prometheus
        else f"{endpoints.source} lists no prometheus (make up starts none; make up-monitoring does)"
    )
    gate(
        request,
        "prometheus",
        problem,
        "Prometheus in the local stack (make up-monitoring)",
        "make down && make up-monitoring",
    )
    return labkit.PrometheusApi(endpoints.prometheus)


@pytest.fixture
def datasets(request: pytest.FixtureRequest, target: str):
    """Dataset manifests: under FRAUD_DATA_DIR locally, on the fraud-data volume on the cluster."""
    if target == "local":
        return labkit.LocalDatasets()
    cluster = request.getfixturevalue("k8s")
    try:
        return labkit.ClusterDatasets(cluster)
    except labkit.DatasetsUnavailable as err:
        gate(
            request,
            "datasets",
            str(err),
            f"the dataset volume {labkit.DATA_PVC} bound and readable",
            err.fix,
        )
    except labkit.Timeout as err:
        gate(request, "datasets", str(err), "the kind node answering docker exec", "docker ps")


@pytest.fixture(scope="session")
def model_name() -> str:
    """The registered model (FRAUD_MODEL_NAME, default fraud-detector)."""
    return labkit.setting("FRAUD_MODEL_NAME")


@pytest.fixture(scope="session")
def experiment_name() -> str:
    """The MLflow experiment of training runs (FRAUD_EXPERIMENT, default fraud-detection)."""
    return labkit.setting("FRAUD_EXPERIMENT")


def exercise_files(module, cluster) -> dict[str, str]:
    """The learner's module as the cluster runs it: the lab's own `exercise_files(k8s)` (a
    ConfigMap read by name), else the ConfigMap mounted in the pod spec of `exercise_pod(k8s)`."""
    if hasattr(module, "exercise_files"):
        return module.exercise_files(cluster)
    return labkit.mounted_lab_code(cluster, module.exercise_pod(cluster))


@pytest.fixture
def exercise(request: pytest.FixtureRequest, target: str, tmp_path_factory) -> dict:
    """Each behaviour's result (passed, expected, found, hint) for the learner's Python module.

    Local: the module in the lab's `starter/` (or LAB_EXERCISE_DIR). Cluster: the module the pods
    run, read back from the ConfigMap mounted at /lab-code in the pod spec the lab's
    `exercise_pod(k8s)` returns (its `EXERCISE_WORKLOAD` names it): what the cluster runs is what
    is checked. A lab whose exercise runs on the learner's machine (lab 00: the doctor) sets
    `EXERCISE_ON_MACHINE` and is checked from its starter/ on both targets. The first check fails
    with the reason when there is nothing to check; the others are skipped.
    """
    lab = int(Path(request.node.path).parent.name[:2])
    problem, fix = None, None
    if target == "local" or getattr(request.module, "EXERCISE_ON_MACHINE", False):
        folder = labkit.starter_dir(lab)
    else:
        cluster = request.getfixturevalue("k8s")  # no cluster: failed or skipped as the others
        folder = tmp_path_factory.getbasetemp() / f"lab-code-{lab:02d}"
        files = exercise_files(request.module, cluster)
        if not files:
            problem = (
                f"{request.module.EXERCISE_WORKLOAD}: no lab code (a ConfigMap labelled "
                f"{labkit.LAB_CODE_LABEL}={lab:02d}, mounted at {labkit.LAB_CODE_MOUNT})"
            )
            fix = labkit.kubectl(
                f"apply -k {labkit.starter_dir(lab).relative_to(labkit.REPO_ROOT)}"
            )
        folder.mkdir(exist_ok=True)
        for name, text in files.items():
            (folder / name).write_text(text)
    results = None
    if problem is None:
        try:
            results = labkit.exercise_results(lab, str(folder))
        except labkit.ExerciseUnavailable as err:
            problem, fix = str(err), "make install"
    gate(request, "exercise", problem, "your exercise's module, runnable", fix)
    return results
