"""Metric extraction from events and the gates of a scenario's `metrics:` section.

- Owns: gate syntax (`check_gates`), pulling samples out of metric events (`samples`), and judging them
  (`evaluate`) against absolute limits, two-sided bands and a baseline sample (relative gates).
- Does not own: the statistics (stats.py) or where a baseline comes from (history.py, execute.py).

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

from harness import stats

GATE_KEYS = {"min", "max", "max_drop", "max_rise", "abs_floor", "p", "stat"}
DEFAULT_P = 0.05
RUN_STATS: dict[str, Callable[[list[float]], float]] = {"median": stats.centre, "min": min}


class GateStatus(Enum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    INACTIVE = "inactive"       # a relative gate with no baseline yet (cold start): not a failure
    ERROR = "error"             # the metric is missing or not finite


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


def relative(gates: dict[str, dict]) -> dict[str, dict]:
    """The gates that compare against a baseline (max_drop / max_rise)."""
    return {k: g for k, g in gates.items() if "max_drop" in g or "max_rise" in g}


def per_run_values(runs: list[dict[str, list[float]]], gates: dict[str, dict]) -> dict[str, list[float]]:
    """One value per run (the gate's `stat` of its samples) for each gated metric: a run's steps share its
    offset, so a run is the unit of evidence."""
    out: dict[str, list[float]] = {}
    for run in runs:
        for name, gate in gates.items():
            finite = [v for v in run.get(name, []) if v == v]
            if finite:
                out.setdefault(name, []).append(RUN_STATS[gate.get("stat", "median")](finite))
    return out


def percent(v: Any) -> float | None:
    """'5%' -> 0.05, 0.05 -> 0.05; None if not a non-negative fraction."""
    if isinstance(v, str) and v.endswith("%"):
        try:
            v = float(v[:-1]) / 100
        except ValueError:
            return None
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0:
        return float(v)
    return None


def check_gates(gates: Any) -> str | None:
    """Validate a `metrics:` mapping; a one-line problem or None."""
    if not isinstance(gates, dict):
        return "expected a mapping of metric name to gate"
    for name, gate in gates.items():
        if not isinstance(gate, dict) or not gate:
            return f"{name}: expected a mapping such as {{max: 2.0}} or {{max_drop: 5%}}"
        unknown = set(gate) - GATE_KEYS
        if unknown:
            return f"{name}.{sorted(unknown)[0]}: unknown key; valid: {', '.join(sorted(GATE_KEYS))}"
        for key in ("min", "max", "abs_floor"):
            if key in gate and (isinstance(gate[key], bool) or not isinstance(gate[key], (int, float))):
                return f"{name}.{key}: expected a number, got {gate[key]!r}"
        for key in ("max_drop", "max_rise"):
            if key in gate and percent(gate[key]) is None:
                return f"{name}.{key}: expected a percentage such as 5%, got {gate[key]!r}"
        if "p" in gate and not (isinstance(gate["p"], float) and 0 < gate["p"] < 1):
            return f"{name}.p: expected a probability in (0, 1)"
        if "stat" in gate and gate["stat"] not in RUN_STATS:
            return f"{name}.stat: expected one of {', '.join(RUN_STATS)}, got {gate['stat']!r}"
    return None


def samples(events: list[dict]) -> dict[str, list[float]]:
    """Every metric event's value, by name, in order. Non-numeric values become NaN (an error at gating)."""
    out: dict[str, list[float]] = {}
    for e in events:
        if e.get("event") != "metric" or not isinstance(e.get("name"), str):
            continue
        value = e.get("value")
        if isinstance(value, bool):
            value = float(value)
        out.setdefault(e["name"], []).append(float(value) if isinstance(value, (int, float)) else math.nan)
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
    worse = (drop is not None and change < -drop and ref - cur > floor) or \
            (rise is not None and change > rise and cur - ref > floor)
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
    """Judge every gate. Missing or non-finite metrics are errors, never skips."""
    results = []
    for name, gate in gates.items():
        got = values.get(name)
        if not got:
            results.append(GateResult(name, GateStatus.ERROR, f"{name}: metric missing (the runner emitted none)"))
            continue
        bad = [v for v in got if not math.isfinite(v)]
        if bad:
            results.append(GateResult(name, GateStatus.ERROR, f"{name}: non-finite value {bad[0]!r}"))
            continue
        for judged in (_absolute(name, gate, got), _relative(name, gate, got, (baseline or {}).get(name))):
            if judged is not None:
                results.append(judged)
    return results
