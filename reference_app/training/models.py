"""The model families of the course: logistic regression, random forest and a PyTorch MLP, plus
LightGBM's gradient-boosted trees, which only the tuning (lab 14) trains.

Every model is an sklearn-style classifier over the 15 raw features (`fit(X, y)`,
`predict_proba(X)`), with its scaling inside, so serving sends unscaled feature values.
Hyper-parameters follow the Fraud Detection Handbook's baselines (ch. 3.5, ch. 7); the tuning
passes its own (`make_model(..., hyperparameters=...)`).

Example:
    >>> model = make_model("logistic_regression", seed=0).fit(X_train, y_train)  # doctest: +SKIP
    >>> model.predict_proba(X_test)[:, 1]                                       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MODEL_TYPES = ("logistic_regression", "random_forest", "mlp")
"""The untuned models: `fraudlab train`, the pipeline and the demo train each with fixed settings."""
TUNED_MODEL_TYPES = ("lightgbm", "mlp")
"""The models `fraudlab tune` searches hyper-parameters for (lab 14, `training.tune`)."""


# --8<-- [start:device]
def select_device(preferred: str = "auto") -> torch.device:
    """Return the training device: CUDA when present (or asked for), else CPU.

    Raises:
        RuntimeError: if `preferred` is "cuda" and no CUDA device is available.
    """
    if preferred == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch.cuda.is_available() is False")
    if preferred == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preferred)


# --8<-- [end:device]


class _MLP(torch.nn.Module):
    def __init__(self, n_inputs: int, hidden: tuple[int, ...], dropout: float):
        super().__init__()
        layers: list[torch.nn.Module] = []
        width = n_inputs
        for h in hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
            width = h
        layers.append(torch.nn.Linear(width, 1))
        self.net = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class TorchMLPClassifier(ClassifierMixin, BaseEstimator):
    """A feed-forward network for fraud scores (handbook ch. 7.2), trained with whole tensors on device.

    The data goes to the device once; each epoch shuffles indices on the device and slices
    mini-batches from the resident tensors (no per-row `Dataset`/`DataLoader`). On CUDA the
    forward pass runs in mixed precision (bfloat16/float16 autocast with a gradient scaler).
    After `fit` the network lives on the CPU, so the fitted model pickles and serves anywhere.

    Args:
        hidden: sizes of the hidden layers.
        epochs, batch_size, lr, weight_decay, dropout: optimisation settings (Adam).
        device: "auto" (CUDA when present), "cuda" or "cpu".
        seed: seeds torch's generators for reproducible weights and batches.
    """

    def __init__(
        self,
        hidden: tuple[int, ...] = (128, 64),
        epochs: int = 20,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        dropout: float = 0.2,
        device: str = "auto",
        seed: int = 0,
    ):
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.device = device
        self.seed = seed

    def fit(self, X, y) -> TorchMLPClassifier:
        """Train on X: (n, f) float features, y: (n,) 0/1 labels. Records `device_` used."""
        for _ in self.fit_epochs(X, y):
            pass
        return self

    def fit_epochs(self, X, y) -> Iterator[int]:
        """`fit`, one epoch at a time: yields the number of epochs done (1 … `epochs`) with the
        model usable in between (`predict_proba` scores with the weights so far). The tuning
        reports each epoch to its early-stopping scheduler (lab 14); `fit` runs it to the end.

        Args:
            X: (n, f) float features; y: (n,) 0/1 labels.
        """
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float32)
        self.classes_ = np.array([0, 1])
        self.mean_ = X.mean(axis=0)
        self.scale_ = X.std(axis=0)
        self.scale_[self.scale_ == 0] = 1.0
        device = select_device(self.device)
        self.device_ = device.type
        generator = torch.Generator(device=device).manual_seed(self.seed)
        torch.manual_seed(self.seed)
        net = _MLP(X.shape[1], tuple(self.hidden), self.dropout).to(device)
        xs = torch.as_tensor((X - self.mean_) / self.scale_, dtype=torch.float32, device=device)
        ys = torch.as_tensor(y, device=device)
        optimiser = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        use_amp = device.type == "cuda"
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        # NOTE: one CPU thread: a 256-row batch through this network is too small to split, and
        # waiting OpenMP workers spin. On 2 cores the handbook-scale fit took 9-12 s with one
        # thread, 14 s with two, and 90-170 s with two when other processes share the cores; the
        # weights are bit-identical either way.
        threads = torch.get_num_threads()
        if device.type == "cpu":
            torch.set_num_threads(1)
        try:
            # --8<-- [start:fit-loop]
            for epoch in range(self.epochs):
                net.train()
                perm = torch.randperm(len(xs), device=device, generator=generator)
                for start in range(0, len(xs), self.batch_size):
                    idx = perm[start : start + self.batch_size]
                    optimiser.zero_grad(set_to_none=True)
                    with torch.autocast(device_type=device.type, enabled=use_amp):
                        loss = loss_fn(net(xs[idx]), ys[idx])
                    scaler.scale(loss).backward()
                    scaler.step(optimiser)
                    scaler.update()
                self.network_ = net.eval()  # scoring between epochs draws no random number
                if epoch + 1 < self.epochs:
                    yield epoch + 1  # `fit_epochs`: the tuning scores each epoch (lab 14)
            # --8<-- [end:fit-loop]
        finally:
            torch.set_num_threads(threads)
        self.network_ = net.to("cpu").eval()
        yield self.epochs

    def predict_proba(self, X) -> np.ndarray:
        """Return (n, 2) class probabilities for X: (n, f) raw features."""
        X = (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
        device = next(self.network_.parameters()).device  # the CPU, but during `fit_epochs`
        with torch.inference_mode():
            logits = self.network_(torch.as_tensor(X, dtype=torch.float32, device=device))
            p = torch.sigmoid(logits.double()).cpu().numpy()
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """Return (n,) 0/1 labels at probability 0.5."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)


# --8<-- [start:make-model]
def make_model(
    model_type: str, seed: int = 0, device: str = "auto", hyperparameters: dict | None = None
):
    """Build an unfitted classifier of one of `MODEL_TYPES` or `TUNED_MODEL_TYPES`.

    Args:
        model_type: the model family.
        seed: the model's random seed.
        device: where the MLP trains ("auto", "cuda", "cpu").
        hyperparameters: settings that replace the defaults below (the tuning's best
            configuration, lab 14), in the estimator's own parameter names.

    Raises:
        ValueError: for an unknown model type or hyper-parameter.
    """
    if hyperparameters:
        model = make_model(model_type, seed=seed, device=device)
        unknown = set(hyperparameters) - set(model.get_params())
        if unknown:
            raise ValueError(f"{model_type} has no hyper-parameter {', '.join(sorted(unknown))}")
        return model.set_params(**hyperparameters)
    if model_type == "logistic_regression":
        return make_pipeline(
            StandardScaler(), LogisticRegression(C=1.0, max_iter=1000, random_state=seed)
        )
    if model_type == "random_forest":
        return RandomForestClassifier(
            n_estimators=100, max_depth=20, min_samples_leaf=1, n_jobs=-1, random_state=seed
        )
    if model_type == "mlp":
        return TorchMLPClassifier(device=device, seed=seed)
    if model_type == "lightgbm":
        return lightgbm_classifier(seed=seed)
    known = dict.fromkeys([*MODEL_TYPES, *TUNED_MODEL_TYPES])
    raise ValueError(f"unknown model type {model_type!r}; choose one of {', '.join(known)}")


# --8<-- [end:make-model]


def lightgbm_classifier(seed: int = 0, **hyperparameters):
    """LightGBM's scikit-learn classifier with the course's fixed settings: binary objective, all
    cores to fit, deterministic given `seed`, quiet; `hyperparameters` (LightGBM's scikit-learn
    names: `n_estimators`, `learning_rate`, `num_leaves`, `min_child_samples`, `subsample`,
    `colsample_bytree`, `reg_lambda`, and `max_bin`, a Dataset parameter the estimator passes
    on) override LightGBM's defaults (lightgbm 4.7, python-package/lightgbm/sklearn.py
    `LGBMModel.__init__`; max_bin 255: docs/Parameters.rst)."""
    from lightgbm import LGBMClassifier

    # NOTE: subsample (bagging) needs subsample_freq > 0 to take effect (LightGBM docs,
    # Parameters: bagging_fraction "to enable bagging, bagging_freq should be set to a non zero
    # value"); 1 = a new bag every round.
    return LGBMClassifier(
        objective="binary",
        subsample_freq=1,
        n_jobs=-1,
        random_state=seed,
        deterministic=True,
        verbose=-1,
        # Named here so that `get_params()` lists it (`make_model` checks tuned names against it).
        **{"max_bin": 255, **hyperparameters},
    )
