"""Score with the compiled (ONNX) model of a registered version, through onnxruntime.

`training.export.export_onnx` writes the graph when the model is logged; `tracking.load_model`
finds it beside the native model (`LoadedModel.onnx_path`). The server and the replay's offline
scoring both call `scorer_for`, so the skew check compares one artifact with itself; a version
logged before compiled inference (no ONNX file) is scored by its native pyfunc.

Example:
    >>> scorer = scorer_for(load_model("models:/fraud-detector@champion"))  # doctest: +SKIP
    >>> scorer.predict_proba(features)                                      # (n,) float64
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..features import FEATURE_NAMES
from ..training.export import INPUT_NAME, OUTPUT_NAME

log = logging.getLogger(__name__)

# NOTE: one thread per session. A served request scores one to a few hundred rows, where a thread
# pool's hand-offs cost more than the trees (measured: `python -m reference_app.serving.bench`);
# the server scales with processes, one per core.
INTRA_OP_THREADS = 1


# --8<-- [start:compiled-model]
class CompiledModel:
    """An ONNX fraud model in an onnxruntime session (CPU, `INTRA_OP_THREADS` threads).

    Args:
        model: the ONNX file's path or its bytes.
        threads: intra-op threads of the session.
    """

    def __init__(self, model: str | Path | bytes, threads: int = INTRA_OP_THREADS):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        (graph_input,) = self.session.get_inputs()
        # The forest's graph reads float32 (as scikit-learn's trees do); the others float64.
        self.dtype = np.float32 if graph_input.type == "tensor(float)" else np.float64

    def predict_proba(self, features: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Fraud probabilities (n,) float64 for (n, 15) features in `FEATURE_NAMES` order."""
        if isinstance(features, pd.DataFrame):
            features = features[FEATURE_NAMES].to_numpy()
        x = np.ascontiguousarray(features, dtype=self.dtype)
        (probabilities,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: x})
        return probabilities[:, 1].astype(np.float64)


# --8<-- [end:compiled-model]


class NativeModel:
    """A `tracking.LoadedModel` (the pyfunc) behind the `Scorer` interface: frames or arrays in."""

    def __init__(self, model):
        self.model = model

    def predict_proba(self, features: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Fraud probabilities (n,) float64 for (n, 15) features in `FEATURE_NAMES` order."""
        if not isinstance(features, pd.DataFrame):
            features = pd.DataFrame(features, columns=FEATURE_NAMES)
        return self.model.predict_proba(features)


def scorer_for(model) -> CompiledModel | NativeModel:
    """The compiled model of a `tracking.LoadedModel` when it has one, else its native model.

    A version without an ONNX file (logged before compiled inference) is logged once, here.
    """
    if model.onnx_path:
        return CompiledModel(model.onnx_path)
    log.warning(
        "model %s version %s has no ONNX artifact (logged before compiled inference): "
        "scoring with the native model",
        model.name or "?",
        model.version or "?",
    )
    return NativeModel(model)
