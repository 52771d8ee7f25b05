"""Compile a fitted fraud model to ONNX, whatever its flavour, for onnxruntime to serve.

Every exported graph has one input `features`, (n, 15) in `FEATURE_NAMES` order, and one output
`probabilities`, (n, 2): column 1 is the fraud probability. The input is float64 except for the
random forest, whose graph reads float32 as scikit-learn's trees do (they cast X to float32).

- logistic regression pipeline (scaler + model): skl2onnx, computed in float64 (max |diff| to
  scikit-learn 8.9e-16);
- random forest: skl2onnx, reading float32 as scikit-learn's trees do; skl2onnx stores each
  float64 split threshold t as the largest float32 w with float32(x) <= t ⟺ float32(x) <= w,
  so every row takes the same path as in scikit-learn; the class probabilities are summed in
  float32 (max |diff| 6.5e-7 on the handbook's test week);
- PyTorch MLP: `torch.onnx.export` (the dynamo exporter) of the network with the scaling in front
  and the sigmoid behind, in the same dtypes as `TorchMLPClassifier.predict_proba` (1.3e-7).

Example:
    >>> onnx_bytes = export_onnx(result.model)          # doctest: +SKIP
    >>> CompiledModel(onnx_bytes).predict_proba(frame)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import logging
import warnings

import numpy as np

from ..features import FEATURE_NAMES

INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
# ONNX opsets every exporter here targets (onnxruntime 1.32 runs both).
OPSET = {"": 21, "ai.onnx.ml": 3}


def can_export(model) -> bool:
    """Whether `export_onnx` compiles `model`: not LightGBM's classifier (lab 14), whose ONNX
    converter (onnxmltools) the course does not install: a tuned LightGBM version serves natively."""
    return type(model).__module__.split(".")[0] != "lightgbm"


# --8<-- [start:export]
def export_onnx(model) -> bytes:
    """Serialise a fitted fraud model (`training.models.make_model`) as an ONNX model.

    Raises:
        TypeError: for a model of another kind (nothing to compile it with).
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from .models import TorchMLPClassifier

    if isinstance(model, TorchMLPClassifier):
        return _export_mlp(model)
    if isinstance(model, RandomForestClassifier):
        # NOTE: float32 in, as scikit-learn's trees read X: with float64 in, the graph compares
        # x itself with the thresholds and rows near a split change branch (tests/unit/test_compiled.py).
        return _export_sklearn(model, np.float32)
    if isinstance(model, (Pipeline, LogisticRegression)):
        return _export_sklearn(model, np.float64)
    raise TypeError(f"no ONNX export for {type(model).__name__}")


# --8<-- [end:export]


def _export_sklearn(model, dtype) -> bytes:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    tensor = DoubleTensorType if dtype == np.float64 else FloatTensorType
    onx = to_onnx(
        model,
        initial_types=[(INPUT_NAME, tensor([None, len(FEATURE_NAMES)]))],
        # zipmap off: probabilities as an (n, 2) tensor, not a list of {class: p} maps.
        options={id(model): {"zipmap": False}},
        target_opset=OPSET,
    )
    return onx.SerializeToString()


def _export_mlp(model) -> bytes:
    import torch

    class Scored(torch.nn.Module):
        """`TorchMLPClassifier.predict_proba` as one graph: float64 in, (n, 2) float64 out."""

        def __init__(self):
            super().__init__()
            self.net = copy.deepcopy(model.network_).eval()
            self.register_buffer("mean", torch.as_tensor(model.mean_, dtype=torch.float64))
            self.register_buffer("scale", torch.as_tensor(model.scale_, dtype=torch.float64))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = self.net(((x - self.mean) / self.scale).to(torch.float32))
            p = torch.sigmoid(logits.to(torch.float64))
            return torch.stack([1.0 - p, p], dim=1)

    # The exporter logs a line per torchvision op it skips and warns about its own deprecations:
    # nothing a learner can act on.
    quiet = logging.getLogger("torch.onnx")
    level, quiet.level = quiet.level, logging.ERROR
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(
                Scored().eval(),
                (torch.zeros(2, len(FEATURE_NAMES), dtype=torch.float64),),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim("n", min=1)},),
                opset_version=OPSET[""],
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    finally:
        quiet.setLevel(level)
    return program.model_proto.SerializeToString()
