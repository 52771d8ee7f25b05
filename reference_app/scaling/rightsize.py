"""`fraudlab rightsize`: requests and limits proposed from measured use (lab 16).

The load test (`fraudlab load-test`) records its window; this module reads each workload's CPU
and memory over that window from Prometheus (`query_range`, one sample per scrape interval),
proposes requests and limits with `propose` (lab 16's exercise: the learner's function runs
where `FRAUD_LAB_CODE` has `rightsize.py`), and compares them with what the rendered manifests
request.

What Prometheus measures:

- kind mode (kube-prometheus-stack scrapes the kubelet's cAdvisor): per pod,
  `rate(container_cpu_usage_seconds_total[…])` (cores) and `container_memory_working_set_bytes`
  (what the kubelet compares with the memory limit, and evicts on);
- local mode (`fraudlab up --monitoring`, `launchers.prometheus`): per process,
  `rate(process_cpu_seconds_total[…])` and `process_resident_memory_bytes`, which
  prometheus_client's process collector exports on the model server's /metrics (MLServer serves
  the default registry when `parallel_workers` is 0: SeldonIO/MLServer
  mlserver/metrics/prometheus.py, 1.7.1). The drift monitor's registry has no process collector:
  locally it has no samples and is left out of the proposal.

The rate window is 4 scrape intervals (Prometheus: a range needs at least two samples; four
tolerate a missed scrape).

Example:
    >>> propose([0.08, 0.1, 0.12], [300e6, 310e6])
    {'requests': {'cpu': '150m', 'memory': '368Mi'}, 'limits': {'memory': '736Mi'}}
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import yaml

from ..config import Settings
from ..labcode import Exercise

RIGHTSIZE_EXERCISE = Exercise(lab=16, module="rightsize", function="propose")
"""Lab 16: the learner's `propose` (labs/16-scalability-reliability-cost/starter/rightsize.py)."""
REPORT = "rightsize.json"
MIB = 1024 * 1024

# --8<-- [start:rule]
CPU_PERCENTILE = 95
"""CPU is compressible (a container over its request is slowed, not killed): size for a high
percentile, not the peak."""
HEADROOM = 1.2
"""+20 % over what was measured: room for a busier day than the load test (VPA's recommender
adds a 15 % safety margin: kubernetes/autoscaler vertical-pod-autoscaler, recommender flag
`recommendation-margin-fraction`, default 0.15)."""
CPU_STEP_M = 10
"""CPU requests round up to 10 millicores."""
MEMORY_STEP_MIB = 16
"""Memory requests round up to 16 MiB."""
MEMORY_LIMIT_FACTOR = 2
"""Memory is not compressible: over its limit a container is OOM-killed. The limit leaves room
for a model reload, which holds the old and the new model at once."""


def propose(cpu_cores: list[float], memory_bytes: list[float]) -> dict:
    """Requests and limits for one container from its measured use.

    Rule: requests.cpu = the CPU_PERCENTILE-th percentile of `cpu_cores` × HEADROOM, rounded up
    to CPU_STEP_M millicores (at least one step); requests.memory = the peak of `memory_bytes` ×
    HEADROOM, rounded up to MEMORY_STEP_MIB MiB; limits.memory = MEMORY_LIMIT_FACTOR ×
    requests.memory; no CPU limit (a CPU limit throttles a latency-bound server even on an idle
    node: Kubernetes docs, "Resource Management for Pods and Containers").

    Args:
        cpu_cores: CPU use samples, in cores (0.25 = 250m), one per scrape.
        memory_bytes: memory use samples (working set or RSS), in bytes.

    Returns:
        {"requests": {"cpu": "150m", "memory": "368Mi"}, "limits": {"memory": "736Mi"}}:
        Kubernetes quantities, as a container's `resources` writes them.

    Raises:
        ValueError: no samples, or a negative or non-finite sample.
    """
    if len(cpu_cores) == 0 or len(memory_bytes) == 0:
        raise ValueError("need at least one CPU and one memory sample")
    cpu, memory = np.asarray(cpu_cores, dtype=float), np.asarray(memory_bytes, dtype=float)
    if (
        not (np.isfinite(cpu).all() and np.isfinite(memory).all())
        or (cpu < 0).any()
        or (memory < 0).any()
    ):
        raise ValueError("samples must be finite and non-negative")
    cpu_m = np.percentile(cpu, CPU_PERCENTILE) * HEADROOM * 1000
    cpu_request = max(1, math.ceil(round(cpu_m / CPU_STEP_M, 9))) * CPU_STEP_M
    memory_mib = memory.max() * HEADROOM / MIB
    memory_request = max(1, math.ceil(round(memory_mib / MEMORY_STEP_MIB, 9))) * MEMORY_STEP_MIB
    return {
        "requests": {"cpu": f"{cpu_request}m", "memory": f"{memory_request}Mi"},
        "limits": {"memory": f"{memory_request * MEMORY_LIMIT_FACTOR}Mi"},
    }
    # --8<-- [end:rule]


class RightsizeError(RuntimeError):
    """No load test window, no Prometheus, or no samples for a workload."""


@dataclass(frozen=True)
class Workload:
    """A container to size: its PromQL selectors per target and where the manifests define it.

    Attributes:
        name: the workload's name in the manifests (SeldonDeployment or Deployment).
        kind: its kind.
        container: the container to size.
        local_job: the local Prometheus's scrape job of its process.
        pods: the prefix of its pods' names on the cluster (Seldon names the model's
            Deployment `<sdep>-<predictor>-0-<container>`; the canary's pods start with
            `fraud-detector-canary-` and must not count).
    """

    name: str
    kind: str
    container: str
    local_job: str
    pods: str

    def queries(self, target: str, rate_window: str) -> tuple[str, str]:
        """(CPU cores, memory bytes) PromQL, one series per pod (cluster) or process (local)."""
        if target == "cluster":
            select = f'namespace="fraud-lab", container="{self.container}", pod=~"{self.pods}-.*"'
            return (
                f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{select}}}[{rate_window}]))",
                f"sum by (pod) (container_memory_working_set_bytes{{{select}}})",
            )
        select = f'job="{self.local_job}"'
        return (
            f"rate(process_cpu_seconds_total{{{select}}}[{rate_window}])",
            f"process_resident_memory_bytes{{{select}}}",
        )


# --8<-- [start:workloads]
WORKLOADS = (
    Workload(
        "fraud-detector",
        "SeldonDeployment",
        "fraud-detector",
        "fraud-lab/fraud-detector",
        "fraud-detector-default-0-fraud-detector",
    ),
    Workload(
        "drift-monitor", "Deployment", "drift-monitor", "fraud-lab/drift-monitor", "drift-monitor"
    ),
)
# --8<-- [end:workloads]


def query_range(prometheus: str, expr: str, start: float, end: float, step_s: float) -> list[float]:
    """Every sample of every series `expr` returns over [start, end], as floats (NaN dropped).

    Raises:
        RightsizeError: Prometheus does not answer or rejects the query.
    """
    try:
        answer = httpx.get(
            f"{prometheus.rstrip('/')}/api/v1/query_range",
            params={"query": expr, "start": start, "end": end, "step": step_s},
            timeout=30,
        )
        body = answer.json()
    except (httpx.HTTPError, ValueError) as err:
        raise RightsizeError(f"Prometheus at {prometheus} does not answer: {err}") from err
    if body.get("status") != "success":
        raise RightsizeError(f"Prometheus rejected {expr}: {body.get('error')}")
    values = [float(v) for series in body["data"]["result"] for _, v in series["values"]]
    return [v for v in values if math.isfinite(v)]


def manifest_resources(objects: list[dict]) -> dict[str, dict]:
    """{workload: its container's `resources`} in rendered manifests (`rendered_manifests`)."""
    found = {}
    for w in WORKLOADS:
        for obj in objects:
            if obj.get("kind") != w.kind or obj["metadata"]["name"] != w.name:
                continue
            if w.kind == "SeldonDeployment":
                pods = [c["spec"] for p in obj["spec"]["predictors"] for c in p["componentSpecs"]]
            else:
                pods = [obj["spec"]["template"]["spec"]]
            for pod in pods:
                for c in pod.get("containers", []):
                    if c["name"] == w.container:
                        found[w.name] = c.get("resources") or {}
    return found


class _KubernetesYaml(yaml.SafeLoader):
    """PyYAML reads a bare `=` (kustomize prints AlertmanagerConfig's matchType unquoted) as the
    YAML 1.1 "value" tag; Kubernetes' YAML 1.2 parser reads the string "="."""


_KubernetesYaml.add_constructor(
    "tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node)
)


def rendered_manifests(root: Path, kubectl: str = "kubectl") -> list[dict]:
    """The fraud system's manifests as `kubectl kustomize manifests/base` renders them (where
    the requests are set; the kind overlay adds Secrets and the image tag, and needs
    `make images`).

    Raises:
        RightsizeError: kubectl is missing or the overlay does not render.
    """
    try:
        out = subprocess.run(
            [kubectl, "kustomize", str(root / "manifests" / "base")],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    except FileNotFoundError as err:
        raise RightsizeError(
            f"{kubectl} not found: make doctor prints the install command"
        ) from err
    if out.returncode != 0:
        raise RightsizeError(f"kubectl kustomize manifests/base: {out.stderr.strip()}")
    return [d for d in yaml.load_all(out.stdout, Loader=_KubernetesYaml) if d]


def rightsize(
    prometheus: str,
    window: tuple[float, float],
    target: str,
    step_s: float,
    current: dict[str, dict],
) -> list[dict]:
    """Measure each workload over `window` and propose its resources.

    Args:
        prometheus: Prometheus's base URL.
        window: (start, end) in Unix seconds: the load test's.
        target: "cluster" (cAdvisor metrics) or "local" (process metrics).
        step_s: the query step, the scrape interval (one sample per scrape).
        current: {workload: resources} the manifests set (`manifest_resources`).

    Returns:
        One row per workload with samples: name, queries, samples, cpu_p95_cores,
        memory_max_bytes, current, proposed (`propose`, the learner's where FRAUD_LAB_CODE has it).

    Raises:
        RightsizeError: Prometheus fails, or no workload has samples in the window.
        labcode.LabCodeError: the learner's `propose` is not written yet or raises.
    """
    implementation = RIGHTSIZE_EXERCISE.implementation(propose)
    rate_window = f"{max(4 * step_s, 60 if target == 'cluster' else 4 * step_s):g}s"
    rows = []
    for w in WORKLOADS:
        cpu_q, mem_q = w.queries(target, rate_window)
        cpu = query_range(prometheus, cpu_q, *window, step_s)
        memory = query_range(prometheus, mem_q, *window, step_s)
        if not cpu or not memory:
            continue
        rows.append(
            {
                "workload": w.name,
                "container": w.container,
                "queries": {"cpu": cpu_q, "memory": mem_q},
                "samples": min(len(cpu), len(memory)),
                "cpu_p95_cores": float(np.percentile(cpu, CPU_PERCENTILE)),
                "cpu_max_cores": max(cpu),
                "memory_max_bytes": max(memory),
                "current": current.get(w.name, {}),
                "proposed": implementation(cpu, memory),
            }
        )
    if not rows:
        raise RightsizeError(
            f"Prometheus has no CPU or memory sample of {', '.join(w.name for w in WORKLOADS)} "
            f"between {time.strftime('%H:%M:%S', time.localtime(window[0]))} and "
            f"{time.strftime('%H:%M:%S', time.localtime(window[1]))}: is it scraping them? "
            f"({prometheus}/targets)"
        )
    return rows


def write_report(settings: Settings, report: dict) -> Path:
    """Write `reports/rightsize.json`; return its path."""
    path = Path(settings.reports_dir) / REPORT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    return path


def resources_patch(proposed: dict) -> list[dict]:
    """The JSON patch that sets the model container's resources in the SeldonDeployment
    fraud-detector (predictor 0, componentSpec 0, container 0: the reference's layout)."""
    return [
        {
            "op": "replace",
            "path": "/spec/predictors/0/componentSpecs/0/spec/containers/0/resources",
            "value": proposed,
        }
    ]
