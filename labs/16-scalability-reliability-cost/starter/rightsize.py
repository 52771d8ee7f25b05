"""Lab 16: the right-sizing rule. `fraudlab rightsize` calls `propose` for each workload with the
CPU and memory samples Prometheus recorded during your load test (FRAUD_LAB_CODE=this folder).

Check it: .venv/bin/fraudlab exercise check 16 --code labs/16-scalability-reliability-cost/starter
"""

from __future__ import annotations

import math  # noqa: F401 - for your solution

import numpy as np  # noqa: F401 - for your solution

CPU_PERCENTILE = 95  # CPU is compressible: size for a high percentile, not the peak
HEADROOM = 1.2  # +20 % over what was measured
CPU_STEP_M = 10  # CPU requests round up to 10 millicores
MEMORY_STEP_MIB = 16  # memory requests round up to 16 MiB
MEMORY_LIMIT_FACTOR = 2  # memory limit = 2 × memory request (room for a model reload)
MIB = 1024 * 1024


def propose(cpu_cores: list[float], memory_bytes: list[float]) -> dict:
    """Requests and limits for one container from its measured use.

    Args:
        cpu_cores: CPU use samples, in cores (0.25 = 250m), one per scrape.
        memory_bytes: memory use samples, in bytes.

    Returns:
        {"requests": {"cpu": "150m", "memory": "368Mi"}, "limits": {"memory": "736Mi"}}

    Raises:
        ValueError: a list is empty.
    """
    # TODO(lab-16): raise ValueError when cpu_cores or memory_bytes is empty.
    # TODO(lab-16): requests.cpu = the CPU_PERCENTILE-th percentile of cpu_cores × HEADROOM, in
    #   millicores, rounded UP to a multiple of CPU_STEP_M (at least one step), as "<n>m".
    # TODO(lab-16): requests.memory = max(memory_bytes) × HEADROOM, in MiB, rounded UP to a
    #   multiple of MEMORY_STEP_MIB (at least one step), as "<n>Mi".
    # TODO(lab-16): limits.memory = MEMORY_LIMIT_FACTOR × requests.memory; no CPU limit.
    raise NotImplementedError("TODO(lab-16): propose")
