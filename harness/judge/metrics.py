"""Metric extraction from events and the gates of a scenario's `metrics:` section.

- Owns: pulling samples out of metric events (`samples`), and judging them (`evaluate`) against absolute limits,
  two-sided bands and a baseline sample (relative gates).
- Does not own: gate syntax (matrix/rules.py checks it at load time), the statistics (stats.py) or where a
  baseline comes from (run/session.py).

    metrics:
      weight_sync_s: {max: 2.0}                     # absolute, every sample
      logprob_abs_diff: {min: 0, max: 0.05}         # two-sided band
      rollout_tokens_per_s: {max_drop: 5%}          # relative to the baseline (higher is better)
      train_step_s: {max_rise: 10%, abs_floor: 0.01}  # relative (lower is better); floor in the metric's unit
      weight_sync_s: {max_rise: 5%, stat: min, p: 0.01}  # each run summarised by its fastest step

A relative gate compares one value per run (the run's `stat` over its steps: median by default; `min` for a
timing that noise can only lengthen) with the baseline's per-run values, by a one-sided Mann-Whitney U test in
the gate's direction, and calls `regressed` only when both the effect (> max_rise / max_drop, > abs_floor) and
the test (p < `p`) say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

from harness.judge import stats
from harness.matrix.rules import percent

DEFAULT_P = 0.05
RUN_STATS: dict[str, Callable[[list[float]], float]] = {"median": stats.centre, "min": min}   # names: rules.RUN_STATS


class GateStatus(Enum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    INACTIVE = "inactive"       # a relative gate with no baseline yet (cold start): not a failure
    ERROR = "error"             # the metric has a NaN or inf: the product emitted it (verdict.fold: a failure)
    MISSING = "missing"         # the runner emitted no value at all (verdict.fold: could not judge)


@dataclass(frozen=True)
class GateResult:
    metric: str
    status: GateStatus
    reason: str
    value: float | None = None
    baseline: float | None = None
    p_value: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "status": self.status.value, "reason": self.reason, "value": self.value,
                "baseline": self.baseline, "p_value": self.p_value}


RELATIVE_KEYS = ("max_drop", "max_rise", "abs_floor", "p", "stat")


def relative(gates: dict[str, dict]) -> dict[str, dict]:
    """The relative part of each gate (max_drop / max_rise and their options): judged against a baseline, once per
    scenario after all repeats."""
    out = {k: {kk: v for kk, v in g.items() if kk in RELATIVE_KEYS} for k, g in gates.items()}
    return {k: g for k, g in out.items() if "max_drop" in g or "max_rise" in g}


def absolute(gates: dict[str, dict]) -> dict[str, dict]:
    """The absolute part of each gate (min / max): judged on every sample of every run."""
    out = {k: {kk: v for kk, v in g.items() if kk in ("min", "max")} for k, g in gates.items()}
    return {k: g for k, g in out.items() if g}


def per_run_values(runs: list[dict[str, list[float]]], gates: dict[str, dict]) -> dict[str, list[float]]:
    """One value per run (the gate's `stat` of its samples) for each gated metric: a run's steps share its
    offset, so a run is the unit of evidence."""
    out: dict[str, list[float]] = {}
    for run in runs:
        for name, gate in gates.items():
            finite = stats.finite(run.get(name, []))
            if finite:
                out.setdefault(name, []).append(RUN_STATS[gate.get("stat", "median")](finite))
    return out


def samples(events: list[dict], warmup_steps: int = 0, perf: frozenset[str] = frozenset()) -> dict[str, list[float]]:
    """Every metric event's value, by name, in order; a `perf` metric of a warm-up step (1..warmup_steps) is left
    out (those steps are run and checked, never sampled). Non-numeric values become NaN (an error at gating)."""
    out: dict[str, list[float]] = {}
    for e in events:
        if e.get("event") != "metric" or not isinstance(e.get("name"), str):
            continue
        step = e.get("step")
        if e["name"] in perf and isinstance(step, int) and 1 <= step <= warmup_steps:
            continue
        value = e.get("value")
        if isinstance(value, bool):
            value = float(value)
        out.setdefault(e["name"], []).append(float(value) if isinstance(value, (int, float)) else math.nan)
    return out


def spread(values: dict[str, list[float]]) -> dict[str, float]:
    """Sample-level coefficient of variation (sd / |mean|) of each metric with two or more finite samples."""
    out = {}
    for name, vals in values.items():
        found = stats.cv(stats.finite(vals))
        if found is not None:
            out[name] = round(found, 4)
    return out


def _absolute(name: str, gate: dict, values: list[float]) -> GateResult | None:
    lo, hi = gate.get("min"), gate.get("max")
    if lo is None and hi is None:
        return None
    worst_low, worst_high = min(values), max(values)
    if lo is not None and worst_low < lo:
        return GateResult(name, GateStatus.FAIL, f"{name}: {worst_low:.6g} < min {lo:.6g}", worst_low)
    if hi is not None and worst_high > hi:
        return GateResult(name, GateStatus.FAIL, f"{name}: {worst_high:.6g} > max {hi:.6g}", worst_high)
    return GateResult(name, GateStatus.PASS, "", worst_high)


def _relative(name: str, gate: dict, values: list[float], base: list[float] | None) -> GateResult | None:
    drop, rise = percent(gate.get("max_drop")), percent(gate.get("max_rise"))
    if drop is None and rise is None:
        return None
    cur = stats.centre(values)
    if not base:
        return GateResult(name, GateStatus.INACTIVE, f"{name}: no baseline yet (cold start)", cur)
    ref = stats.centre(base)
    change = stats.relative_change(cur, ref)
    floor = float(gate.get("abs_floor", 0.0))
    worse = (drop is not None and stats.side_of_band(cur, ref, drop, floor) < 0) or \
            (rise is not None and stats.side_of_band(cur, ref, rise, floor) > 0)
    limit = f"max_drop {drop:.0%}" if drop is not None else f"max_rise {rise:.0%}"
    per_run = f" ({gate['stat']} per run)" if gate.get("stat", "median") != "median" else ""
    desc = f"{name}{per_run}: cur={cur:.6g} (n={len(values)}) vs baseline={ref:.6g} (n={len(base)}), {change:+.1%}, {limit}"
    if not worse:
        return GateResult(name, GateStatus.PASS, desc, cur, ref)
    _, p = stats.mann_whitney_u(values, base, "greater" if rise is not None and change > rise else "less")
    alpha = float(gate.get("p", DEFAULT_P))
    if p < alpha:
        return GateResult(name, GateStatus.FAIL, f"{desc}, p={p:.3g} < {alpha}", cur, ref, p)
    return GateResult(name, GateStatus.INCONCLUSIVE,
                      f"{desc}, but p={p:.3g} >= {alpha}: not enough evidence (raise repeat)", cur, ref, p)


def evaluate(gates: dict[str, dict], values: dict[str, list[float]],
             baseline: dict[str, list[float]] | None = None) -> list[GateResult]:
    """Judge every gate. Missing (MISSING) or non-finite (ERROR) metrics are never skipped."""
    results = []
    for name, gate in gates.items():
        got = values.get(name)
        if not got:
            results.append(GateResult(name, GateStatus.MISSING, f"{name}: metric missing (the runner emitted none)"))
            continue
        bad = [v for v in got if not math.isfinite(v)]
        if bad:
            results.append(GateResult(name, GateStatus.ERROR, f"{name}: non-finite value {bad[0]!r}", bad[0]))
            continue
        for judged in (_absolute(name, gate, got), _relative(name, gate, got, (baseline or {}).get(name))):
            if judged is not None:
                results.append(judged)
    return results
