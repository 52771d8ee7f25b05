"""MLServer runtime for the fraud model: V2 inference protocol, strict request checks.

Request: one input per feature, named as in `FEATURE_NAMES`, each of shape [n] or [n, 1], a
numeric datatype, finite values. Response: one output `fraud_probability`, FP64, shape [n].
Every bad request raises `mlserver.errors.InferenceError`, which MLServer returns as HTTP 400
with the message; no traceback leaves the server.

Example (model-settings.json):
    {"name": "fraud-detector", "implementation": "reference_app.serving.runtime.FraudRuntime",
     "parameters": {"uri": "models:/fraud-detector@champion"}}
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlserver import MLModel
from mlserver.errors import InferenceError
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput

from ..config import Settings
from ..features import FEATURE_NAMES
from ..monitoring.metrics import record_scores
from ..tracking import OUTPUT_NAME, configure, load_model

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


class FraudRuntime(MLModel):
    """Serve `models:/fraud-detector@champion` (or the URI in the model settings) from MLflow."""

    # --8<-- [start:load]
    async def load(self) -> bool:
        """Resolve the model URI to a registered version and load it through MLflow."""
        self._config = Settings()
        uri = (
            self.settings.parameters.uri if self.settings.parameters else None
        ) or self._config.model_uri
        configure(self._config.mlflow_tracking_uri)
        self._model = load_model(uri)
        self._version = self._model.version or "unknown"
        return True

    # --8<-- [end:load]

    # --8<-- [start:predict]
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        """Score a batch: 15 named inputs of n values each → `fraud_probability` (n,)."""
        features = self._check_request(payload)
        scores = self._model.predict_proba(features)
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

    def _check_request(self, payload: InferenceRequest) -> pd.DataFrame:
        """Decode and check the request; return an (n, 15) float64 frame in `FEATURE_NAMES` order.

        Raises:
            InferenceError: missing or unknown inputs, a non-numeric datatype or value, a shape
                other than [n] / [n, 1], data not matching the shape, inputs of different lengths,
                an empty batch, a batch above `max_batch_rows`, NaN or infinite values.
        """
        # --8<-- [start:checks]
        inputs = {i.name: i for i in payload.inputs or []}
        if len(inputs) != len(payload.inputs or []):
            raise InferenceError("duplicate input names in the request")
        missing = [n for n in FEATURE_NAMES if n not in inputs]
        unknown = sorted(set(inputs) - set(FEATURE_NAMES))
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing inputs: {', '.join(missing)}")
            if unknown:
                parts.append(f"unknown inputs: {', '.join(unknown)}")
            raise InferenceError(
                "; ".join(parts)
                + f". Expected the {len(FEATURE_NAMES)} inputs {', '.join(FEATURE_NAMES)}"
            )
        # --8<-- [end:checks]
        columns, lengths = {}, set()
        for name in FEATURE_NAMES:
            item = inputs[name]
            if item.datatype not in NUMERIC_DATATYPES:
                raise InferenceError(
                    f"input {name} has datatype {item.datatype}; expected a numeric datatype such as FP64"
                )
            shape = list(item.shape)
            if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
                raise InferenceError(
                    f"input {name} has shape {shape}; expected [n] or [n, 1] (one value per transaction)"
                )
            try:
                raw = np.asarray(item.data.root if hasattr(item.data, "root") else item.data)
            except (TypeError, ValueError):  # ragged nesting
                raise InferenceError(f"input {name} holds ragged or non-numeric data") from None
            if (
                raw.size and raw.dtype.kind not in "biuf"
            ):  # strings, None, objects: no silent parsing
                raise InferenceError(
                    f"input {name} holds non-numeric values; {item.datatype} data must be numbers"
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
            columns[name] = values
            lengths.add(values.size)
        if len(lengths) > 1:
            raise InferenceError(
                f"inputs have different lengths {sorted(lengths)}; every input needs one value per transaction"
            )
        n = lengths.pop()
        if n == 0:
            raise InferenceError("empty batch: the inputs hold no transaction")
        if n > self._config.max_batch_rows:
            raise InferenceError(
                f"batch of {n} transactions exceeds the limit of {self._config.max_batch_rows}"
            )
        return pd.DataFrame(columns, columns=FEATURE_NAMES)
