"""The model inventory: which registered model version serves where, and on what grounds.

Model-risk guidance asks for an inventory of the models in use (Federal Reserve SR 11-7,
"Supervisory Guidance on Model Risk Management", section VI: "banks should maintain a
comprehensive set of information for models implemented for use"). On the cluster the
`model-inventory` CronJob writes one each day: it lists the SeldonDeployments of its namespace
through the Kubernetes API (its ServiceAccount may `get` and `list` them, nothing else), resolves
each predictor's `FRAUD_MODEL_URI` (`models:/NAME@ALIAS` or `models:/NAME/VERSION`) in MLflow's
registry, and records the version, its run and the promotion decision beside the deployment's
generation, replicas and traffic. Lab 15 writes that workload's Role, RoleBinding and
NetworkPolicy.

Example:
    >>> rows = inventory_rows([{"metadata": {"name": "fd", "generation": 3}, "spec": {"predictors": [
    ...     {"name": "default", "replicas": 2, "componentSpecs": [{"spec": {"containers": [
    ...     {"name": "fd", "env": [{"name": "FRAUD_MODEL_URI", "value": "models:/m@champion"}]}]}}]}]}}],
    ...     lambda uri: {"version": "4"})
    >>> rows[0]["model_uri"], rows[0]["version"], rows[0]["traffic"]
    ('models:/m@champion', '4', 100)
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path

from ..config import Settings

SELDON_PATH = "/apis/machinelearning.seldon.io/v1/namespaces/{namespace}/seldondeployments"
MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")
INVENTORY_FILE = "model-inventory.json"


class InventoryError(RuntimeError):
    """The API server or MLflow refused or could not be reached; the message says which."""


def inventory_rows(deployments: list[dict], resolve: Callable[[str], dict]) -> list[dict]:
    """One row per predictor container that serves a registered model.

    Args:
        deployments: SeldonDeployment objects as the API returns them (dicts).
        resolve: a `models:/…` URI → {"version", "run_id", "promotion_decision", "passed_gate"}.

    Returns:
        Rows with deployment, generation, state, predictor, replicas, traffic (%, 100 for a
        single predictor), shadow, container, model_uri and what `resolve` returned.
    """
    rows = []
    for d in deployments:
        predictors = (d.get("spec") or {}).get("predictors") or []
        for p in predictors:
            for component in p.get("componentSpecs") or []:
                for c in (component.get("spec") or {}).get("containers") or []:
                    env = {e["name"]: e.get("value") for e in c.get("env") or []}
                    uri = env.get("FRAUD_MODEL_URI")
                    if not uri:
                        continue
                    rows.append(
                        {
                            "deployment": d["metadata"]["name"],
                            "generation": d["metadata"].get("generation"),
                            "state": (d.get("status") or {}).get("state"),
                            "predictor": p.get("name"),
                            "replicas": p.get("replicas", 1),
                            "traffic": p.get("traffic", 100 if len(predictors) == 1 else 0),
                            "shadow": bool(p.get("shadow")),
                            "container": c["name"],
                            "model_uri": uri,
                            **resolve(uri),
                        }
                    )
    return rows


def resolve_in_registry(uri: str) -> dict:
    """The registered version a `models:/` URI names now, with its run and promotion tags
    (`tracking.alias_version`, `tracking.version_tags`); version None when nothing carries it."""
    from .. import tracking

    m = MODEL_URI.match(uri)
    if m is None:
        return {"version": None, "problem": f"not a models:/ URI: {uri}"}
    version = m["version"] or tracking.alias_version(m["name"], m["alias"])
    tags = tracking.version_tags(m["name"], version) if version else {}
    return {
        "version": version,
        "promotion_decision": tags.get("promotion_decision"),
        "passed_gate": tags.get("passed_gate"),
    }


def seldon_deployments() -> list[dict]:
    """The SeldonDeployments of the pod's namespace, read with the pod's ServiceAccount.

    Raises:
        InventoryError: the API server refused (403: the Role model-inventory is missing or
            does not allow `list`) or could not be reached (a NetworkPolicy drops the path).
    """
    import httpx

    from ..orchestration.continuous_training import SERVICE_ACCOUNT, _kubernetes

    base, headers, ca = _kubernetes()
    namespace = (SERVICE_ACCOUNT / "namespace").read_text().strip()
    try:
        response = httpx.get(
            base + SELDON_PATH.format(namespace=namespace), headers=headers, verify=ca, timeout=30
        )
        response.raise_for_status()
    except httpx.HTTPStatusError as err:
        raise InventoryError(
            f"the API server answered {err.response.status_code} to listing seldondeployments "
            f"in {namespace}: {err.response.text[:200]}"
        ) from None
    except httpx.TransportError as err:
        raise InventoryError(
            f"the API server cannot be reached: {type(err).__name__}: {err}"
        ) from None
    return response.json().get("items") or []


def write_inventory(settings: Settings, deployments: list[dict] | None = None) -> Path:
    """Write `<reports_dir>/model-inventory.json`: the time, the rows, and the MLflow URI.

    Raises:
        InventoryError: see `seldon_deployments`; MLflow not reachable.
    """
    from .. import tracking

    tracking.configure(settings.mlflow_tracking_uri)
    items = seldon_deployments() if deployments is None else deployments
    try:
        rows = inventory_rows(items, resolve_in_registry)
    except Exception as err:  # MLflow unreachable or refusing: say so, no traceback
        raise InventoryError(
            f"MLflow at {settings.mlflow_tracking_uri}: {type(err).__name__}: {err}"
        ) from None
    out = Path(settings.reports_dir) / INVENTORY_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "registry": settings.mlflow_tracking_uri,
                "models": rows,
            },
            indent=2,
        )
    )
    return out
