"""Continuous training: an alert (or a schedule) retrains on the most recent labelled window,
the challenger goes through the promotion gate, and serving moves to a new champion.

- `retrain`: one cycle, recorded in MLflow (experiment `continuous-training`: trigger, data
  windows, decision and reason).
- `create_app`: the controller, an Alertmanager webhook receiver (`POST /alerts`); alerts
  labelled `action=retrain` start a cycle — in its own process (local mode, `ct_mode=inline`) or
  as an Argo Workflow from the WorkflowTemplate `retrain` (kind mode, `ct_mode=workflow`). One cycle at a time; alerts that arrive during
  a cycle are coalesced into it.

Example:
    >>> outcome = retrain(Settings(), {"source": "manual"})   # doctest: +SKIP
    >>> outcome["decision"], outcome["reason"]                 # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from pathlib import Path

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from .. import tracking
from ..config import Settings
from ..data import store
from ..labcode import Exercise, LabCodeError
from ..monitoring.monitor import served_days
from ..responsible.review import reviewed_training_rows
from ..training.promotion import CHAMPION
from ..training.split import EvaluationProtocol
from .lifecycle import train_register_promote

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
log = logging.getLogger(__name__)


WINDOW_EXERCISE = Exercise(lab=13, module="window", function="retraining_window")
"""Lab 13: the learner's `retraining_window` (labs/13-continuous-training/starter/window.py) stands
in for this module's when `FRAUD_LAB_CODE` has it (`labcode`): the retrain step runs it."""


# --8<-- [start:window]
def retraining_window(
    as_of: dt.date, delay_days: int, train_days: int, test_days: int
) -> dict[str, dt.date]:
    """The newest protocol window whose test labels are known on `as_of`.

    Labels arrive `delay_days` late, so the test week ends on as_of − delay; the usual delay
    period and training week come before it (Fraud Detection Handbook, ch. 3.5: train, delay,
    test, with labels `delay_days` late).

    Returns:
        `train_start` (the first training day), `test_start` and `test_end` (inclusive).
    """
    test_end = as_of - dt.timedelta(days=delay_days)
    test_start = test_end - dt.timedelta(days=test_days - 1)
    train_start = test_start - dt.timedelta(days=delay_days + train_days)
    return {"train_start": train_start, "test_start": test_start, "test_end": test_end}


def recent_window(settings: Settings, as_of: dt.date) -> dict[str, dt.date]:
    """`retraining_window` (or the learner's, lab 13) with the protocol of `settings`
    (`delta_delay`, `delta_train`, `delta_test`), plus `as_of`.

    Raises:
        LabCodeError: the learner's function does not import, is not written yet, or returns
            a window without the three dates.
    """
    window = WINDOW_EXERCISE.implementation(retraining_window)(
        as_of, settings.delta_delay, settings.delta_train, settings.delta_test
    )
    keys = ("train_start", "test_start", "test_end")
    if not isinstance(window, dict) or not all(isinstance(window.get(k), dt.date) for k in keys):
        raise LabCodeError(f"lab 13: retraining_window returned {window!r}; expected dates {keys}")
    return {**{k: window[k] for k in keys}, "as_of": as_of}


# --8<-- [end:window]


def retrain(settings: Settings, trigger: dict) -> dict:
    """Run one continuous-training cycle.

    Args:
        settings: data, registry and serving settings (`retrain_model` is the model type).
        trigger: what started the cycle (recorded in MLflow).

    Returns:
        `version`, `decision` (champion/challenger), `reason`, `metrics`, `window`, `reloaded`,
        `ct_run_id`, `reviewed_labels` (lab 18: reviewed cases that joined the training set).

    Raises:
        store.DatasetError: if the features dataset is missing.
    """
    days = served_days(settings)
    manifest = store.read_manifest(settings.features_dir)
    if manifest is None:
        raise store.DatasetError(
            f"{settings.features_dir} has no manifest: run the data pipeline first"
        )
    features = store.read_dataset(settings.features_dir)
    # --8<-- [start:cycle]
    as_of = max(days) if days else features["TX_DATETIME"].max().date()
    window = recent_window(settings, as_of)
    # Lab 18: analysts' labels of the days whose delayed labels are not in yet join the training set.
    reviewed = reviewed_training_rows(settings, features, window["test_end"], as_of)
    out = train_register_promote(
        settings,
        settings.retrain_model,
        protocol=EvaluationProtocol.from_settings(settings).starting(window["train_start"]),
        frame=features,
        manifest=manifest,
        force=True,  # a cycle always trains: the trigger says the served model is stale
        tags={
            "continuous_training": "true",
            "trigger": str(trigger.get("alertname", trigger.get("source", "manual"))),
            "reviewed_labels": str(len(reviewed)),
        },
        feedback=reviewed,
    )
    decision = out.decision
    reloaded = reload_serving(settings) if decision.alias == CHAMPION else False
    # --8<-- [end:cycle]
    params = {
        "model_type": settings.retrain_model,
        **{k: v.isoformat() for k, v in window.items()},
        "data_digest": manifest["digest"],
        "reviewed_labels": len(reviewed),
        "reviewed_transaction_ids": ",".join(map(str, sorted(reviewed["TRANSACTION_ID"].tolist())))[
            :480
        ],
    }
    run_id = tracking.log_continuous_training(trigger, params, out.metrics, decision, out.version)
    return {
        "version": out.version,
        "decision": decision.alias,
        "reason": decision.reason,
        "metrics": out.metrics,
        "window": {k: v.isoformat() for k, v in window.items()},
        "reloaded": reloaded,
        "ct_run_id": run_id,
        "reviewed_labels": len(reviewed),
    }


def _kubernetes() -> tuple[str, dict, str]:
    """In-cluster API server URL, auth header and CA file (the pod's ServiceAccount)."""
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
    token = (SERVICE_ACCOUNT / "token").read_text().strip()
    return (
        f"https://{host}:{port}",
        {"Authorization": f"Bearer {token}"},
        str(SERVICE_ACCOUNT / "ca.crt"),
    )


def reload_serving(settings: Settings) -> bool:
    """Make serving load the new champion.

    Local mode: MLServer's model repository API reloads the model (the runtime resolves
    `@champion` again). The API is closed to clients: the call carries the admin token that
    `fraudlab up` made for this stack (`launchers.mlserver.admin_token`; serving/gate.py checks
    it). Kind mode (inside a pod): a JSON patch on the SeldonDeployment's pod template annotation
    rolls its replicas (the rolling update of the Deployment that Seldon makes keeps replicas
    serving while new ones start; the PodDisruptionBudget only limits evictions, not a rollout);
    there the API stays closed.

    Returns:
        True when serving acknowledged the reload; False also when there is no admin token.
    """
    # --8<-- [start:reload]
    if "KUBERNETES_SERVICE_HOST" in os.environ and settings.ct_mode == "workflow":
        api, headers, ca = _kubernetes()
        patch = [{"op": "add", "path": "/spec/predictors/0/componentSpecs/0/metadata/annotations",
                  "value": {"fraud-lab.io/champion-reloaded-at": dt.datetime.now(dt.UTC).isoformat()}}]  # fmt: skip
        url = f"{api}/apis/machinelearning.seldon.io/v1/namespaces/{settings.ct_namespace}/seldondeployments/{settings.model_name}"
        response = httpx.patch(
            url,
            json=patch,
            headers={**headers, "Content-Type": "application/json-patch+json"},
            verify=ca,
            timeout=30,
        )
        return response.status_code == 200
    from ..launchers.mlserver import admin_token

    token = admin_token(settings)
    if token is None:
        log.warning("no serving admin token (FRAUD_SERVING_ADMIN_TOKEN): serving not reloaded")
        return False
    base = settings.serving_reload_url or settings.inference_url
    response = httpx.post(
        f"{base.rstrip('/')}/v2/repository/models/{settings.model_name}/load",
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    return response.status_code == 200
    # --8<-- [end:reload]


RETRAIN_TEMPLATE = "retrain"
"""The WorkflowTemplate behind every retraining run (manifests/base/continuous-training)."""


def retrain_workflow(trigger: dict) -> dict:
    """The Argo Workflow that runs one retraining cycle for `trigger`.

    It names the `retrain` WorkflowTemplate (the same one the weekly CronWorkflow uses) and passes
    the trigger as its `trigger` parameter, so the manifests hold the one definition of the step.
    Argo substitutes the parameter into one element of the container's args: no shell sees it.

    Returns:
        A Workflow object (argoproj.io/v1alpha1) with `generateName: retrain-`.
    """
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "generateName": f"{RETRAIN_TEMPLATE}-",
            "labels": {
                "app.kubernetes.io/name": "retrain",
                "app.kubernetes.io/part-of": "fraud-lab",
                "app.kubernetes.io/component": "continuous-training",
            },
        },  # fmt: skip
        "spec": {
            "workflowTemplateRef": {"name": RETRAIN_TEMPLATE},
            "arguments": {"parameters": [{"name": "trigger", "value": json.dumps(trigger)[:2000]}]},
        },
    }


def create_retrain_workflow(settings: Settings, trigger: dict) -> str:
    """Kind mode: submit a Workflow from the `retrain` WorkflowTemplate; return its name.

    Raises:
        httpx.HTTPStatusError: when the API server refuses it (e.g. RBAC, unknown template).
    """
    api, headers, ca = _kubernetes()
    url = f"{api}/apis/argoproj.io/v1alpha1/namespaces/{settings.ct_namespace}/workflows"
    response = httpx.post(
        url, json=retrain_workflow(trigger), headers=headers, verify=ca, timeout=30
    )
    response.raise_for_status()
    return response.json()["metadata"]["name"]


class Alert(BaseModel):
    """One alert of an Alertmanager webhook notification."""

    status: str
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class AlertNotification(BaseModel):
    """Alertmanager's webhook payload (version 4), the fields we use."""

    status: str
    alerts: list[Alert]


def create_app(settings: Settings) -> FastAPI:
    """The controller: `POST /alerts` (Alertmanager webhook), `GET /status`, `GET /healthz`."""
    app = FastAPI(title="fraud-lab continuous-training controller")
    state = {"running": False, "pending": None, "history": []}
    lock = threading.Lock()

    def cycle(trigger: dict) -> None:
        while trigger is not None:
            try:
                if settings.ct_mode == "workflow":
                    outcome = {"workflow": create_retrain_workflow(settings, trigger)}
                else:
                    outcome = retrain(settings, trigger)
            except Exception as err:  # noqa: BLE001 - recorded and shown on /status, the controller stays up
                outcome = {"error": f"{type(err).__name__}: {err}"}
            with lock:
                state["history"].append(
                    {
                        "trigger": trigger,
                        "outcome": outcome,
                        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
                    }
                )
                trigger, state["pending"] = state["pending"], None
                state["running"] = trigger is not None

    # --8<-- [start:webhook]
    @app.post("/alerts")
    def alerts(notification: AlertNotification) -> dict:
        firing = [
            a
            for a in notification.alerts
            if a.status == "firing" and a.labels.get("action") == "retrain"
        ]
        if not firing:
            return {"accepted": False, "reason": "no firing alert with action=retrain"}
        trigger = {
            "source": "alert",
            "alertname": firing[0].labels.get("alertname", ""),
            "labels": firing[0].labels,
            "alerts": len(firing),
        }
        with lock:
            if state["running"]:
                state["pending"] = trigger
                return {"accepted": True, "queued": True}
            state["running"] = True
        threading.Thread(target=cycle, args=(trigger,), daemon=True).start()
        return {"accepted": True, "queued": False}

    # --8<-- [end:webhook]

    @app.get("/status")
    def status() -> dict:
        with lock:
            return {"running": state["running"], "history": list(state["history"])}

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    return app
