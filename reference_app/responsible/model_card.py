"""The champion's segment report and model card, attached to its MLflow run (lab 18).

`document_champion` scores the champion's own test week (the protocol windows its run recorded)
with the registered model, computes the segment report (`segments.segment_report`) and writes a
model card in the sections of Mitchell et al., "Model Cards for Model Reporting" (FAT* 2019):
model details, intended use, factors, metrics, evaluation and training data, quantitative
analyses, ethical considerations, caveats and recommendations. Both become artifacts of the run
that trained the version (`responsible/segment_report.json`, `responsible/model_card.md`), and
run tags say which version they describe.

Example:
    >>> out = document_champion(Settings())           # doctest: +SKIP
    >>> out["version"], out["artifacts"]               # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from .. import tracking
from ..config import Settings
from ..data import store
from ..features import FEATURE_NAMES
from ..training.split import split_train_test
from .segments import METRICS, SEGMENTS, customer_profiles, segment_report

SEGMENT_REPORT_ARTIFACT = "responsible/segment_report.json"
MODEL_CARD_ARTIFACT = "responsible/model_card.md"
DOCUMENTED_TAG = "responsible_documented_version"
"""Run tag: the model version the run's segment report and model card describe."""
DISPARITY_TAG_PREFIX = "disparity_"
"""Run tags `disparity_<segment>_<metric>`: the min/max ratios, searchable in MLflow."""


class NoChampionError(RuntimeError):
    """The registered model has no version with alias `champion`."""


def _protocol(params: dict) -> tuple[dt.date, int, int, int]:
    return (
        dt.date.fromisoformat(params["train_start"]),
        int(params["delta_train"]),
        int(params["delta_delay"]),
        int(params["delta_test"]),
    )


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# --8<-- [start:card]
def model_card(model_name: str, version: str, run: dict, report: dict, settings: Settings) -> str:
    """A model card (Markdown) for one registered version, from its MLflow run and segment report.

    Args:
        model_name, version: the registered model version described.
        run: `tracking.version_run` of it (params, metrics, tags).
        report: `segments.segment_report` on its test week.
        settings: `flag_threshold`, review band and capacity (the intended use names them).

    Returns:
        The card's Markdown text.
    """
    p, m, t = run["params"], run["metrics"], run["tags"]
    train_start, d_train, d_delay, d_test = _protocol(p)
    test_start = train_start + dt.timedelta(days=d_train + d_delay)
    rows = []
    for name in SEGMENTS:
        seg = report["segments"][name]
        for group, v in seg["groups"].items():
            rows.append(f"| {name} | {group} | {v['transactions']} | {v['frauds']} | "
                        + " | ".join(_fmt(v[k]) for k in METRICS) + " |")  # fmt: skip
        rows.append(f"| {name} | **disparity min/max** | | | "
                    + " | ".join(_fmt(seg["disparity"][k]) for k in METRICS) + " |")  # fmt: skip
    return "\n".join([
        f"# Model card: {model_name} version {version}",
        "",
        "## Model details",
        f"- Model type: {t.get('model_type', p.get('model_type'))}; MLflow run {run['run_id']}; git commit {t.get('git_commit', 'unknown')}.",
        f"- Output: a fraud probability per card transaction; flagged when ≥ {settings.flag_threshold}.",
        "- Card format: Mitchell et al., Model Cards for Model Reporting (FAT* 2019).",
        "",
        "## Intended use",
        "- Rank card transactions of the simulated issuer for fraud investigation (Fraud Detection Handbook, ch. 3–5).",
        f"- Scores in [{settings.review_band_low}, {settings.review_band_high}) go to a human review queue, at most {settings.review_capacity} cases a day; an analyst's label decides, the model does not.",
        "- Out of scope: decisions about credit, pricing or account closure; any real customer's data; use without the review queue.",
        "",
        "## Factors",
        "Segments of the simulated customers: spending band (profile mean amount), region (quadrant of the 100 × 100 grid), "
        "customer history (new: fewer than 10 transactions in 30 days; a proxy, the simulator has no account age). "
        "The data has no protected attribute; a segment can still stand in for one in real data (a proxy).",
        "",
        "## Metrics",
        f"- Test week ({test_start} … {test_start + dt.timedelta(days=d_test - 1)}, known-compromised cards removed): "
        f"AUC ROC {m.get('auc_roc', float('nan')):.4f}, average precision {m.get('average_precision', float('nan')):.4f}, "
        f"CP@{p.get('top_k', settings.top_k)} {m.get('card_precision_top_k', float('nan')):.4f}.",
        f"- Per segment at threshold {report['threshold']}: precision, recall, false-positive rate, flag rate; disparity = min/max over the groups (1 = alike).",
        "",
        "## Evaluation data",
        f"- {report['transactions']} test transactions, {report['frauds']} frauds; data digest {t.get('data_digest', 'unknown')}, test digest {t.get('test_digest', 'unknown')}.",
        "",
        "## Training data",
        f"- {p.get('n_train', '?')} transactions from {train_start} to {train_start + dt.timedelta(days=d_train - 1)}; "
        f"{len(FEATURE_NAMES)} features (Fraud Detection Handbook, ch. 3.4); train digest {t.get('train_digest', 'unknown')}.",
        "- Reviewed cases (analysts' labels from days whose delayed labels are not in yet) join the next retraining window: they are the uncertain band only, not a random sample.",
        "",
        "## Quantitative analyses",
        "| segment | group | transactions | frauds | " + " | ".join(METRICS) + " |",
        "|---|---|---:|---:|" + "---:|" * len(METRICS),
        *rows,
        "",
        "## Ethical considerations",
        "- Equal false-positive rates and equal precision cannot both hold when segments' fraud rates differ (Chouldechova 2017; Kleinberg et al. 2016): the report shows both, a person decides which gap matters.",
        "- A falsely flagged transaction costs a customer a declined payment and a call; a missed fraud costs the issuer. Small segments have wide uncertainty: read the counts.",
        "",
        "## Caveats and recommendations",
        "- Simulated data (Fraud Detection Handbook, ch. 3.2): no real population, no protected attributes, fraud scenarios known in advance.",
        "- Labels arrive 7 days late; performance after the test week is only known a week later (chapter 11).",
        "- Recompute this card for every new champion (`fraudlab model-card`).",
        "",
    ])  # fmt: skip


# --8<-- [end:card]


def document_champion(settings: Settings) -> dict:
    """Segment report and model card of the champion, logged as artifacts of its training run.

    Returns:
        `version`, `run_id`, `report` (the segment report), `card` (Markdown), `artifacts` (paths
        in the run).

    Raises:
        NoChampionError: no version has the alias champion.
        store.DatasetError: no features dataset.
        ValueError: the run's test week is empty in the dataset.
    """
    tracking.configure(settings.mlflow_tracking_uri)
    version = tracking.alias_version(settings.model_name, "champion")
    if version is None:
        raise NoChampionError(
            f"{settings.model_name} has no champion: run `fraudlab demo` (or the pipeline) first"
        )
    run = tracking.version_run(settings.model_name, version)
    features = store.read_dataset(settings.features_dir)
    if features.empty:
        raise store.DatasetError(f"no features in {settings.features_dir}: run `fraudlab features`")
    _, test = split_train_test(features, *_protocol(run["params"]))
    model = tracking.load_model(f"models:/{settings.model_name}/{version}")
    scores = model.predict_proba(test)
    simulated = (store.read_manifest(settings.raw_dir) or {}).get("params", {})
    profiles = customer_profiles(
        int(simulated.get("n_customers", settings.n_customers)),
        int(simulated.get("seed", settings.seed)),
    )
    report = {
        "model_name": settings.model_name,
        "version": version,
        **segment_report(test, scores, settings.flag_threshold, profiles),
    }
    card = model_card(settings.model_name, version, run, report, settings)
    tags = {DOCUMENTED_TAG: version}
    for name, seg in report["segments"].items():
        for metric, value in seg["disparity"].items():
            tags[f"{DISPARITY_TAG_PREFIX}{name}_{metric}"] = (
                "n/a" if value is None else f"{value:.4f}"
            )
    tracking.log_run_documents(
        run["run_id"], {SEGMENT_REPORT_ARTIFACT: report, MODEL_CARD_ARTIFACT: card}, tags
    )
    return {
        "version": version,
        "run_id": run["run_id"],
        "report": report,
        "card": card,
        "artifacts": [SEGMENT_REPORT_ARTIFACT, MODEL_CARD_ARTIFACT],
    }


def report_frame(report: dict) -> pd.DataFrame:
    """The segment report as a table (see `segments.report_table`)."""
    from .segments import report_table

    return report_table(report)
