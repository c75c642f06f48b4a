"""The host-noise probe: a short, fixed, CPU-bound workload timed many times just before each run.

- Owns: measuring the host's CPU jitter where a run is judged (`measure`): the robust spread of the probe's round
  times. A rollout or sync that is launch-bound (a shallow model, a sync of tens of milliseconds) is made of CPU work,
  so its run-to-run noise is this jitter (lent H100s: the same bare server gave a rollout CV of 0.5% on one host and
  up to 16% on another).
- Does not own: what the noise means for a gate (judge/metrics.py: the noisy-host rule) or where it is recorded
  (execute.py: result properties `host.probe_cv`, `host.probe_ms`).
The spread is IQR / 1.349 / median: a normal sample's CV, but one preemption among the rounds does not move it.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from statistics import quantiles

ROUNDS = 33
WARMUP = 3  # rounds timed but not counted (caches, the CPU's clock ramping up)
WORK = 60_000  # loop iterations a round: ~5-9 ms of interpreter work on current CPUs
OFF_ENV = "COLOBENCH_HOST_PROBE"  # "off": no probe, so no noisy-host verdict from it (e.g. a harness's own tests)


def _work(n: int) -> int:
    """Fixed interpreter-bound work (integer arithmetic and a small dict), like a scheduler's Python loop."""
    acc, table = 0, {}
    for i in range(n):
        acc = (acc * 31 + i) % 1_000_003
        table[i & 255] = acc
    return acc


@dataclass(frozen=True)
class Probe:
    cv: float  # robust coefficient of variation of the round times
    median_ms: float  # a round's median time

    def properties(self) -> dict[str, str]:
        return {"host.probe_cv": f"{self.cv:.4f}", "host.probe_ms": f"{self.median_ms:.3f}"}


def measure(jitter: float = 0.0, rounds: int = ROUNDS, seed: int | None = None) -> Probe | None:
    """Time `rounds` rounds of the fixed work (None when $COLOBENCH_HOST_PROBE is off). `jitter` > 0 simulates a
    noisy host (fault `noisy_host: F`): each round is stretched by a random fraction of up to F, spent busy as a
    preempted round would be."""
    if os.environ.get(OFF_ENV, "").lower() in ("off", "0", "false"):
        return None
    rng = random.Random(seed)
    times = []
    for _ in range(rounds + WARMUP):
        start = time.perf_counter()
        _work(WORK)
        if jitter:
            until = time.perf_counter() + (time.perf_counter() - start) * jitter * rng.random()
            while time.perf_counter() < until:
                pass
        times.append(time.perf_counter() - start)
    q1, med, q3 = quantiles(times[WARMUP:], n=4)
    return Probe(cv=(q3 - q1) / 1.349 / med, median_ms=med * 1e3)
