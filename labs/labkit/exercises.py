"""The labs' Python exercises: run the learner's module through `fraudlab exercise`.

The behaviours live in the app (`reference_app.exercises`, tested there); the checks run them in
the app's environment (.venv/bin/fraudlab), since the validators' own environment has none of
the app's libraries. Locally the module is the lab's `starter/` file (or the folder in
`LAB_EXERCISE_DIR`); on the cluster it is the file the pods run, read back from the ConfigMap the
lab's kustomization generates from it, so a check passes only for the code the cluster runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from functools import cache
from pathlib import Path

from .hints import hint
from .names import NAMESPACE, REPO_ROOT

FRAUDLAB = REPO_ROOT / ".venv" / "bin" / "fraudlab"
EXERCISE_DIR_ENV = "LAB_EXERCISE_DIR"
"""A folder to check instead of the lab's starter/ (the course's own tests use it)."""
LAB_CODE_LABEL = "fraud-lab.io/lab-code"
"""Label of the ConfigMap a lab's kustomization generates from the learner's module (value: NN)."""
LAB_CODE_MOUNT = "/lab-code"
"""Where the pods that run a learner's module mount its ConfigMap (FRAUD_LAB_CODE)."""


class ExerciseUnavailable(RuntimeError):
    """The app's environment is missing, so the behaviours cannot run."""


def _fraudlab(*args: str) -> subprocess.CompletedProcess:
    if not FRAUDLAB.exists():
        raise ExerciseUnavailable(f"no {FRAUDLAB.relative_to(REPO_ROOT)}: run `make install`")
    return subprocess.run(
        [str(FRAUDLAB), "exercise", *args], capture_output=True, text=True, timeout=120
    )


@cache
def behaviours(lab: int) -> list[str]:
    """The behaviours lab `lab` checks, one check line each (at collection: names only)."""
    try:
        out = _fraudlab("list", str(lab))
    except ExerciseUnavailable:
        return ["the exercise's behaviours (the app's .venv is needed to list them)"]
    if out.returncode != 0:
        return [f"the exercise's behaviours ({out.stderr.strip() or out.stdout.strip()})"]
    return [b["behaviour"] for b in json.loads(out.stdout)]


def starter_dir(lab: int) -> Path:
    """The folder whose module the local checks run: LAB_EXERCISE_DIR, else the lab's starter/."""
    if os.environ.get(EXERCISE_DIR_ENV):
        return Path(os.environ[EXERCISE_DIR_ENV])
    (folder,) = REPO_ROOT.glob(f"labs/{lab:02d}-*/starter")
    return folder


@cache
def results(lab: int, folder: str) -> dict[str, dict]:
    """Each behaviour's result (passed, expected, found, hint) for the module in `folder`.

    Raises:
        ExerciseUnavailable: no .venv, or `fraudlab exercise check` failed to run at all.
    """
    out = _fraudlab("check", str(lab), "--code", folder, "--json")
    try:
        return {r["behaviour"]: r for r in json.loads(out.stdout)}
    except json.JSONDecodeError:
        raise ExerciseUnavailable(
            f"fraudlab exercise check {lab} failed: {(out.stderr or out.stdout).strip()[-300:]}"
        ) from None


def lab_code_volume(podspec: dict | None) -> tuple[str | None, dict | None]:
    """(ConfigMap name, container) of the volume a pod spec mounts at `LAB_CODE_MOUNT`, with the
    container that mounts it; (None, None) when it mounts none. `podspec` as `labkit.pod_spec`
    (Deployment, SeldonDeployment) or `labkit.template_pod_spec` (an Argo step) return it."""
    spec = podspec or {}
    volumes = {
        v.get("name"): (v.get("configMap") or {}).get("name") for v in spec.get("volumes") or []
    }
    for container in spec.get("containers") or []:
        for mount in container.get("volumeMounts") or []:
            if mount.get("mountPath") == LAB_CODE_MOUNT and volumes.get(mount.get("name")):
                return volumes[mount["name"]], container
    return None, None


def mounted_lab_code(cluster, podspec: dict | None, namespace: str = NAMESPACE) -> dict[str, str]:
    """The files of the ConfigMap a pod spec mounts at `LAB_CODE_MOUNT` ({} if none)."""
    name, _ = lab_code_volume(podspec)
    configmap = cluster.configmap(name, namespace) if name else None
    return dict((configmap or {}).get("data") or {})


def lab_code_problem(cluster, podspec: dict | None, lab: int, namespace: str = NAMESPACE):
    """What keeps a workload from running the learner's module of lab `lab`, or None: a
    ConfigMap labelled `LAB_CODE_LABEL`=NN mounted at `LAB_CODE_MOUNT`, FRAUD_LAB_CODE set to it."""
    name, container = lab_code_volume(podspec)
    env = {e.get("name"): e.get("value") for e in (container or {}).get("env") or []}
    configmap = cluster.configmap(name, namespace) if name else None
    labels = ((configmap or {}).get("metadata") or {}).get("labels") or {}
    if name is None:
        return f"no volume mounted at {LAB_CODE_MOUNT}"
    if configmap is None:
        return f"ConfigMap {name} does not exist"
    if labels.get(LAB_CODE_LABEL) != f"{lab:02d}":
        return f"ConfigMap {name} is not labelled {LAB_CODE_LABEL}={lab:02d}"
    if env.get("FRAUD_LAB_CODE") != LAB_CODE_MOUNT:
        return f"FRAUD_LAB_CODE={env.get('FRAUD_LAB_CODE')!r}"
    return None


def lab_code_source(lab: int, filename: str, text: str | None) -> str:
    """How the app records that a lab's module ran (`labcode.Exercise.source`, tested equal):
    `lab-NN/<file> sha256:<12 hex>` of the file's text; "reference" when there is none."""
    if text is None:
        return "reference"
    return f"lab-{lab:02d}/{filename} sha256:{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def configmap_lab_code(cluster, name: str, lab: int, namespace: str = NAMESPACE):
    """(files, problem) of a lab's ConfigMap read by name: its data, or why there is none to
    check (missing, or not labelled `LAB_CODE_LABEL`=NN)."""
    configmap = cluster.configmap(name, namespace)
    if configmap is None:
        return {}, f"no ConfigMap {name} in {namespace}"
    labels = (configmap.get("metadata") or {}).get("labels") or {}
    if labels.get(LAB_CODE_LABEL) != f"{lab:02d}":
        return {}, f"ConfigMap {name} is not labelled {LAB_CODE_LABEL}={lab:02d}"
    return dict(configmap.get("data") or {}), None


def assert_runs_lab_code(
    cluster, podspec: dict | None, lab: int, filename: str, fix: str, namespace: str = NAMESPACE
) -> None:
    """The check that a workload runs the learner's module (`lab_code_problem`), as a hint."""
    found = lab_code_problem(cluster, podspec, lab, namespace)
    assert found is None, hint(
        f"a ConfigMap labelled {LAB_CODE_LABEL}={lab:02d} with {filename} mounted at "
        f"{LAB_CODE_MOUNT}, and FRAUD_LAB_CODE={LAB_CODE_MOUNT}",
        found,
        fix,
    )


def assert_configmap_holds(
    cluster, name: str, lab: int, filename: str, fix: str, namespace: str = NAMESPACE
) -> None:
    """The check that the fixed-name ConfigMap `name` (a step mounts it optionally: labs 05, 07)
    holds the learner's `filename` and carries `LAB_CODE_LABEL`=NN, as a hint."""
    files, problem = configmap_lab_code(cluster, name, lab, namespace)
    if problem is None and filename not in files:
        problem = f"ConfigMap {name} has no {filename} (keys: {sorted(files)})"
    assert problem is None, hint(
        f"ConfigMap {name} with {filename}, labelled {LAB_CODE_LABEL}={lab:02d}", problem, fix
    )


def assert_behaviour(results: dict[str, dict], behaviour: str) -> None:
    """The check of one behaviour of the learner's module: expected / found / its hint."""
    result = results.get(behaviour)
    assert result is not None, hint(
        behaviour, "not checked: the behaviours changed", "make install"
    )
    assert result["passed"], hint(result["expected"], result["found"], result["hint"])
