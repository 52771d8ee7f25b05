"""Lab 16's exercise: the right-sizing rule, requests and limits from measured use.

The learner writes `propose` in `labs/16-scalability-reliability-cost/starter/rightsize.py`;
`fraudlab rightsize` calls it (FRAUD_LAB_CODE) on the CPU and memory samples Prometheus recorded
during the load test, for each workload. Reference: `scaling.rightsize.propose` (a high
percentile for compressible CPU, the peak for memory, headroom, rounding to sensible units; the
same shape as the Vertical Pod Autoscaler's recommender: kubernetes/autoscaler,
vertical-pod-autoscaler/pkg/recommender).
"""

from __future__ import annotations

from ..scaling.rightsize import RIGHTSIZE_EXERCISE, propose
from . import Behaviour

EXERCISE = RIGHTSIZE_EXERCISE
REFERENCE = propose
FILE = "labs/16-scalability-reliability-cost/starter/rightsize.py"
CHECK = "make lab-16 TARGET=local"
MIB = 1024 * 1024
# A busy minute: 19 samples near 60 millicores, one spike of 500m (a GC pause, a batch).
SPIKY_CPU = [0.06] * 19 + [0.5]
MEMORY = [300 * MIB, 310 * MIB, 305 * MIB]


def _part(cpu, memory, *path: str):
    def check(learner, reference):
        def get(function):
            value = function(list(cpu), list(memory))
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            return repr(value)

        return get(reference), get(learner)

    return check


def _raises(cpu, memory):
    def check(learner, reference):
        def outcome(function):
            try:
                function(list(cpu), list(memory))
            except ValueError:
                return "ValueError"
            except NotImplementedError:  # a TODO: the runner says "not written yet"
                raise
            except Exception as err:  # the wrong error: show which
                return type(err).__name__
            return "no error"

        return outcome(reference), outcome(learner)

    return check


BEHAVIOURS = [
    Behaviour(
        "requests.cpu: the 95th percentile of the CPU samples + 20 %, rounded up to 10m (a spike does not set it)",
        _part(SPIKY_CPU, MEMORY, "requests", "cpu"),
        f"np.percentile(cpu_cores, 95) × 1.2 in millicores, rounded up to a multiple of 10, as '120m': {FILE}; then {CHECK}",
    ),
    Behaviour(
        "requests.memory: the peak of the memory samples + 20 %, rounded up to 16 MiB",
        _part(SPIKY_CPU, MEMORY, "requests", "memory"),
        f"max(memory_bytes) × 1.2 in MiB (1 MiB = 1,048,576 bytes), rounded up to a multiple of 16, as '384Mi': {FILE}; then {CHECK}",
    ),
    Behaviour(
        "limits: memory twice its request, no CPU limit",
        _part(SPIKY_CPU, MEMORY, "limits"),
        f"limits = {{'memory': 2 × the memory request}}, no 'cpu' key (a CPU limit throttles): {FILE}; then {CHECK}",
    ),
    Behaviour(
        "rounds up, never down: 100.1m measured is 130m requested",
        _part([0.1001], [100 * MIB], "requests", "cpu"),
        f"math.ceil, not round: 100.1m × 1.2 = 120.12m → 130m: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "an idle container still gets one step: 10m and 16Mi",
        _part([0.0, 0.0], [0.0], "requests"),
        f"at least one step of each: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "no samples (Prometheus had none in the window): ValueError",
        _raises([], MEMORY),
        f"raise ValueError when a list is empty, rather than proposing 0: {FILE}; then {CHECK}",
    ),
    Behaviour(
        "the whole proposal for a model server measured under load",
        _part([0.21, 0.25, 0.32, 0.29, 0.27], [612 * MIB, 640 * MIB, 655 * MIB]),
        f"{{'requests': {{'cpu': …, 'memory': …}}, 'limits': {{'memory': …}}}}: {FILE}; then {CHECK}",
    ),
]
