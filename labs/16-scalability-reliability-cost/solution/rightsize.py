"""Lab 16: the right-sizing rule. `fraudlab rightsize` calls `propose` for each workload with the
CPU and memory samples Prometheus recorded during your load test (FRAUD_LAB_CODE=this folder).

Check it: .venv/bin/fraudlab exercise check 16 --code labs/16-scalability-reliability-cost/starter
"""

from __future__ import annotations

import math

import numpy as np

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
    if len(cpu_cores) == 0 or len(memory_bytes) == 0:
        raise ValueError("need at least one CPU and one memory sample")
    cpu_m = np.percentile(cpu_cores, CPU_PERCENTILE) * HEADROOM * 1000
    cpu_request = max(1, math.ceil(round(cpu_m / CPU_STEP_M, 9))) * CPU_STEP_M
    memory_mib = max(memory_bytes) * HEADROOM / MIB
    memory_request = max(1, math.ceil(round(memory_mib / MEMORY_STEP_MIB, 9))) * MEMORY_STEP_MIB
    return {
        "requests": {"cpu": f"{cpu_request}m", "memory": f"{memory_request}Mi"},
        "limits": {"memory": f"{memory_request * MEMORY_LIMIT_FACTOR}Mi"},
    }
