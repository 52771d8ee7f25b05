"""The data pipeline steps behind `fraudlab simulate | validate | features`, with reuse.

Each step writes a dataset with a manifest that records its input (parameters or the input
dataset's digest). A step whose output manifest already matches its input is skipped, so
re-running `make demo` reuses what is up to date.

Example:
    >>> manifest, reused = simulate_step(Settings(n_customers=100, n_terminals=200, nb_days=40))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..config import Settings
from ..data import store
from ..data.contracts import REASON_COLUMN, SOURCE_COLUMN, validate_transactions
from ..data.drift_scenarios import DriftScenario, inject_drift
from ..data.simulator import SimulationParams, simulate_transactions
from ..features import build_features

Progress = Callable[[str], None]
DUPLICATE_REASON = "TRANSACTION_ID:duplicate_in_earlier_file"


def drift_scenario(settings: Settings) -> DriftScenario | None:
    """The drift scenario that `settings` asks for, or None."""
    if settings.drift_start is None:
        return None
    scenario = DriftScenario(
        start_day=(settings.drift_start - settings.start_date).days,
        extra_compromised_terminals=settings.drift_extra_terminals,
        amount_factor=settings.drift_amount_factor,
        night_testing_customers=settings.drift_night_customers,
    )
    return scenario if scenario.active else None


def simulate_step(
    settings: Settings, force: bool = False, progress: Progress | None = None
) -> tuple[dict, bool]:
    """Simulate transactions into `raw_dir` unless a dataset with the same parameters exists.

    Returns:
        `(manifest, reused)`.
    """
    simulation = SimulationParams.from_settings(settings)
    params = simulation.to_dict()
    drift = drift_scenario(settings)
    if drift is not None:
        params["drift"] = drift.to_dict()
    # --8<-- [start:simulate-reuse]
    existing = store.read_manifest(settings.raw_dir)
    if not force and existing and existing.get("params") == params:
        return existing, True
    # --8<-- [end:simulate-reuse]
    frame = simulate_transactions(simulation, progress=progress)
    if drift is not None:
        frame = inject_drift(frame, drift, seed=settings.seed)
    return store.write_dataset(
        frame,
        settings.raw_dir,
        name="raw",
        extra={"params": params, "generator": "fraud-detection-handbook-ch3.2"},
    ), False


def validate_step(
    settings: Settings,
    source: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    max_quarantine: float = 1.0,
) -> tuple[dict, bool]:
    """Validate every file of `source` (default `raw_dir`) against the data contract.

    Valid rows go to `validated_dir`, the others to `quarantine_dir` with `QUARANTINE_REASON` and
    `SOURCE_FILE`; a `TRANSACTION_ID` already seen in an earlier file is quarantined as a duplicate.
    Input may be Parquet or pandas pickle files (the handbook's own format).

    A quarantined share above `max_quarantine` (the data SLO, e.g. 0.001) still writes both
    datasets, so the rows can be inspected, but marks the validated one `within_budget: false`:
    `features_step` refuses to build on it (a failed validation never feeds training).

    Returns:
        `(manifest of the validated dataset, reused)`; the manifest holds `input_rows`,
        `quarantined_rows`, `quarantine_reasons`, `input_digest`, `max_quarantine` and
        `within_budget`.

    Raises:
        store.DatasetError: if `source` is missing or holds no readable file.
    """
    source = source or settings.raw_dir
    # --8<-- [start:validate-reuse]
    input_manifest = store.read_manifest(source)
    input_digest = input_manifest["digest"] if input_manifest else None
    existing = store.read_manifest(settings.validated_dir)
    if (
        not force
        and input_digest
        and existing
        and existing.get("input_digest") == input_digest
        and existing.get("max_quarantine") == max_quarantine
    ):
        return existing, True
    # --8<-- [end:validate-reuse]
    valid_parts, bad_parts, reasons, names = [], [], {}, []
    input_rows = 0
    files = store.list_files(source)
    for path in files:
        name = path.rsplit("/", 1)[-1]
        frame = store.read_file(path)
        input_rows += len(frame)
        result = validate_transactions(frame)
        for reason, count in result.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + int(count)
        valid_parts.append(result.valid)
        names.append(name)
        if len(result.quarantined):
            bad_parts.append(result.quarantined.assign(**{SOURCE_COLUMN: name}))
        if progress:
            progress(name)
    valid_all = pd.concat(valid_parts, ignore_index=True)
    # --8<-- [start:reconcile]
    # An id already used in an earlier file (files in name order) is a duplicate too.
    dup = _seen_before(valid_all["TRANSACTION_ID"])
    if dup.any():
        sources = np.repeat(names, [len(p) for p in valid_parts])
        moved = valid_all[dup].assign(**{SOURCE_COLUMN: sources[dup]}).astype("string")
        moved[REASON_COLUMN] = DUPLICATE_REASON
        bad_parts.append(moved)
        reasons[DUPLICATE_REASON] = int(dup.sum())
        valid_all = valid_all[~dup]
    if not valid_all["TX_DATETIME"].is_monotonic_increasing:  # day files are usually in order
        valid_all = valid_all.sort_values("TX_DATETIME", kind="stable")
    valid_all = valid_all.reset_index(drop=True)
    quarantined = (
        pd.concat(bad_parts, ignore_index=True)
        if bad_parts
        else pd.DataFrame(columns=[REASON_COLUMN, SOURCE_COLUMN], dtype="string")
    )
    if (
        len(valid_all) + len(quarantined) != input_rows
    ):  # the contract of this step: nothing is lost
        raise AssertionError(
            f"row accounting broken: {len(valid_all)} valid + {len(quarantined)} quarantined != {input_rows} input"
        )
    # --8<-- [end:reconcile]
    q_manifest = _write_quarantine(quarantined, settings.quarantine_dir, input_digest, reasons)
    manifest = store.write_dataset(
        valid_all,
        settings.validated_dir,
        name="validated",
        extra={
            "input": source,
            "input_digest": input_digest,
            "input_files": len(files),
            "input_rows": input_rows,
            "quarantined_rows": len(quarantined),
            "quarantine_reasons": reasons,
            "quarantine_digest": q_manifest["digest"],
            "max_quarantine": max_quarantine,
            "within_budget": len(quarantined) <= max_quarantine * input_rows,
        },
    )
    return manifest, False


def _seen_before(ids: pd.Series) -> np.ndarray:
    """Rows whose id occurs earlier in `ids` (False for every row of a strictly increasing id)."""
    v = ids.to_numpy()
    if len(v) < 2 or bool((v[1:] > v[:-1]).all()):
        return np.zeros(len(v), dtype=bool)
    return ids.duplicated(keep="first").to_numpy()


def _write_quarantine(
    quarantined: pd.DataFrame, url: str, input_digest: str | None, reasons: dict
) -> dict:
    """Write quarantined rows as one Parquet file (string columns) plus a manifest."""
    fs, final = store.fs_and_path(url)
    path = f"{final}.tmp-{uuid.uuid4().hex[:8]}"
    fs.makedirs(path, exist_ok=True)
    if len(quarantined):
        with fs.open(f"{path}/quarantine.parquet", "wb") as f:
            quarantined.astype("string").to_parquet(f, index=False)
    manifest = {
        "name": "quarantine",
        "rows": len(quarantined),
        "digest": store.frame_digest(quarantined.astype("string")),
        "input_digest": input_digest,
        "reasons": reasons,
    }
    with fs.open(f"{path}/{store.MANIFEST}", "w") as f:
        json.dump(manifest, f, indent=2)
    store.replace_dir(fs, path, final)
    return manifest


def features_step(settings: Settings, force: bool = False) -> tuple[dict, bool]:
    """Compute the 15 handbook features for the validated dataset into `features_dir`.

    The terminal-risk windows use the label delay `settings.delta_delay` (FRAUD_DELTA_DELAY), the
    same delay the train/test split uses (Fraud Detection Handbook, ch. 3.4 and 5.2); a dataset
    built with another delay is recomputed, not reused.

    Returns:
        `(manifest, reused)`.

    Raises:
        store.DatasetError: if the validated dataset is missing.
    """
    # --8<-- [start:features-reuse]
    input_manifest = store.read_manifest(settings.validated_dir)
    if input_manifest is None:
        raise store.DatasetError(
            f"{settings.validated_dir} has no manifest: run `fraudlab validate` first"
        )
    if input_manifest.get("within_budget") is False:
        raise store.DatasetError(
            f"{settings.validated_dir} quarantined {input_manifest['quarantined_rows']:,} of "
            f"{input_manifest['input_rows']:,} rows, above its budget --max-quarantine "
            f"{input_manifest['max_quarantine']}: inspect {settings.quarantine_dir}, fix the input, "
            "and validate again"
        )
    existing = store.read_manifest(settings.features_dir)
    if (
        not force
        and existing
        and existing.get("input_digest") == input_manifest["digest"]
        and existing.get("delay_days") == settings.delta_delay
    ):
        return existing, True
    # --8<-- [end:features-reuse]
    frame = build_features(
        store.read_dataset(settings.validated_dir), delay_days=settings.delta_delay
    )
    extra = {"input_digest": input_manifest["digest"], "delay_days": settings.delta_delay}
    return store.write_dataset(frame, settings.features_dir, name="features", extra=extra), False


MAX_QUARANTINE = 0.001
"""The data SLO of the validate step (chapter 01): at most 0.1 % of input rows quarantined. The
DAG below, `fraudlab demo` and the data-pipeline WorkflowTemplate's args (tested equal) use it."""

# --8<-- [start:dag]
PIPELINE_DAG: list[tuple[str, list[str], list[str]]] = [
    # (step, fraudlab arguments, steps it depends on)
    ("simulate", ["simulate"], []),
    ("validate", ["validate", "--max-quarantine", str(MAX_QUARANTINE)], ["simulate"]),
    ("features", ["features"], ["validate"]),
    (
        "train-logistic-regression",
        ["train", "--model", "logistic_regression", "--no-promote"],
        ["features"],
    ),
    ("train-random-forest", ["train", "--model", "random_forest", "--no-promote"], ["features"]),
    ("train-mlp", ["train", "--model", "mlp", "--no-promote"], ["features"]),
    (
        "model-tests",
        ["model-test", "--undecided"],
        ["train-logistic-regression", "train-random-forest", "train-mlp"],
    ),
    ("promote", ["promote", "--undecided"], ["model-tests"]),
    ("replay", ["replay", "--day", "2018-08-08", "--wait-ready", "900"], ["promote"]),
]
# --8<-- [end:dag]
"""The pipeline as a DAG: the one definition of its steps and their order. Kind mode runs it as the
Argo WorkflowTemplate `fraud-pipeline` (its task `data` is the DAG of WorkflowTemplate
data-pipeline; the train steps run in parallel; tests/static checks that the templates' tasks,
dependencies and container arguments equal this list); `fraudlab pipeline --through STEP` runs the
same arguments locally, in this (topological) order."""
PIPELINE_ALIASES = {"data": "features"}
"""Names of the Argo DAG's composite tasks, as the step they end with (`--through data`)."""


def steps_through(last: str) -> list[tuple[str, list[str]]]:
    """The steps of `PIPELINE_DAG` that `last` needs, `last` included, in run order.

    Raises:
        ValueError: when `last` is not a step (the message lists the steps).
    """
    deps = {name: needs for name, _, needs in PIPELINE_DAG}
    last = PIPELINE_ALIASES.get(last, last)
    if last not in deps:
        raise ValueError(f"no pipeline step {last!r}; the steps: {', '.join(deps)}")
    wanted, todo = set(), [last]
    while todo:
        step = todo.pop()
        if step not in wanted:
            wanted.add(step)
            todo.extend(deps[step])
    return [(name, args) for name, args, _ in PIPELINE_DAG if name in wanted]
