"""The app image as lab 08 checks it: in the local container engine, in the kind registry, and
what the work tree says it should be (its commit, its tag, its labels).

The image's labels and user are read from its config: `podman|docker image inspect` locally;
on the cluster from the registry's HTTP API (OCI distribution spec, "Pulling manifests" and
"Pulling blobs": GET /v2/<name>/manifests/<reference>, then the config blob the manifest names,
https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pull). A manifest's digest
is the SHA-256 of its bytes (OCI image spec, descriptor.md "Digests"): computed here, since the
spec says clients SHOULD NOT depend on the Docker-Content-Digest header. The commit, tag and
expected labels come from the scripts and the app themselves (scripts/versions.sh,
`fraudlab image-labels`), never a copy of their rules.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field

from .hints import short
from .http import http_get
from .names import REGISTRY_HOST, REGISTRY_URL, REPO_ROOT

APP_REPOSITORY = "fraud-lab/app"
"""The app image's repository (scripts/versions.sh APP_IMAGE_REPO without the registry)."""
ENGINES = ("podman", "docker")
REVISION_LABEL = "org.opencontainers.image.revision"
RUNTIME_LABEL_PREFIX = "io.fraud-lab.runtime."
LAB_CODE_IMAGE_LABEL = "io.fraud-lab.lab-code"
# What a registry may answer for a tag: an index (several platforms) or one image's manifest.
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
COMMAND_TIMEOUT_S = 30


@dataclass
class Image:
    """An app image as a check sees it.

    Attributes:
        reference: `repository:tag` as the engine or the registry names it.
        where: "podman", "docker" or the registry's host.
        labels: the config's labels.
        user: the config's `User` ("" when unset: root).
        created: the config's creation time (ISO 8601), "" when unknown.
        digest: the registry's manifest digest (`sha256:…`), None for an engine's image.
        env: the config's `Env` ("NAME=value"), from the registry (lab 15).
        history: each layer's `created_by` (the build step that made it), from the registry.
    """

    reference: str
    where: str
    labels: dict[str, str] = field(default_factory=dict)
    user: str = ""
    created: str = ""
    digest: str | None = None
    env: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)


def _run(*cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess | str:
    """A command's result, or why it did not run (one line)."""
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, env=env, cwd=REPO_ROOT
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return short(f"{' '.join(cmd[:3])}: {type(err).__name__}: {err}")


def _versions(function: str) -> str:
    """The output of a function of scripts/versions.sh (app_commit, app_image_tag)."""
    out = _run("bash", "-c", f"source scripts/versions.sh && {function}")
    if isinstance(out, str) or out.returncode != 0:
        raise RuntimeError(out if isinstance(out, str) else short(out.stderr or out.stdout))
    return out.stdout.strip()


def app_commit() -> str:
    """The work tree's commit as the builds record it (`app_commit`: `-dirty` when changed)."""
    return _versions("app_commit")


def app_image_tag() -> str:
    """The tag `make images` gives a build of the work tree as it is now (`app_image_tag`)."""
    return _versions("app_image_tag")


def expected_labels(commit: str) -> dict[str, str]:
    """The labels the reference `image_labels` gives a build of `commit` (`fraudlab image-labels`
    without FRAUD_LAB_CODE), without the label that records whose function ran.

    Raises:
        RuntimeError: the app's .venv is missing or the command fails.
    """
    fraudlab = REPO_ROOT / ".venv" / "bin" / "fraudlab"
    if not fraudlab.exists():
        raise RuntimeError("no .venv/bin/fraudlab: run `make install`")
    env = {k: v for k, v in os.environ.items() if k != "FRAUD_LAB_CODE"}
    out = _run(str(fraudlab), "image-labels", "--commit", commit, env=env)
    if isinstance(out, str) or out.returncode != 0:
        raise RuntimeError(out if isinstance(out, str) else short(out.stdout + out.stderr))
    labels = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    labels.pop(LAB_CODE_IMAGE_LABEL, None)
    return labels


def numeric_uid(user: str) -> int | None:
    """The uid of an image's `User` ("10001:10001" → 10001, "" → 0, root); None for a name,
    which Kubernetes' runAsNonRoot cannot verify."""
    name = (user or "0").split(":", 1)[0]
    return int(name) if name.isdigit() else (0 if name == "root" else None)


# --- the local container engine ---------------------------------------------------------------------
def engine_images(engine: str, repository: str = APP_REPOSITORY) -> list[Image] | str:
    """The images of `engine` whose repository ends with `repository`, or why there are none to
    list (the engine is missing or does not answer)."""
    if not shutil.which(engine):
        return f"{engine} is not installed"
    out = _run(engine, "images", "--format", "{{.Repository}}:{{.Tag}}")
    if isinstance(out, str) or out.returncode != 0:
        return short(f"{engine} images: {out if isinstance(out, str) else out.stderr}", 160)
    refs = sorted(
        {
            line
            for line in out.stdout.split()
            if line.rsplit(":", 1)[0].endswith(repository) and not line.endswith(":<none>")
        }
    )
    if not refs:
        return []
    out = _run(engine, "image", "inspect", *refs)
    if isinstance(out, str) or out.returncode != 0:
        return short(f"{engine} image inspect: {out if isinstance(out, str) else out.stderr}", 160)
    images = []
    for ref, info in zip(refs, json.loads(out.stdout), strict=True):
        config = info.get("Config") or {}
        images.append(
            Image(
                ref,
                engine,
                config.get("Labels") or {},
                config.get("User") or "",
                info.get("Created") or "",
            )
        )
    return images


def local_image(repository: str = APP_REPOSITORY) -> tuple[Image | None, list[str]]:
    """The newest app image over the engines (podman, docker): (image or None, what each engine
    said when it had none)."""
    found: list[Image] = []
    notes: list[str] = []
    for engine in ENGINES:
        images = engine_images(engine, repository)
        if isinstance(images, str):
            notes.append(images)
        elif not images:
            notes.append(f"{engine}: no image …{repository}")
        found += [] if isinstance(images, str) else images
    newest = max(found, key=lambda i: i.created, default=None)
    return newest, notes


# --- the kind registry --------------------------------------------------------------------------------
def registry_image(
    tag: str, repository: str = APP_REPOSITORY, url: str = REGISTRY_URL
) -> Image | str:
    """The image `repository:tag` in the registry at `url`: its manifest digest, labels and
    user; or why there is none (no such tag, no answer), on one line."""
    accept = {"Accept": ", ".join(MANIFEST_TYPES)}
    answer = http_get(f"{url}/v2/{repository}/manifests/{tag}", headers=accept)
    if isinstance(answer, str):
        return f"the registry {url} does not answer: {answer}"
    if answer.status_code == 404:
        return f"no tag {tag} in {REGISTRY_HOST}/{repository}"
    if answer.status_code != 200:
        return f"GET /v2/{repository}/manifests/{tag} → HTTP {answer.status_code}"
    digest = "sha256:" + hashlib.sha256(answer.content).hexdigest()
    manifest = answer.json()
    if manifest.get(
        "manifests"
    ):  # an index: one image per platform (attestations: unknown/unknown)
        images = [
            m
            for m in manifest["manifests"]
            if (m.get("platform") or {}).get("os", "linux") != "unknown"
        ]
        if not images:
            return f"{repository}:{tag} is an index without an image"
        answer = http_get(f"{url}/v2/{repository}/manifests/{images[0]['digest']}", headers=accept)
        if isinstance(answer, str) or answer.status_code != 200:
            return f"the index's image manifest {images[0]['digest'][:19]}…: {answer if isinstance(answer, str) else answer.status_code}"
        manifest = answer.json()
    config_digest = (manifest.get("config") or {}).get("digest")
    blob = http_get(f"{url}/v2/{repository}/blobs/{config_digest}", follow_redirects=True)
    if isinstance(blob, str) or blob.status_code != 200:
        return f"the config blob {config_digest}: {blob if isinstance(blob, str) else 'HTTP ' + str(blob.status_code)}"
    config = blob.json()
    inner = config.get("config") or {}
    return Image(
        f"{REGISTRY_HOST}/{repository}:{tag}",
        REGISTRY_HOST,
        inner.get("Labels") or {},
        inner.get("User") or "",
        config.get("created") or "",
        digest,
        list(inner.get("Env") or []),
        [h.get("created_by") or "" for h in config.get("history") or []],
    )
