"""The online serving path: a raw transaction → Feast's online features → the served model's score.

A client sends what a payment terminal knows (`RAW_FIELDS`: id, time, customer, terminal,
amount). This path computes the transaction's own features, asks the Feast feature server for
the customer's and the terminal's window features (`POST /get-online-features`), builds the 15
inputs in `FEATURE_NAMES` order (`model_inputs`, the learner's in lab 04) and scores them with the
served model (V2 inference protocol). A feature the online store lacks stops it with
`MissingFeatureError` naming the entity and the feature: never a NaN or a 0 in its place.

`parity_checks` is what lab 04 verifies: online values equal the offline point-in-time values and
the training features dataset; terminal risk reads no label newer than t − delay; a missing
entity gets the clear error; the online path's score equals the score of the training row.

Freshness: a customer window includes the transaction being scored, so the feature pipeline must
have processed it before the lookup (here: materialized up to its time; in production a stream
pushes each transaction to the online store, Feast's PushSource). The checks sample transactions
that are the newest of their customer and terminal at the materialization time: for those, the
online store holds exactly the values training saw.

Example:
    >>> score_transaction(settings, {"TRANSACTION_ID": 1, "TX_DATETIME": "2018-05-15T10:00:00",
    ...     "CUSTOMER_ID": 7, "TERMINAL_ID": 42, "TX_AMOUNT": 31.5})      # doctest: +SKIP
    {'TRANSACTION_ID': 1, 'fraud_probability': 0.0132, 'inputs': {...}}
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from ..config import FEATURE_DELAY_DAYS, Settings
from ..data import store
from ..features.online import (
    INPUTS_EXERCISE,
    VIEWS,
    MissingFeatureError,
    check_raw,
    model_inputs,
    online_values,
    raw_transaction,
)
from ..features.transform import FEATURE_NAMES, SECONDS_PER_DAY, TERMINAL_FEATURES, WINDOWS_DAYS

TOLERANCE = 1e-9
"""Online, offline and training values of a feature agree within this (absolute)."""
OUTPUT_NAME = "fraud_probability"
MATERIALIZED_FILE = "materialized.json"


class OnlineServingError(RuntimeError):
    """The feature server or the model server did not answer as expected."""


def lookup(settings: Settings, customer_ids: list[int], terminal_ids: list[int]) -> list[dict]:
    """The 12 window features of each (customer, terminal) pair from the Feast feature server.

    Returns:
        One {feature name: value} per pair.

    Raises:
        MissingFeatureError: a feature has no value (status other than PRESENT) for an entity;
            the first one, in `FEATURE_NAMES` order.
        OnlineServingError: the feature server is unreachable, answers an error, or answers a
            body that is not Feast's shape (names the server and the missing part).
    """
    features = [f"{view}:{name}" for view, (_, names) in VIEWS.items() for name in names]
    url = f"{settings.feature_server_base_url}/get-online-features"
    body = {
        "features": features,
        "entities": {"CUSTOMER_ID": list(customer_ids), "TERMINAL_ID": list(terminal_ids)},
    }
    try:
        answer = httpx.post(url, json=body, timeout=30)
    except httpx.HTTPError as err:
        raise OnlineServingError(
            f"the feature server at {url} does not answer ({type(err).__name__}): start it with "
            "`fraudlab up --features`"
        ) from err
    if answer.status_code != 200:
        raise OnlineServingError(f"POST {url} → {answer.status_code}: {answer.text[:300]}")
    data = _feature_answer(url, answer, len(customer_ids))
    statuses = dict(zip(data["metadata"]["feature_names"], data["results"], strict=True))
    rows = []
    for i, (customer, terminal) in enumerate(zip(customer_ids, terminal_ids, strict=True)):
        values = online_values(data, i)
        for view, (key, names) in VIEWS.items():
            for name in names:
                if values.get(name) is None:
                    status = (statuses.get(name, {}).get("statuses") or ["missing"])[i]
                    entity = customer if key == "CUSTOMER_ID" else terminal
                    raise MissingFeatureError(f"{key}={entity}", f"{view}:{name}", status)
        rows.append(values)
    return rows


def _json(url: str, answer: httpx.Response) -> object:
    """The JSON body of a server's 200 answer; OnlineServingError naming the server if it is not
    JSON."""
    try:
        return answer.json()
    except ValueError as err:
        raise OnlineServingError(
            f"POST {url} answered 200 with a body that is not JSON: {answer.text[:200]!r}"
        ) from err


def _feature_answer(url: str, answer: httpx.Response, n_rows: int) -> dict:
    """A `/get-online-features` answer checked for the shape `online_values` reads:
    {"metadata": {"feature_names": [names]}, "results": [{"values": [n_rows values],
    "statuses": [n_rows]?} per name]} (feast/feature_server.py, `convert_response_to_dict`).

    Raises:
        OnlineServingError: the body is not JSON or lacks a part of that shape (named).
    """
    data = _json(url, answer)
    expected = (
        'expected {"metadata": {"feature_names": [...]}, "results": [{"values": [...]}, ...]}'
    )
    names = data.get("metadata", {}).get("feature_names") if isinstance(data, dict) else None
    if not isinstance(names, list):
        raise OnlineServingError(f"{url} answered without metadata.feature_names: {expected}")
    results = data.get("results")
    if not isinstance(results, list) or len(results) != len(names):
        raise OnlineServingError(
            f"{url} answered {len(names)} feature names but "
            f"{len(results) if isinstance(results, list) else 'no list of'} results: {expected}"
        )
    for name, result in zip(names, results, strict=True):
        values = result.get("values") if isinstance(result, dict) else None
        statuses = result.get("statuses") if isinstance(result, dict) else None
        if not isinstance(values, list) or len(values) != n_rows:
            raise OnlineServingError(
                f"{url} answered no list of {n_rows} values for {name}: {expected}"
            )
        if statuses is not None and (not isinstance(statuses, list) or len(statuses) != n_rows):
            raise OnlineServingError(f"{url} answered no list of {n_rows} statuses for {name}")
    return data


def infer(settings: Settings, inputs: np.ndarray) -> np.ndarray:
    """Score (n, 15) inputs in `FEATURE_NAMES` order with the served model (V2 protocol).

    Raises:
        OnlineServingError: the model server is unreachable, refuses the request, or answers a
            body without one `fraud_probability` output of n numbers (names the server).
    """
    url = f"{settings.inference_url.rstrip('/')}/v2/models/{settings.model_name}/infer"
    body = {
        "inputs": [
            {"name": name, "shape": [len(inputs)], "datatype": "FP64", "data": column.tolist()}
            for name, column in zip(FEATURE_NAMES, np.asarray(inputs, dtype=float).T, strict=True)
        ]
    }
    try:
        answer = httpx.post(url, json=body, timeout=30)
    except httpx.HTTPError as err:
        raise OnlineServingError(
            f"the model server at {url} does not answer ({type(err).__name__}): `fraudlab up`"
        ) from err
    if answer.status_code != 200:
        raise OnlineServingError(f"POST {url} → {answer.status_code}: {answer.text[:300]}")
    data = _json(url, answer)
    outputs = data.get("outputs") if isinstance(data, dict) else None
    found = [o for o in outputs or [] if isinstance(o, dict) and o.get("name") == OUTPUT_NAME]
    if not isinstance(outputs, list) or len(found) != 1:
        raise OnlineServingError(
            f"{url} answered no output named {OUTPUT_NAME!r} (V2 protocol: "
            f'{{"outputs": [{{"name": "{OUTPUT_NAME}", "data": [...]}}]}}): {answer.text[:200]}'
        )
    try:
        scores = np.asarray(found[0].get("data"), dtype=float).reshape(-1)
    except (TypeError, ValueError) as err:
        raise OnlineServingError(
            f"{url} answered {OUTPUT_NAME} data that is not a list of numbers: {answer.text[:200]}"
        ) from err
    if len(scores) != len(inputs):
        raise OnlineServingError(
            f"{url} answered {len(scores)} {OUTPUT_NAME} values for {len(inputs)} transactions"
        )
    return scores


def serving_inputs(transaction: dict, online: dict) -> list[float]:
    """The 15 inputs the serving path scores: `model_inputs`, or the learner's (lab 04) when
    `FRAUD_LAB_CODE` has `online_inputs.py`.

    Raises:
        MissingFeatureError: a window feature is missing.
        LabCodeError: the learner's module does not load, or its function is not written yet.
    """
    build = INPUTS_EXERCISE.implementation(model_inputs)
    inputs = [float(v) for v in build(transaction, online)]
    if len(inputs) != len(FEATURE_NAMES):
        raise OnlineServingError(
            f"model_inputs returned {len(inputs)} values; the model takes {len(FEATURE_NAMES)}"
        )
    return inputs


# --8<-- [start:score]
def score_transaction(settings: Settings, transaction: dict) -> dict:
    """Score one raw transaction through the online path.

    Args:
        transaction: the raw fields (`RAW_FIELDS`).

    Returns:
        {"TRANSACTION_ID", "fraud_probability", "inputs": {feature name: value}}.

    Raises:
        ValueError: not a raw transaction (names the field).
        MissingFeatureError: the online store lacks a feature of its customer or terminal.
        OnlineServingError: the feature server or the model server failed.
    """
    check_raw(transaction)
    (online,) = lookup(settings, [transaction["CUSTOMER_ID"]], [transaction["TERMINAL_ID"]])
    inputs = serving_inputs(transaction, online)
    (score,) = infer(settings, np.array([inputs]))
    return {
        "TRANSACTION_ID": transaction["TRANSACTION_ID"],
        OUTPUT_NAME: float(score),
        "inputs": dict(zip(FEATURE_NAMES, inputs, strict=True)),
    }


# --8<-- [end:score]


def materialized(settings: Settings) -> dict | None:
    """The window last materialized by `fraudlab up --features` ({"start", "end"}, ISO), or None."""
    from ..launchers.feast import feast_dir

    path = feast_dir(settings) / MATERIALIZED_FILE
    return json.loads(path.read_text()) if path.exists() else None


def newest_rows(features: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The transactions at or before `as_of` that are the newest of their customer and of their
    terminal: the ones whose online features are exactly their training features."""
    seen = features[features["TX_DATETIME"] <= as_of]
    last_customer = seen.groupby("CUSTOMER_ID")["TX_DATETIME"].transform("max")
    last_terminal = seen.groupby("TERMINAL_ID")["TX_DATETIME"].transform("max")
    return seen[(seen["TX_DATETIME"] == last_customer) & (seen["TX_DATETIME"] == last_terminal)]


def terminal_risk_from_labels(
    history: pd.DataFrame, terminal: int, at: pd.Timestamp, delay_days: int
) -> dict[str, float]:
    """The terminal features of `terminal` at time `at`, recomputed from labels no newer than
    `at` − `delay_days` only (the rows after it are dropped before counting).

    Windows (t − d − n, t − d] (Fraud Detection Handbook, ch. 3.4). Returns {name: value}.
    """
    cutoff = at - pd.Timedelta(days=delay_days)
    rows = history[(history["TERMINAL_ID"] == terminal) & (history["TX_DATETIME"] <= cutoff)]
    out = {}
    for n in WINDOWS_DAYS:
        window = rows[rows["TX_DATETIME"] > cutoff - pd.Timedelta(seconds=n * SECONDS_PER_DAY)]
        out[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = float(len(window))
        out[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = (
            float(window["TX_FRAUD"].mean()) if len(window) else 0.0
        )
    return out


CHECKS = (
    "online features equal the offline point-in-time values",
    "online features equal the training dataset's values",
    f"terminal risk reads no label newer than t − {FEATURE_DELAY_DAYS} days",
    "a customer missing online gets a clear error",
    "a raw transaction scored through the online path gets its training row's score",
)
"""The names of `parity_checks`' results, in order (lab 04's check lines)."""


def parity_sample(
    settings: Settings, sample_size: int = 20, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the features dataset, the sampled transactions) `parity_checks` uses: `sample_size`
    transactions that are the newest of their customer and terminal at the materialization
    time, drawn with `seed` (the same sample for the same dataset and window).

    Raises:
        OnlineServingError: nothing materialized yet, or no transaction of the features dataset
            is the newest of its customer and terminal at the window's end (names the window).
    """
    window = materialized(settings)
    if window is None:
        raise OnlineServingError("nothing materialized yet: run `fraudlab up --features`")
    as_of = pd.Timestamp(window["end"]).tz_convert("UTC").tz_localize(None)
    features = store.read_dataset(settings.features_dir)
    candidates = newest_rows(features, as_of)
    if candidates.empty:
        raise OnlineServingError(
            f"no transaction to check in the materialized window {window['start']} – "
            f"{window['end']}: none at or before its end is the newest of its customer and "
            "terminal (the features dataset has changed since: run `fraudlab up --features` "
            "again)"
        )
    return features, candidates.sample(min(sample_size, len(candidates)), random_state=seed)


def entity_rows(sample: pd.DataFrame) -> pd.DataFrame:
    """The entity rows of a point-in-time join: `CUSTOMER_ID`, `TERMINAL_ID`, `event_timestamp`."""
    return sample[["CUSTOMER_ID", "TERMINAL_ID", "TX_DATETIME"]].rename(
        columns={"TX_DATETIME": "event_timestamp"}
    )


def parity_checks(
    settings: Settings,
    sample_size: int = 20,
    seed: int = 0,
    offline: pd.DataFrame | None = None,
    score: bool = True,
) -> list[dict]:
    """Lab 04's checks (`CHECKS`) against the running feature server and model server.

    On `parity_sample`'s transactions: online == offline point-in-time == the features dataset
    (≤ `TOLERANCE`); terminal risk equals a recomputation from labels no newer than t − delay;
    an unknown customer gets `MissingFeatureError`; the online path's score equals the model's
    score of the training row. Each result is {"check", "passed", "expected", "found"}.

    Args:
        score: False: the last check is not run (`passed` None): no model is served yet.
        offline: Feast's point-in-time features of `entity_rows(sample)` computed elsewhere
            (kind mode: by the Feast image, `offline.py`); None: computed here with .venv-feast.

    Raises:
        OnlineServingError: nothing materialized yet, a server does not answer, or `offline`
            is not for this sample.
    """
    from ..launchers.feast import historical_features

    features, sample = parity_sample(settings, sample_size, seed)
    windows = [n for _, (_, names) in VIEWS.items() for n in names]
    checks = []

    online = pd.DataFrame(
        lookup(settings, sample["CUSTOMER_ID"].tolist(), sample["TERMINAL_ID"].tolist())
    )[windows].to_numpy(dtype=float)
    rows = entity_rows(sample)
    if offline is None:
        offline = historical_features(settings, rows)
    elif not (
        offline[["CUSTOMER_ID", "TERMINAL_ID"]].to_numpy().tolist()
        == rows[["CUSTOMER_ID", "TERMINAL_ID"]].to_numpy().tolist()
    ):
        raise OnlineServingError(
            "the offline features are not for this sample (run `fraudlab feature-store sample` "
            "again with the same --sample and --seed)"
        )
    offline = offline[windows].to_numpy(dtype=float)
    training = sample[windows].to_numpy(dtype=float)
    for name, what, found in zip(
        CHECKS[:2], ("offline point-in-time", "training"), (offline, training), strict=True
    ):
        diff = float(np.nanmax(np.abs(online - found))) if len(sample) else float("nan")
        ok = bool(len(sample)) and not np.isnan(found).any() and diff <= TOLERANCE
        checks.append(
            _check(
                name,
                ok,
                f"max |online − {what}| ≤ {TOLERANCE:g} over {len(sample)} transactions",
                f"max |online − {what}| = {diff:.3g}"
                + (" (a feature has no offline value)" if np.isnan(found).any() else ""),
            )
        )

    recomputed = np.array(
        [
            [
                terminal_risk_from_labels(features, t, at, settings.delta_delay)[n]
                for n in TERMINAL_FEATURES
            ]
            for t, at in zip(sample["TERMINAL_ID"], sample["TX_DATETIME"], strict=True)
        ]
    ).reshape(len(sample), len(TERMINAL_FEATURES))
    served = online[:, [windows.index(n) for n in TERMINAL_FEATURES]]
    diff = float(np.abs(served - recomputed).max()) if len(sample) else float("nan")
    checks.append(
        _check(
            CHECKS[2],
            bool(len(sample)) and diff <= TOLERANCE,
            f"max |online − recomputed from labels ≤ t − {settings.delta_delay} d| ≤ {TOLERANCE:g}",
            f"{diff:.3g}",
        )
    )

    unknown = int(features["CUSTOMER_ID"].max()) + 1
    probe = raw_transaction(sample.iloc[0]) | {"CUSTOMER_ID": unknown}
    try:
        lookup(settings, [probe["CUSTOMER_ID"]], [probe["TERMINAL_ID"]])
        found = "no error: the lookup returned values"
    except MissingFeatureError as err:
        found = f"MissingFeatureError naming {err.entity} and {err.feature.split(':')[0]}"
    expected = f"MissingFeatureError naming CUSTOMER_ID={unknown} and customer_windows"
    checks.append(_check(CHECKS[3], found == expected, expected, found))

    first = raw_transaction(sample.iloc[0]) if len(sample) else None
    if not score:
        checks.append(
            {
                "check": CHECKS[4],
                "passed": None,
                "expected": "a served model",
                "found": "not checked: no model is served yet (--no-score; kind mode serves it from lab 09)",
                "transaction": first,
            }
        )
        return checks
    scored = [score_transaction(settings, raw_transaction(row)) for _, row in sample.iterrows()]
    path = np.array([s[OUTPUT_NAME] for s in scored])
    reference = infer(settings, sample[FEATURE_NAMES].to_numpy(dtype=float))
    diff = float(np.abs(path - reference).max()) if len(sample) else float("nan")
    checks.append(
        _check(
            CHECKS[4],
            bool(len(sample)) and diff <= TOLERANCE,
            f"max |online path − training row| ≤ {TOLERANCE:g}",
            f"{diff:.3g}",
        )
        | {"transaction": first}
    )
    return checks


def _check(name: str, passed: bool, expected: str, found: str) -> dict:
    return {"check": name, "passed": bool(passed), "expected": expected, "found": found}


def write_materialized(settings: Settings, start: pd.Timestamp, end: pd.Timestamp) -> Path:
    """Record the materialized window (what `parity_checks` samples against)."""
    from ..launchers.feast import feast_dir

    path = feast_dir(settings) / MATERIALIZED_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"start": start.isoformat(), "end": end.isoformat()}))
    return path
