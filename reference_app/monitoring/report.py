"""The HTML report (plots) and JSON summary of a demo run or a replayed day.

Plots are drawn with matplotlib and embedded as PNG data URIs, so the report is one file.

Example:
    >>> paths = write_report(settings, summary, replay_day="2018-08-08")   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import average_precision_score, precision_recall_curve  # noqa: E402

from ..config import Settings  # noqa: E402
from ..data import store  # noqa: E402
from ..features import FEATURE_NAMES  # noqa: E402
from ..responsible.review import review_summary  # noqa: E402
from .drift import PSI_WARN, drift_table  # noqa: E402


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _pr_curve(y: np.ndarray, scores: np.ndarray) -> str:
    fig, ax = plt.subplots(figsize=(5, 4))
    if len(np.unique(y)) > 1:
        precision, recall, _ = precision_recall_curve(y, scores)
        ax.plot(recall, precision, label=f"AP = {average_precision_score(y, scores):.3f}")
        ax.axhline(y.mean(), color="grey", ls="--", label=f"random = {y.mean():.3f}")
        ax.legend()
    ax.set(xlabel="recall", ylabel="precision", title="Precision–recall, replayed day")
    return _png(fig)


def _score_distribution(y: np.ndarray, scores: np.ndarray) -> str:
    fig, ax = plt.subplots(figsize=(5, 4))
    bins = np.linspace(0, 1, 41)
    ax.hist(scores[y == 0], bins=bins, alpha=0.6, density=True, label="genuine", log=True)
    ax.hist(scores[y == 1], bins=bins, alpha=0.6, density=True, label="fraud", log=True)
    ax.set(xlabel="fraud probability", ylabel="density (log)", title="Score distribution")
    ax.legend()
    return _png(fig)


def _drift_plot(table: pd.DataFrame, alert_threshold: float) -> str:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = [
        "tab:red" if s == "drift" else "tab:orange" if s == "moderate" else "tab:green"
        for s in table["status"]
    ]
    ax.barh(table.index, table["psi"], color=colors)
    ax.axvline(PSI_WARN, color="orange", ls="--")
    ax.axvline(alert_threshold, color="red", ls="--")
    ax.invert_yaxis()
    ax.set(xlabel="PSI (training window → replayed day)", title="Feature drift")
    return _png(fig)


def _latency_plot(latencies_ms: list[float]) -> str:
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.hist(latencies_ms, bins=30)
    for q, ls in ((50, "-"), (99, "--")):
        ax.axvline(
            np.percentile(latencies_ms, q),
            color="black",
            ls=ls,
            label=f"p{q} = {np.percentile(latencies_ms, q):.1f} ms",
        )
    ax.set(xlabel="request latency (ms)", ylabel="requests", title="Replay latency")
    ax.legend()
    return _png(fig)


def _table(frame: pd.DataFrame, floatfmt: str = "{:.4f}") -> str:
    return frame.to_html(float_format=lambda v: floatfmt.format(v), border=0, classes="t")


def _monitoring_section(monitoring: dict | None) -> str:
    """The monitoring job's view of the replayed day: what the drift alert would say, and the
    delayed-label performance (None until a served day is 7 days old)."""
    if not monitoring:
        return ""
    drifted = monitoring["drifted_features"]
    alert = (f"<strong>FraudFeatureDrift would fire</strong> for {', '.join(map(html.escape, drifted))}" if drifted
             else "no feature above the alert threshold: FraudFeatureDrift stays quiet")  # fmt: skip
    perf = monitoring["performance"]
    perf_text = (f"realised CP@100 {perf['card_precision_top_k']:.3f} and AP {perf['average_precision']:.3f} on {perf['day']}" if perf
                 else "no served day has labels yet: labels arrive 7 days late, so realised AP and CP@100 appear a week after serving")  # fmt: skip
    return (f"<h2>Monitoring</h2><p>As of {html.escape(monitoring['as_of'])}: max feature PSI {monitoring['max_psi']:.3f} "
            f"(alert threshold {monitoring['psi_alert_threshold']}, calendar flags left out); {alert}.</p><p>Delayed-label performance: {perf_text}.</p>"
            f"{_review_text(monitoring.get('review'))}")  # fmt: skip


def review_text(review: dict | None) -> str:
    """Lab 18: how many queued cases analysts reviewed (the review queue's summary), as a sentence."""
    if not review:
        return "Human review: no review queue."
    return (f"Human review: {review['reviewed']} of {review['queued']} queued cases reviewed, "
            f"{review['confirmed_fraud']} confirmed as fraud, {review['pending']} pending.")  # fmt: skip


def _review_text(review: dict | None) -> str:
    return f"<p>{html.escape(review_text(review))}</p>"


def _replay_review(enqueued: dict | None, queue: dict | None) -> str:
    """Lab 18: what the replayed day sent to the review queue, and how many cases were reviewed."""
    if not enqueued:
        return _review_text(queue)
    sent = (f"{enqueued['enqueued']} of {enqueued['in_band']} uncertain transactions (scores in "
            f"[{enqueued['band'][0]}, {enqueued['band'][1]})) went to the review queue (capacity {enqueued['capacity']} a day).")  # fmt: skip
    return f"<p>{html.escape(sent)}</p>{_review_text(queue)}"


def write_report(
    settings: Settings, summary: dict, replay: dict, out_dir: Path | None = None
) -> dict:
    """Write `report.html` and `summary.json` for a replayed day.

    Args:
        settings: data locations and the protocol's training window.
        summary: run facts to include (e.g. `models`: {model_type: metrics}, `champion_version`).
        replay: output of `serving.replay.replay_day` (its `scores_path` is read).
        out_dir: output folder (default `reports_dir`).

    Returns:
        `summary` extended with `replay`, `replay_metrics`, `drift` and the report paths.
    """
    out_dir = Path(out_dir or settings.reports_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scored = pd.read_parquet(replay["scores_path"])
    y, s = scored["TX_FRAUD"].to_numpy(), scored["served_score"].to_numpy()
    start = settings.train_start
    reference = store.read_dataset(
        settings.features_dir, days=(start, start + dt.timedelta(days=settings.delta_train - 1))
    )
    drift = drift_table(reference, scored, FEATURE_NAMES, settings.psi_alert_threshold)
    if summary.get("reference_scores") is not None:  # the champion's scores on the training window
        scores = drift_table(
            pd.DataFrame({"fraud_score": summary["reference_scores"]}),
            pd.DataFrame({"fraud_score": s}),
            ["fraud_score"],
            settings.psi_alert_threshold,
        )
        drift = pd.concat([drift, scores])
    replay_metrics = {
        "average_precision": float(average_precision_score(y, s))
        if len(np.unique(y)) > 1
        else None,
        "fraud_rate": float(y.mean()),
        "flagged_rate": float((s >= settings.flag_threshold).mean()),
    }
    result = {
        **{k: v for k, v in summary.items() if k != "reference_scores"},
        "replay": {k: v for k, v in replay.items() if k != "latencies_ms"},
        "replay_metrics": replay_metrics,
        "drift": drift.reset_index().to_dict(orient="records"),
        "review": review_summary(settings),  # lab 18: queued and reviewed cases
        "report_html": str(out_dir / "report.html"),
        "summary_json": str(out_dir / "summary.json"),
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    models = pd.DataFrame(summary.get("models", {})).T
    html_doc = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fraud Lab report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
img{{max-width:100%}}.grid{{display:grid;grid-template-columns:1fr 1fr;gap:1em}}
table.t{{border-collapse:collapse}}table.t td,table.t th{{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:right}}</style></head><body>
<h1>Fraud Lab report</h1>
<p>Generated {html.escape(result["generated_at"])}. Champion version {html.escape(str(summary.get("champion_version", replay.get("model_version"))))};
replayed day {html.escape(replay["day"])}: {replay["transactions"]} transactions, {replay["frauds"]} frauds.</p>
<h2>Models (test week, Fraud Detection Handbook protocol)</h2>{_table(models) if not models.empty else "<p>No model metrics.</p>"}
<h2>Replayed day</h2>
<p>Served model AP {replay_metrics["average_precision"] if replay_metrics["average_precision"] is None else f"{replay_metrics['average_precision']:.4f}"};
flagged rate {replay_metrics["flagged_rate"]:.4%}; training/serving skew max |diff| {replay["max_abs_diff"]:.2e}
({"within" if replay["skew_ok"] else "ABOVE"} tolerance {replay["skew_tolerance"]:.0e}).</p>
{_replay_review(replay.get("review"), result["review"])}
<div class="grid"><img alt="precision-recall curve" src="{_pr_curve(y, s)}"><img alt="score distribution" src="{_score_distribution(y, s)}"></div>
<h2>Drift: training window → replayed day</h2>
<div class="grid"><img alt="feature drift" src="{_drift_plot(drift, settings.psi_alert_threshold)}">{_table(drift[["psi", "ks_statistic", "ks_pvalue", "status"]])}</div>
{_monitoring_section(summary.get("monitoring"))}
<h2>Latency</h2>
<p>{replay["requests"]} requests of {replay["batch_size"]} transactions at concurrency 1: p50 {replay["latency_ms_p50"]:.1f} ms, p95 {replay["latency_ms_p95"]:.1f} ms, p99 {replay["latency_ms_p99"]:.1f} ms.</p>
<img alt="latency histogram" src="{_latency_plot(replay["latencies_ms"])}">
</body></html>"""
    Path(result["report_html"]).write_text(html_doc)
    Path(result["summary_json"]).write_text(json.dumps(result, indent=2, default=str))
    return result
