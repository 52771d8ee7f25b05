"""The container tier: the app image built with podman, and the overlay's app containers run from it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.static.k8s import ROOT, prepare_manifests, render

from .podman import STARTED, Netns, have_podman, stop

POSTGRES_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


@pytest.fixture(scope="session")
def app_image() -> str:
    """The Dockerfile built by scripts/podman-image.sh (layers cached by podman between runs)."""
    missing = have_podman()
    if missing:
        pytest.fail(
            f"the container tier needs {', '.join(missing)}: run scripts/system-packages.sh (make test does)"
        )
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "podman-image.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert out.returncode == 0, f"podman build failed:\n{out.stdout[-3000:]}\n{out.stderr[-6000:]}"
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def overlay(tmp_path_factory) -> list[dict]:
    """The kind overlay's objects, as make deploy applies them (secrets and image tag generated)."""
    return render("kind", prepare_manifests(tmp_path_factory.mktemp("container-manifests")))


def _secret(objects: list[dict], name: str) -> dict[str, str]:
    import base64

    (secret,) = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == name]
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


@pytest.fixture(scope="module", autouse=True)
def _stop_started_containers():
    """Whatever happens in the tests, no server container outlives the module."""
    yield
    while STARTED:
        stop(STARTED.pop())


@pytest.fixture(scope="module")
def netns():
    ns = Netns()
    yield ns
    ns.delete()


@pytest.fixture(scope="module")
def postgres(netns, overlay):
    """PostgreSQL (Debian's) on 127.0.0.1:5432 inside the namespace, set up as the official image
    sets itself up from Secret postgres-credentials, with the overlay's init scripts run."""
    assert POSTGRES_BIN, "PostgreSQL is not installed: run scripts/system-packages.sh"
    bin_dir = POSTGRES_BIN[-1]
    creds = _secret(overlay, "postgres-credentials")
    # Not under pytest's temp folder: its parent is private to root, and postgres must reach it.
    root = Path(tempfile.mkdtemp(prefix="fraudlab-postgres-"))
    root.chmod(0o755)
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    subprocess.run(["chown", "-R", "postgres:postgres", str(root)], check=True)
    pwfile = root / "pw"
    pwfile.write_text(creds["POSTGRES_PASSWORD"])
    subprocess.run(["chown", "postgres", str(pwfile)], check=True)
    subprocess.run(["runuser", "-u", "postgres", "--", str(bin_dir / "initdb"), "-D", str(data), "-U", creds["POSTGRES_USER"],
                    f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256"], check=True, capture_output=True)  # fmt: skip
    log = root / "postgres.log"
    proc = netns.popen(
        str(bin_dir / "postgres"),
        "-D",
        str(data),
        "-k",
        str(sock),
        "-c",
        "listen_addresses=127.0.0.1",
        "-p",
        "5432",
        log=log,
        user="postgres",
    )
    psql = [
        "runuser",
        "-u",
        "postgres",
        "--",
        str(bin_dir / "psql"),
        "-h",
        str(sock),
        "-p",
        "5432",
        "-U",
        creds["POSTGRES_USER"],
        "-v",
        "ON_ERROR_STOP=1",
    ]
    deadline = time.monotonic() + 60
    while (
        subprocess.run([*psql, "-d", "postgres", "-c", "select 1"], capture_output=True).returncode
        != 0
    ):
        assert time.monotonic() < deadline and proc.poll() is None, (
            f"PostgreSQL did not start:\n{log.read_text()}"
        )
        time.sleep(0.5)
    subprocess.run(
        [*psql, "-d", "postgres", "-c", f'CREATE DATABASE "{creds["POSTGRES_DB"]}"'],
        check=True,
        capture_output=True,
    )
    (init,) = [
        o for o in overlay if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "postgres-init"
    ]
    for _name, sql in sorted(init["data"].items()):
        subprocess.run(
            [*psql, "-d", creds["POSTGRES_DB"], "-c", sql], check=True, capture_output=True
        )
    yield creds
    proc.terminate()
    proc.wait(timeout=30)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def s3(netns, tmp_path_factory):
    """An S3 API server on 127.0.0.1:8333 inside the namespace, where Service `s3` points in kind.

    NOTE: SeaweedFS (what kind mode runs) has no build for this machine; moto's standalone server
    speaks the same S3 API, which is all the app uses (CreateBucket, Put/Get/ListObjects).
    """
    import sys

    log = tmp_path_factory.mktemp("s3") / "moto.log"
    proc = netns.popen(
        sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "8333", log=log
    )
    netns.wait_http(
        "http://127.0.0.1:8333/moto-api/", 60, what="moto S3 server", logs=log.read_text
    )
    yield "http://127.0.0.1:8333"
    proc.terminate()
    proc.wait(timeout=30)
