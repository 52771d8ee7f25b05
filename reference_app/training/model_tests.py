"""The model test suite: behaviour a trained candidate must show before it may be promoted.

Unit tests check the code and the quality gate checks one number per metric; these tests check
what the model does with inputs whose right answer is known, on the candidate's own test week
(Ribeiro et al., "Beyond Accuracy: Behavioral Testing of NLP Models with CheckList", ACL 2020:
minimum functionality, invariance and directional expectation tests; Breck et al., "The ML Test
Score", 2017, Model 5 and 6: the model is tested on slices of the data that matter):

- minimum functionality: one probability per transaction; frauds score higher than legitimate
  transactions on average;
- invariance: a transaction's score does not depend on its batch (alone, in a batch, in another
  order) and barely moves when its amount changes by one cent;
- directional: the same transactions at a terminal with a high recent fraud rate score higher;
- slices: AUC ROC on the night transactions (`TX_DURING_NIGHT`) and on high amounts is at least
  `SLICE_MIN_AUC` (lab 07: the learner's `slice_failures` decides, `MODEL_TESTS_EXERCISE`).

`fraudlab model-test` (the pipeline's step `model-tests`, between the train steps and promote)
runs them on a registered version, logs the report as the run's artifact `MODEL_TESTS_ARTIFACT`
and tags the run (`model_tests_passed`, `model_test_failures`, `model_tests`); the promote step
refuses `champion` to a version whose tests failed or did not run (`verdict_failures`).

Example:
    >>> results = run_model_tests(model.predict_proba, test)          # doctest: +SKIP
    >>> [r.name for r in results if not r.passed]                      # doctest: +SKIP
    ['invariance: a score does not depend on its batch']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from ..features import FEATURE_NAMES
from ..labcode import Exercise

# --8<-- [start:thresholds]
SAMPLE_ROWS = 500
"""Transactions of the test week (drawn with `SAMPLE_SEED`) for invariance and directional tests."""
SAMPLE_SEED = 0
ALONE_EVERY = 50
"""Invariance: every 50th sampled transaction is also scored alone (one request per row)."""
BATCH_RTOL, BATCH_ATOL = 1e-6, 1e-9
"""Invariance: how far a score alone or reordered may be from the same score in the batch."""
ONE_CENT = 0.01
MAX_MEAN_CENT_SHIFT = 0.01
"""Invariance: the mean |score change| when every amount changes by one cent."""
RISKY_TERMINAL = 0.8
"""Directional: the terminal risk (1, 7 and 30 days) set on every sampled transaction."""
MIN_RISKY_SHARE = 0.9
"""Directional: the share of sampled transactions whose score must rise at a risky terminal."""
HIGH_AMOUNT = 100.0
"""Slice: transactions of at least this amount (currency units; customers' mean amounts are drawn
from uniform(5, 100), Fraud Detection Handbook, ch. 3.2)."""
SLICE_MIN_AUC = 0.70
"""Slice: the smallest AUC ROC a slice may have."""
SLICE_MIN_FRAUDS = 10
"""Slice: a slice with fewer frauds (or legitimate transactions) than this is too small to judge."""
# --8<-- [end:thresholds]

MODEL_TESTS_ARTIFACT = "model_tests/report.json"
"""The report's path among the run's MLflow artifacts."""
BROKEN_CANDIDATE = "broken-candidate"
"""The drill's run tag value (`drill`): a deliberately broken candidate (`BatchScaledModel`)."""

MODEL_TESTS_EXERCISE = Exercise(lab=7, module="model_checks", function="slice_failures")
"""Lab 07: the learner's `slice_failures` (labs/07-testing-ml-systems/starter/model_checks.py)
stands in for this module's when `FRAUD_LAB_CODE` has it: in `fraudlab model-test` (the pipeline's
model-tests step mounts the ConfigMap `lab-code-07` when the learner applied it) and wherever a
new version is tested before its promotion. Each tested run records which (tag `model_tests`)."""

Scorer = Callable[[pd.DataFrame], np.ndarray]
"""A candidate's scoring function: frame with `FEATURE_NAMES` → (n,) fraud probabilities."""


@dataclass(frozen=True)
class ModelTest:
    """One model test's outcome.

    Attributes:
        name: "<kind>: <what is expected>", the line the report and the CLI print.
        kind: minimum functionality, invariance, directional or slice.
        passed: whether the candidate behaves.
        detail: the measured facts, e.g. "12 of 500 scores rose (2.4 % < 90 %)".
    """

    name: str
    kind: str
    passed: bool
    detail: str


# --8<-- [start:slice]
def slice_failures(
    slices: dict[str, tuple[np.ndarray, np.ndarray]], min_auc: float, min_frauds: int
) -> list[str]:
    """The slice test: a sentence per slice whose AUC ROC is below `min_auc`, in the slices' order.

    Args:
        slices: name → (labels (n,) 0/1, scores (n,) fraud probabilities) of the slice's
            transactions, e.g. {"night": (...), "high amount": (...)}.
        min_auc: the smallest AUC ROC that passes (a value equal to it passes).
        min_frauds: a slice with fewer frauds, or fewer legitimate transactions, is not judged
            (its AUC ROC would be noise, or undefined).

    Returns:
        `[]` when every judged slice passes, else e.g.
        `["night: AUC ROC 0.6123 < 0.7 (1,234 transactions, 45 frauds)"]`.
    """
    out = []
    for name, (labels, scores) in slices.items():
        frauds = int(np.sum(labels))
        if frauds < min_frauds or len(labels) - frauds < min_frauds:
            continue
        auc = roc_auc_score(labels, scores)
        if auc < min_auc:
            out.append(
                f"{name}: AUC ROC {auc:.4f} < {min_auc} ({len(labels):,} transactions, {frauds:,} frauds)"
            )
    return out


# --8<-- [end:slice]


def slice_masks(test: pd.DataFrame) -> dict[str, np.ndarray]:
    """The slices the suite judges: name → (n,) boolean mask over `test`'s rows."""
    return {
        "night": test["TX_DURING_NIGHT"].to_numpy() == 1,
        "high amount": test["TX_AMOUNT"].to_numpy() >= HIGH_AMOUNT,
    }


def run_model_tests(score: Scorer, test: pd.DataFrame) -> list[ModelTest]:
    """Run the suite on a candidate.

    Args:
        score: the candidate's scoring function (the registered model's `predict_proba`).
        test: its test week: `FEATURE_NAMES` and `TX_FRAUD` (both classes present).

    Returns:
        One `ModelTest` per test, in the order of the module's docstring.

    Raises:
        LabCodeError: the learner's `slice_failures` (lab 07) is not written yet or raised.
    """
    features = test[FEATURE_NAMES].astype(np.float64).reset_index(drop=True)
    labels = test["TX_FRAUD"].to_numpy().astype(int)
    scores = np.asarray(score(features), dtype=np.float64)
    sample = features.sample(min(SAMPLE_ROWS, len(features)), random_state=SAMPLE_SEED)
    sample = sample.reset_index(drop=True)
    base = np.asarray(score(sample), dtype=np.float64)
    out = [_probabilities(scores, len(features)), _frauds_above(scores, labels)]
    out += [_batch_invariance(score, sample, base), _cent_invariance(score, sample, base)]
    out.append(_risky_terminal(score, sample, base))
    out.append(_slices(scores, labels, slice_masks(test.reset_index(drop=True))))
    return out


def _probabilities(scores: np.ndarray, n: int) -> ModelTest:
    ok = scores.shape == (n,) and bool(np.all(np.isfinite(scores)))
    ok = ok and bool(np.all((scores >= 0) & (scores <= 1)))
    detail = (
        f"{n:,} scores in [0, 1]"
        if ok
        else f"shape {scores.shape} for {n:,} transactions, range "
        f"[{np.nanmin(scores) if scores.size else 'n/a'}, {np.nanmax(scores) if scores.size else 'n/a'}]"
    )
    return ModelTest(
        "minimum functionality: one probability per transaction",
        "minimum functionality",
        ok,
        detail,
    )


def _frauds_above(scores: np.ndarray, labels: np.ndarray) -> ModelTest:
    fraud, legit = scores[labels == 1], scores[labels == 0]
    ok = len(fraud) > 0 and len(legit) > 0 and float(fraud.mean()) > float(legit.mean())
    detail = (
        f"mean score {fraud.mean():.4f} for {len(fraud):,} frauds, {legit.mean():.4f} for "
        f"{len(legit):,} legitimate transactions"
        if len(fraud) and len(legit)
        else f"{len(fraud)} frauds, {len(legit)} legitimate transactions: cannot compare"
    )
    return ModelTest(
        "minimum functionality: frauds score higher than legitimate transactions",
        "minimum functionality",
        ok,
        detail,
    )


# --8<-- [start:invariance]
def _batch_invariance(score: Scorer, sample: pd.DataFrame, base: np.ndarray) -> ModelTest:
    """A row's score is the same alone, in a batch, and in a batch in another order (serving
    batches requests: no row may leak into another's score, e.g. through batch statistics)."""
    reordered = np.asarray(score(sample.iloc[::-1]), dtype=np.float64)[::-1]
    rows = range(0, len(sample), ALONE_EVERY)
    alone = np.array([score(sample.iloc[[i]])[0] for i in rows], dtype=np.float64)
    gap = max(
        float(np.max(np.abs(reordered - base))), float(np.max(np.abs(alone - base[::ALONE_EVERY])))
    )
    ok = np.allclose(reordered, base, rtol=BATCH_RTOL, atol=BATCH_ATOL) and np.allclose(
        alone, base[::ALONE_EVERY], rtol=BATCH_RTOL, atol=BATCH_ATOL
    )
    detail = f"largest change {gap:.2e} over {len(sample)} reordered and {len(alone)} alone"
    return ModelTest(
        "invariance: a score does not depend on its batch", "invariance", bool(ok), detail
    )


# --8<-- [end:invariance]


def _cent_invariance(score: Scorer, sample: pd.DataFrame, base: np.ndarray) -> ModelTest:
    moved = sample.assign(TX_AMOUNT=sample["TX_AMOUNT"] + ONE_CENT)
    shift = float(np.mean(np.abs(np.asarray(score(moved), dtype=np.float64) - base)))
    return ModelTest(
        "invariance: one cent more barely moves a score",
        "invariance",
        shift <= MAX_MEAN_CENT_SHIFT,
        f"mean |change| {shift:.2e} (at most {MAX_MEAN_CENT_SHIFT})",
    )


# --8<-- [start:directional]
def _risky_terminal(score: Scorer, sample: pd.DataFrame, base: np.ndarray) -> ModelTest:
    """The same transactions at a terminal with a high recent fraud rate score higher."""
    risky = sample.copy()
    for n in (1, 7, 30):
        risky[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = RISKY_TERMINAL
    share = float(np.mean(np.asarray(score(risky), dtype=np.float64) > base))
    return ModelTest(
        "directional: a risky terminal raises the score",
        "directional",
        share >= MIN_RISKY_SHARE,
        f"{share:.1%} of {len(sample)} scores rose (at least {MIN_RISKY_SHARE:.0%})",
    )


# --8<-- [end:directional]


def _slices(scores: np.ndarray, labels: np.ndarray, masks: dict[str, np.ndarray]) -> ModelTest:
    """The slice test through `slice_failures`, or the learner's (lab 07)."""
    slices = {name: (labels[mask], scores[mask]) for name, mask in masks.items()}
    check = MODEL_TESTS_EXERCISE.implementation(slice_failures)
    failures = list(check(slices, SLICE_MIN_AUC, SLICE_MIN_FRAUDS))
    sizes = ", ".join(
        f"{name} {int(mask.sum()):,} transactions / {int(labels[mask].sum()):,} frauds"
        for name, mask in masks.items()
    )
    return ModelTest(
        f"slice: AUC ROC ≥ {SLICE_MIN_AUC} at night and on high amounts (≥ {HIGH_AMOUNT:g})",
        "slice",
        not failures,
        "; ".join(failures) or sizes,
    )


def failures(results: list[ModelTest]) -> list[str]:
    """A sentence per failed test: "<name>: <detail>"."""
    return [f"{r.name}: {r.detail}" for r in results if not r.passed]


def report(results: list[ModelTest], **facts) -> dict:
    """The JSON report of a run of the suite: `passed`, `tests`, the thresholds, the suite's
    source (`MODEL_TESTS_EXERCISE.source()`) and `facts` (version, run id, test rows)."""
    return {
        **facts,
        "passed": all(r.passed for r in results),
        "suite": MODEL_TESTS_EXERCISE.source(),
        "tests": [asdict(r) for r in results],
        "thresholds": {
            "sample_rows": SAMPLE_ROWS,
            "batch_rtol": BATCH_RTOL,
            "batch_atol": BATCH_ATOL,
            "max_mean_cent_shift": MAX_MEAN_CENT_SHIFT,
            "risky_terminal": RISKY_TERMINAL,
            "min_risky_share": MIN_RISKY_SHARE,
            "high_amount": HIGH_AMOUNT,
            "slice_min_auc": SLICE_MIN_AUC,
            "slice_min_frauds": SLICE_MIN_FRAUDS,
        },
    }


def run_tags(results: list[ModelTest]) -> dict[str, str]:
    """The run tags of the suite's verdict: `model_tests_passed` (true/false),
    `model_test_failures` (its sentences, or "none") and `model_tests` (which slice test ran:
    "reference" or the learner's file, `MODEL_TESTS_EXERCISE.source`)."""
    found = failures(results)
    return {
        "model_tests_passed": str(not found).lower(),
        "model_test_failures": "; ".join(found)[:5000] or "none",
        "model_tests": MODEL_TESTS_EXERCISE.source(),
    }


def verdict_failures(tags: dict[str, str], version: str) -> list[str]:
    """What keeps a version from promotion, read from its run's tags (`run_tags`): `[]` when the
    model tests passed; their failures; or that they did not run (no verdict: also a refusal)."""
    passed = tags.get("model_tests_passed")
    if passed == "true":
        return []
    if passed == "false":
        return [tags.get("model_test_failures", "no reasons recorded")]
    return [f"they did not run on version {version} (fraudlab model-test --version {version})"]


class BatchScaledModel:
    """The drill's deliberately broken candidate (`fraudlab train --broken`): a fitted model whose
    scores are divided by the highest score of each batch. On a whole test week, scored in one
    batch, its ranking — so AUC ROC, average precision and CP@k — is the wrapped model's, and it
    passes the quality gate; a transaction scored alone gets 1.0. A real bug of this shape: batch
    statistics (normalisation, the MLP's batch norm in training mode) leaking into serving.

    Args:
        model: a fitted classifier with `predict_proba(X)`, X: (n, 15).
    """

    def __init__(self, model):
        self.model = model

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, 2) probabilities, the fraud column divided by its batch maximum."""
        p = np.asarray(self.model.predict_proba(x), dtype=np.float64)[:, 1]
        p = p / max(float(p.max()), 1e-12) if p.size else p
        return np.column_stack([1.0 - p, p])
