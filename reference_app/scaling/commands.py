"""Lab 16's commands, registered on the `fraudlab` CLI (cli.py): `load-test` and `rightsize`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

ROOT = Path(__file__).resolve().parents[2]


def load_test(
    url: Annotated[
        str | None, typer.Option(help="Inference base URL (FRAUD_INFERENCE_URL).")
    ] = None,
    users: Annotated[
        int | None, typer.Option(help="Users at the top of the ramp (FRAUD_LOAD_USERS).")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Seconds in all, ramp included (FRAUD_LOAD_DURATION_S).")
    ] = None,
    ramp: Annotated[
        float | None, typer.Option(help="Seconds from 1 user to all (FRAUD_LOAD_RAMP_S).")
    ] = None,
    chaos: Annotated[
        bool,
        typer.Option(
            help="Kind mode: delete one model pod (context kind-fraud-lab) at the end of the ramp."
        ),
    ] = False,
    data_dir: Annotated[
        str | None, typer.Option("--data-dir", help="Dataset root (FRAUD_DATA_DIR).")
    ] = None,
) -> None:
    """Load-test the model with Locust (ramp 1 → N users, retries on connection errors and 503);
    write reports/load-test.json with p50/p95/p99 and the SLO verdict. Exit 1 when an SLO is missed."""
    from ..cli import _fail, _settings, console
    from .chaos import delete_a_model_pod
    from .loadtest import LoadTestError, run_load_test

    s = _settings(
        data_dir=data_dir,
        inference_url=url,
        load_users=users,
        load_duration_s=duration,
        load_ramp_s=ramp,
    )
    console.print(
        f"Locust: 1 → {s.load_users} users over {s.load_ramp_s:g} s, ≤ {s.load_user_rps:g} req/s "
        f"each, {s.load_duration_s:g} s in all, against {s.inference_url}"
        + (" — deleting a model pod at the end of the ramp" if chaos else "")
    )
    try:
        r = run_load_test(s, s.inference_url, chaos=delete_a_model_pod if chaos else None)
    except LoadTestError as err:
        _fail(str(err))
    lat, slo = r["latency_ms"], r["slo"]
    console.print(
        f"{r['requests']:,} requests ({r['requests_per_s']:.1f}/s), {r['failures']} failed "
        f"({r['failure_share']:.3%}); latency p50 {lat['p50']:g} ms, p95 {lat['p95']:g} ms, "
        f"p99 {lat['p99']:g} ms"
    )
    console.print(
        f"latency SLO (p95 ≤ {slo['latency_threshold_ms']:g} ms): "
        f"{'met' if slo['latency_met'] else 'MISSED'}; failures ≤ "
        f"{slo['failure_budget_share']:.1%}: {'met' if slo['availability_met'] else 'MISSED'}"
    )
    if r["chaos"]:
        console.print(f"chaos: {r['chaos']}")
    console.print(f"report: {r['report_path']}")
    if not (slo["latency_met"] and slo["availability_met"]):
        raise typer.Exit(1)


def local_prometheus(settings) -> str:
    """The local stack's Prometheus (state/stack.json of `fraudlab up --monitoring`), else the
    one on `prometheus_port`."""
    import json

    from ..launchers.stack import stack_file

    path = stack_file(settings)
    stack = json.loads(path.read_text()) if path.is_file() else {}
    return (stack.get("prometheus") or {}).get(
        "url"
    ) or f"http://127.0.0.1:{settings.prometheus_port}"


def rightsize_cmd(
    prometheus: Annotated[
        str | None,
        typer.Option(
            help="Prometheus base URL (default: the local stack's; kind: http://127.0.0.1:30090)."
        ),
    ] = None,
    target: Annotated[
        str, typer.Option(help="local (process metrics) or cluster (cAdvisor metrics).")
    ] = "local",
    apply: Annotated[
        bool,
        typer.Option(
            help="Kind mode: patch the SeldonDeployment fraud-detector with the proposal."
        ),
    ] = False,
    data_dir: Annotated[
        str | None, typer.Option("--data-dir", help="Dataset root (FRAUD_DATA_DIR).")
    ] = None,
) -> None:
    """Propose requests/limits per workload from the CPU and memory Prometheus measured during the
    last load test, against what the manifests request; write reports/rightsize.json."""
    import json
    import subprocess

    from rich.table import Table

    from ..cli import _fail, _settings, console
    from .chaos import CONTEXT, NAMESPACE, ChaosError, kubectl
    from .loadtest import read_report
    from .rightsize import (
        RIGHTSIZE_EXERCISE,
        RightsizeError,
        manifest_resources,
        rendered_manifests,
        resources_patch,
        rightsize,
        write_report,
    )

    if target not in ("local", "cluster"):
        _fail(f"--target must be local or cluster, got {target!r}", 2)
    s = _settings(data_dir=data_dir)
    load = read_report(s)
    if load is None:
        _fail(f"no load test report in {s.reports_dir}: run `fraudlab load-test` first", 2)
    url = prometheus or ("http://127.0.0.1:30090" if target == "cluster" else local_prometheus(s))
    step_s = 30.0 if target == "cluster" else s.scrape_interval_s  # kube-prometheus-stack: 30 s
    window = (load["started_at"], load["ended_at"])
    try:
        kubectl_bin = kubectl()
        current = manifest_resources(rendered_manifests(ROOT, kubectl_bin))
        rows = rightsize(url, window, target, step_s, current)
    except (RightsizeError, ChaosError) as err:
        _fail(str(err))
    table = Table(
        title=f"Right-sizing from {url}, load test window {time.strftime('%H:%M:%S', time.localtime(window[0]))}–{time.strftime('%H:%M:%S', time.localtime(window[1]))}"
    )
    for column in (
        "workload",
        "samples",
        "CPU p95",
        "memory max",
        "manifests request",
        "proposed request",
        "proposed limit",
    ):
        table.add_column(column)

    def text(resources: dict, part: str) -> str:
        values = (resources or {}).get(part) or {}
        return ", ".join(f"{k} {v}" for k, v in sorted(values.items())) or "–"

    for row in rows:
        table.add_row(
            row["workload"],
            str(row["samples"]),
            f"{row['cpu_p95_cores'] * 1000:.0f}m",
            f"{row['memory_max_bytes'] / 2**20:.0f}Mi",
            text(row["current"], "requests"),
            text(row["proposed"], "requests"),
            text(row["proposed"], "limits"),
        )
    console.print(table)
    report = {
        "prometheus": url,
        "target": target,
        "window": {"start": window[0], "end": window[1]},
        "step_s": step_s,
        "load_test": load["report_path"],
        "code": RIGHTSIZE_EXERCISE.source(),
        "workloads": rows,
    }
    path = write_report(s, report)
    console.print(f"proposal: {path}  (propose: {report['code']})")
    if apply:
        model = next((r for r in rows if r["workload"] == "fraud-detector"), None)
        if target != "cluster" or model is None:
            _fail("--apply patches the cluster's SeldonDeployment: use it with --target cluster", 2)
        patch = json.dumps(resources_patch(model["proposed"]))
        done = subprocess.run(
            [kubectl_bin, "--context", CONTEXT, "-n", NAMESPACE, "patch", "seldondeployment",
             "fraud-detector", "--type=json", "-p", patch],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if done.returncode != 0:
            _fail(f"kubectl patch seldondeployment fraud-detector: {done.stderr.strip()}")
        console.print(f"applied: {done.stdout.strip()}")
