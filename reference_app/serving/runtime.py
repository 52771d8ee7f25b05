"""MLServer runtime for the fraud model: V2 inference protocol, strict request checks.

Request: one input per feature, named as in `FEATURE_NAMES`, each of shape [n] or [n, 1], a
numeric datatype, finite values. Response: one output `fraud_probability`, FP64, shape [n].
Every bad request raises `mlserver.errors.InferenceError`, which MLServer returns as HTTP 400
with the message; no traceback leaves the server.

The runtime reads what it needs from its model settings, as MLServer's own runtimes do:
`parameters.uri` (the MLflow model URI) and `parameters.extra` (`RuntimeParameters`: the tracking
server, the flag threshold, the batch limit). `fraudlab serve` writes them from `Settings`
(`launchers.mlserver.write_mlserver_config`).

Example (model-settings.json):
    {"name": "fraud-detector", "implementation": "reference_app.serving.runtime.FraudRuntime",
     "parameters": {"uri": "models:/fraud-detector@champion",
                    "extra": {"tracking_uri": "http://127.0.0.1:5000", "flag_threshold": 0.5,
                              "max_batch_rows": 10000}}}
"""

from __future__ import annotations

from functools import cache
from itertools import chain
from typing import Literal

import numpy as np
from mlserver import MLModel
from mlserver.errors import InferenceError
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput
from pydantic import BaseModel, ConfigDict, Field

from ..config import Settings
from ..data.domains import FEATURE_DOMAINS, feature_violations
from ..features import FEATURE_NAMES
from ..labcode import Exercise, LabCodeError
from ..monitoring.metrics import batch_metrics, record_scores
from ..tracking import OUTPUT_NAME, configure, load_model
from .batching import MicroBatcher, batching_pays
from .compiled import scorer_for

NUMERIC_DATATYPES = {
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
}


FLOAT32_MAX = float(np.finfo(np.float32).max)
"""The forest computes in float32: a larger magnitude would become infinite inside the model."""
DATATYPE_RANGES = {
    "BOOL": (0, 1),
    **{f"UINT{b}": (0, 2**b - 1) for b in (8, 16, 32, 64)},
    **{f"INT{b}": (-(2 ** (b - 1)), 2 ** (b - 1) - 1) for b in (8, 16, 32, 64)},
    "FP16": (-65504.0, 65504.0),
    "FP32": (-FLOAT32_MAX, FLOAT32_MAX),
}
"""Values each datatype can hold (BOOL and the integer types: whole numbers only); FP64: any finite."""


def _column(name: str, item) -> np.ndarray:
    """One input's values (n,) float64, after the checks of its datatype, shape and data.

    Raises:
        InferenceError: naming the input and what is wrong with it.
    """
    # --8<-- [start:column]
    if item.datatype not in NUMERIC_DATATYPES:
        raise InferenceError(
            f"input {name} has datatype {item.datatype}; expected a numeric datatype such as FP64"
        )
    shape = list(item.shape)
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        raise InferenceError(
            f"input {name} has shape {shape}; expected [n] or [n, 1] (one value per transaction)"
        )
    data = item.data.root if hasattr(item.data, "root") else item.data
    if not isinstance(data, list):  # a bare number, a string, an object
        raise InferenceError(
            f"input {name} has data {json_type(data)}; expected a list of {shape[0]} numbers"
        )
    try:
        raw = np.asarray(data)
    except (TypeError, ValueError):  # ragged nesting
        raise InferenceError(f"input {name} holds ragged or non-numeric data") from None
    if raw.ndim != 1 and list(raw.shape) != shape:  # [[[v]]] for shape [1]: no silent flattening
        raise InferenceError(
            f"input {name} has data nested as {list(raw.shape)} but shape {shape}; send a flat "
            "list of numbers (or one [v] per row for [n, 1])"
        )
    if raw.size and raw.dtype.kind not in "biuf":  # strings, None, objects: no silent parsing
        raise InferenceError(
            f"input {name} holds non-numeric values; {item.datatype} data must be numbers"
        )
    flat = data if raw.ndim == 1 else [v for row in data for v in row]
    if item.datatype != "BOOL" and bool in set(map(type, flat)):
        # JSON true/false: numpy would read them as 1 and 0, even among numbers.
        raise InferenceError(
            f"input {name} holds booleans (true/false); {item.datatype} data must be numbers"
        )
    values = raw.astype(np.float64).reshape(-1)
    if values.size != shape[0]:
        raise InferenceError(
            f"input {name} has {values.size} values but shape {shape} says {shape[0]}"
        )
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InferenceError(
            f"input {name} has {bad.size} NaN or infinite values (first at row {int(bad[0])})"
        )
    bad = np.flatnonzero(np.abs(values) > FLOAT32_MAX)
    if bad.size:
        raise InferenceError(
            f"input {name} holds {values[bad[0]]:g} (row {int(bad[0])}), beyond the float32 range "
            f"(±{FLOAT32_MAX:.4g}) the model computes in"
        )
    if item.datatype in DATATYPE_RANGES:
        low, high = DATATYPE_RANGES[item.datatype]
        whole = item.datatype.startswith(("BOOL", "INT", "UINT"))
        bad = np.flatnonzero(
            (values < low) | (values > high) | (whole & (values != np.floor(values)))
        )
        if bad.size:
            kind = "whole number" if whole else "number"
            raise InferenceError(
                f"input {name} holds {values[bad[0]]:g} (row {int(bad[0])}), which datatype "
                f"{item.datatype} cannot hold: a {kind} in [{low:g}, {high:g}]"
            )
    # --8<-- [end:column]
    return values


@cache
def _datatype_limits(datatypes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per input (15, 1): lowest and highest value its datatype holds, whether whole numbers only."""
    limits = [DATATYPE_RANGES.get(t, (-FLOAT32_MAX, FLOAT32_MAX)) for t in datatypes]
    low = np.array([[max(lo, -FLOAT32_MAX)] for lo, _ in limits])
    high = np.array([[min(hi, FLOAT32_MAX)] for _, hi in limits])
    whole = np.array([[t.startswith(("BOOL", "INT", "UINT"))] for t in datatypes])
    return low, high, whole


def _plain_features(inputs: dict) -> np.ndarray | None:
    """The (n, 15) features of a request whose inputs are all flat lists of n plain numbers
    (shape [n]), finite and within their datatypes' ranges; None for any other request.

    The same checks as `_column`'s, over the 15 inputs at once; a request that fails any of
    them (or has another shape) goes through `_column`, input by input, which names the problem.
    """
    datas, datatypes = [], []
    for name in FEATURE_NAMES:
        item = inputs[name]
        data = item.data.root if hasattr(item.data, "root") else item.data
        if (
            item.datatype not in NUMERIC_DATATYPES
            or len(item.shape) != 1
            or not isinstance(data, list)
            or len(data) != item.shape[0]
        ):
            return None
        datas.append(data)
        datatypes.append(item.datatype)
    if len({len(d) for d in datas}) != 1 or not set(map(type, chain(*datas))) <= {int, float}:
        return None  # different lengths; booleans, strings, nesting, null
    try:
        values = np.array(datas, dtype=np.float64)  # (15, n)
    except (OverflowError, ValueError):  # an integer beyond float64
        return None
    low, high, whole = _datatype_limits(tuple(datatypes))
    # NaN fails both comparisons; ±inf is beyond every range.
    if not ((values >= low) & (values <= high)).all() or (
        whole.any() and (whole & (values != np.floor(values))).any()
    ):
        return None
    return values.T


INPUTS_EXERCISE = Exercise(lab=9, module="request_check", function="input_problem")
"""Lab 09: the learner's `input_problem` (labs/09-serving/starter/request_check.py) stands in for
this module's when `FRAUD_LAB_CODE` has it (`labcode`): the model server runs it on every request."""


# --8<-- [start:input-problem]
def input_problem(names: list[str], expected: tuple[str, ...]) -> str | None:
    """The request check on input names: what is wrong with a request's inputs, or None.

    Args:
        names: the request's input names, in request order (may repeat).
        expected: the inputs the model reads (`FEATURE_NAMES`, 15 names).

    Returns:
        None when `names` is `expected` in any order, each once; else one message, answered
        with 400: the repeated names, else the missing and the unknown ones, with what is expected.
    """
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        return f"duplicate input names in the request: {', '.join(repeated)}"
    missing = [n for n in expected if n not in names]
    unknown = sorted(set(names) - set(expected))
    if not missing and not unknown:
        return None
    parts = []
    if missing:
        parts.append(f"missing inputs: {', '.join(missing)}")
    if unknown:
        parts.append(f"unknown inputs: {', '.join(unknown)}")
    return "; ".join(parts) + f". Expected the {len(expected)} inputs {', '.join(expected)}"


# --8<-- [end:input-problem]


def checked_input_problem():
    """The request check the server runs (`input_problem`, or the learner's in lab 09), tried on
    a complete request first, so that a check still marked TODO stops the model's load instead of
    failing every request.

    Raises:
        LabCodeError: the learner's module does not import, is not written yet, or refuses the
            15 inputs the model reads.
    """
    check = INPUTS_EXERCISE.implementation(input_problem)
    problem = check(list(FEATURE_NAMES), FEATURE_NAMES)
    if problem is not None:
        raise LabCodeError(
            f"lab 09: input_problem refuses a request with exactly the {len(FEATURE_NAMES)} "
            f"inputs: {problem!r}"
        )
    return check


def json_type(value) -> str:
    """The JSON name of a Python value's type, for messages ("a number", "a string", …)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


def _default(name: str):
    return Settings.model_fields[name].default


class RuntimeParameters(BaseModel):
    """`parameters.extra` of the model settings; defaults are `Settings`' (the one source)."""

    model_config = ConfigDict(extra="forbid")

    tracking_uri: str = Field(default_factory=lambda: _default("mlflow_tracking_uri"))
    """MLflow tracking server that resolves `parameters.uri`."""
    flag_threshold: float = Field(default_factory=lambda: _default("flag_threshold"), ge=0, le=1)
    """A score at or above this counts as flagged (metrics)."""
    max_batch_rows: int = Field(default_factory=lambda: _default("max_batch_rows"), gt=0)
    """Largest batch accepted in one request (larger → 400)."""
    micro_batching: Literal["auto", "on", "off"] = Field(
        default_factory=lambda: _default("micro_batching")
    )
    """Score concurrent requests in one model call (`batching.MicroBatcher`): "auto" when one
    call costs ≥ `batching.MERGE_MIN_CALL_S` (a native model, not a compiled one)."""


class FraudRuntime(MLModel):
    """Serve `models:/fraud-detector@champion` (or the URI in the model settings) from MLflow."""

    # --8<-- [start:load]
    async def load(self) -> bool:
        """Resolve the model URI to a registered version and load it through MLflow.

        The version's compiled model (ONNX, in onnxruntime) serves when it has one, else its
        native model (`compiled.scorer_for`). Concurrent requests are scored in one model call,
        after their own checks, when a call is costly (`batching.MicroBatcher`).

        Raises:
            ValueError: the model settings have no `parameters.uri`, or a bad `parameters.extra`.
        """
        parameters = self.settings.parameters
        if parameters is None or not parameters.uri:
            raise ValueError(f"model {self.name}: model settings need parameters.uri")
        self._config = RuntimeParameters.model_validate(parameters.extra or {})
        self._input_problem = checked_input_problem()  # the learner's in lab 09
        configure(self._config.tracking_uri)
        self._model = load_model(parameters.uri)
        self._version = self._model.version or "unknown"
        self._scorer = scorer_for(self._model)  # ONNX in onnxruntime if the version has it
        merge = self._config.micro_batching == "on" or (
            self._config.micro_batching == "auto" and batching_pays(self._scorer.predict_proba)
        )
        batches = batch_metrics().labels(model_name=self.name, model_version=self._version)
        self._batcher = MicroBatcher(
            self._scorer.predict_proba, self._config.max_batch_rows, merge, batches.observe
        )
        return True

    # --8<-- [end:load]

    # --8<-- [start:predict]
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        """Score a batch: 15 named inputs of n values each → `fraud_probability` (n,)."""
        features = self._check_request(payload)  # each request alone: a bad one fails alone
        scores = await self._batcher.score(features)
        record_scores(scores, self._config.flag_threshold, self.name, self._version)
        return InferenceResponse(
            model_name=self.name,
            model_version=self._version,
            id=payload.id,
            outputs=[
                ResponseOutput(
                    name=OUTPUT_NAME, shape=[len(scores)], datatype="FP64", data=scores.tolist()
                )
            ],
        )

    # --8<-- [end:predict]

    def _check_request(self, payload: InferenceRequest) -> np.ndarray:
        """Decode and check the request; return (n, 15) float64 features in `FEATURE_NAMES` order.

        Raises:
            InferenceError: missing or unknown inputs; per input (`_column`): a non-numeric
                datatype, a shape other than [n] / [n, 1], data that is not a flat list or
                nested as the shape says, booleans or other non-numbers, NaN or infinite values,
                values beyond float32 or the datatype's range; inputs of different lengths, an
                empty batch, a batch above `max_batch_rows`; a value outside its feature's domain
                in the data contract (`data.domains.FEATURE_DOMAINS`).
        """
        # --8<-- [start:checks]
        names = [i.name for i in payload.inputs or []]
        problem = self._input_problem(names, FEATURE_NAMES)  # lab 09: the learner's, or ours
        if problem:
            raise InferenceError(str(problem))
        inputs = {i.name: i for i in payload.inputs or []}
        if len(inputs) != len(names) or set(inputs) != set(FEATURE_NAMES):
            # Only a request check that lets a bad request through gets here (lab 09).
            raise InferenceError(
                f"the inputs {sorted(set(names))} are not the {len(FEATURE_NAMES)} inputs "
                f"{', '.join(FEATURE_NAMES)}, each once"
            )
        # --8<-- [end:checks]
        features = _plain_features(inputs)  # the usual request, in a few array operations
        if features is None:  # something to name: the checks input by input
            columns, lengths = {}, set()
            for name in FEATURE_NAMES:
                values = _column(name, inputs[name])
                columns[name] = values
                lengths.add(values.size)
            if len(lengths) > 1:
                raise InferenceError(
                    f"inputs have different lengths {sorted(lengths)}; every input needs one value per transaction"
                )
            features = np.column_stack([columns[name] for name in FEATURE_NAMES])
        n = len(features)
        if n == 0:
            raise InferenceError("empty batch: the inputs hold no transaction")
        if n > self._config.max_batch_rows:
            raise InferenceError(
                f"batch of {n} transactions exceeds the limit of {self._config.max_batch_rows}"
            )
        # --8<-- [start:domains]
        bad = feature_violations(features)  # (n, 15): every domain of the contract at once
        if bad.any():
            j = int(np.flatnonzero(bad.any(axis=0))[0])  # the first input, in FEATURE_NAMES order
            name, rows = FEATURE_NAMES[j], np.flatnonzero(bad[:, j])
            raise InferenceError(
                f"input {name} holds {features[rows[0], j]:g} (row {int(rows[0])}), outside its "
                f"domain: {FEATURE_DOMAINS[name].describe()} "
                f"({rows.size} such value{'s' if rows.size > 1 else ''})"
            )
        # --8<-- [end:domains]
        return features

    @property
    def served_version(self) -> str | None:
        """The registered version this runtime scores with (`model_version` in its responses);
        None before `load`. The server's gate lets clients address it as
        `/v2/models/<name>/versions/<served_version>/…` (`serving.gate`)."""
        return getattr(self, "_version", None)
