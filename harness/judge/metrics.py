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
the gate's direction (or, for A/B runs made in ABBA order, a one-sided t-test on the neighbouring pairs' log
ratios), and calls `regressed` only when both the effect (> max_rise / max_drop, > abs_floor) and the test (p <
`p`) say so: change.decide, the rule `compare` and `bisect` use too. On a host too noisy for the threshold it says
inconclusive instead (`noisy_host`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, NamedTuple

from harness.judge import change, stats
from harness.matrix import userregex
from harness.matrix.rules import percent

DEFAULT_P = change.DEFAULT_ALPHA
RUN_STATS: dict[str, Callable[[list[float]], float]] = {"median": stats.centre, "min": min}  # names: rules.RUN_STATS


class GateStatus(Enum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    INACTIVE = "inactive"  # a relative gate with no baseline yet (cold start): not a failure
    ERROR = "error"  # the metric has a NaN or inf: the product emitted it (verdict.fold: a failure)
    MISSING = "missing"  # the runner emitted no value at all (verdict.fold: could not judge)


@dataclass(frozen=True)
class GateResult:
    metric: str
    status: GateStatus
    reason: str
    value: float | None = None
    baseline: float | None = None
    p_value: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "status": self.status.value,
            "reason": self.reason,
            "value": self.value,
            "baseline": self.baseline,
            "p_value": self.p_value,
        }


RELATIVE_KEYS = ("max_drop", "max_rise", "abs_floor", "p", "stat", "max_host_noise")
MIN_RUNS_FOR_SPREAD = 3  # runs (or pairs) a spread is measured from, for the noisy-host rule


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


def from_logs(
    spec: dict | None, lines: list, warmup_steps: int = 0, perf: frozenset[str] = frozenset()
) -> dict[str, list[float]]:
    """Samples read from log lines (`log_metrics:`): on each line matching `line` (in a log whose name starts with
    `source`), each metric's regex group; the step from `step`'s group, so a perf metric of a warm-up step is left
    out as for events. A value that does not parse is NaN (an error at gating)."""
    if not spec:
        return {}
    line_re, step_re = userregex.compile(spec["line"]), userregex.compile(spec["step"]) if "step" in spec else None
    wanted = {name: userregex.compile(pattern) for name, pattern in spec["values"].items()}
    out: dict[str, list[float]] = {}
    for ln in lines:
        if spec.get("source") and not ln.source.startswith(spec["source"]) or not line_re.search(ln.text):
            continue
        found_step = step_re.search(ln.text) if step_re else None
        step = int(found_step.group(1)) if found_step and found_step.group(1).isdigit() else None
        for name, pattern in wanted.items():
            if name in perf and step is not None and 1 <= step <= warmup_steps:
                continue
            hit = pattern.search(ln.text)
            if hit:
                try:
                    out.setdefault(name, []).append(float(hit.group(1)))
                except ValueError:
                    out.setdefault(name, []).append(math.nan)
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


class Spread(NamedTuple):
    """What the runs' own spread lets them see: the smallest change (infinite where it cannot be measured), what it
    came from, and whether this host's runs measured it (or only a stored baseline's)."""

    visible: float
    source: str
    measured_here: bool


def noisy_host(gate: dict, threshold: float, spread: Spread, probe_cv: float | None, passing: bool) -> str | None:
    """Why this host is too noisy for the gate's threshold, or None. Two rules:
    - where this host's runs cannot show their own spread (fewer than MIN_RUNS_FOR_SPREAD pairs, or as few current
      runs against a stored baseline): the host probe's CV (run/hostprobe.py) above `max_host_noise` (default: the
      gate's threshold), since the host's own timing moved more than the change the gate looks for. Where they can,
      their spread is the evidence and the probe is a proxy for it: on a lent H100 (reports/gpu/2026-12-06-h100-power)
      the probe read 0.6-58% over 16 runs while the train step's pairs varied 0.4% and the rollout's 2.2%;
    - for a would-be pass only: runs whose spread hides a change of the threshold's size, so "pass" would say
      nothing. A regression already passed its test against that spread (p < alpha), so the spread alone never
      overturns it."""
    limit = (
        percent(gate["max_host_noise"])
        if "max_host_noise" in gate
        else percent(gate.get("max_drop", gate.get("max_rise")))
    )
    if not spread.measured_here and probe_cv is not None and limit is not None and probe_cv > limit:
        return f"noisy host (CPU probe CV {probe_cv:.1%} > {limit:.1%}, {spread.source})"
    if passing and spread.visible > threshold:
        if math.isinf(spread.visible):
            return f"not enough runs to say ({spread.source})"
        return (
            f"noisy host ({spread.source}: the smallest change these runs can see is {spread.visible:.1%} > "
            f"{threshold:.1%})"
        )
    return None


def _visible(values: list[float], base: list[float], paired: bool) -> Spread:
    """The runs' Spread: measured here from at least MIN_RUNS_FOR_SPREAD pairs, or as many current runs beside a
    stored baseline's (unpaired, the larger of the two CVs counts); infinite with too few pairs or baseline runs."""
    n = len(values) if paired else len(base)
    if n < MIN_RUNS_FOR_SPREAD:
        what = f"{n} {'pair' if paired else 'baseline run'}{'s' * (n != 1)}"
        return Spread(math.inf, f"{what}, too few to measure the spread", False)
    if paired:
        spread = stats.sd(stats.log_ratios(values, base))
        return Spread(stats.detectable_change(spread, n), f"pairs' spread {spread:.1%} over {n} pairs", True)
    here = len(values) >= MIN_RUNS_FOR_SPREAD
    spread = max(stats.cv(base) or 0.0, (stats.cv(values) or 0.0) if here else 0.0)
    source = f"per-run CV {spread:.1%}, {n} baseline + {len(values)} runs"
    return Spread(stats.detectable_change(spread, n, len(values)), source, here)


def _relative(
    name: str,
    gate: dict,
    values: list[float],
    base: list[float] | None,
    paired: bool = False,
    probe_cv: float | None = None,
) -> GateResult | None:
    drop, rise = percent(gate.get("max_drop")), percent(gate.get("max_rise"))
    if drop is None and rise is None:
        return None
    if not base:
        return GateResult(name, GateStatus.INACTIVE, f"{name}: no baseline yet (cold start)", stats.centre(values))
    threshold = drop if drop is not None else rise
    floor = float(gate.get("abs_floor", 0.0))
    alpha = float(gate.get("p", DEFAULT_P))
    found = change.decide(base, values, "higher" if drop is not None else "lower", threshold, floor, alpha, paired)
    cur, ref = found.cur, found.ref
    limit = f"max_drop {drop:.1%}" if drop is not None else f"max_rise {rise:.1%}"
    per_run = f" ({gate['stat']} per run)" if gate.get("stat", "median") != "median" else ""
    desc = (
        f"{name}{per_run}: cur={cur:.6g} (n={len(values)}) vs baseline={ref:.6g} (n={len(base)}), "
        f"{found.relative:+.1%}" + (" over neighbouring pairs" if found.paired else "") + f", {limit}"
    )
    # the change the gate must be able to see: its threshold, or the absolute floor where that is larger
    needed = max(threshold, floor / abs(ref)) if ref else threshold
    noisy = noisy_host(gate, needed, _visible(values, base, found.paired), probe_cv, passing=not found.toward_worse)
    if noisy:
        return GateResult(name, GateStatus.INCONCLUSIVE, f"{desc}: {noisy}", cur, ref)
    if not found.toward_worse:
        return GateResult(name, GateStatus.PASS, desc, cur, ref)
    if found.outcome == change.Outcome.WORSE:
        return GateResult(name, GateStatus.FAIL, f"{desc}, p={found.p:.3g} < {alpha}", cur, ref, found.p)
    p = "no test with one run a side" if found.p is None else f"p={found.p:.3g} >= {alpha}"
    return GateResult(
        name, GateStatus.INCONCLUSIVE, f"{desc}, but {p}: not enough evidence (raise repeat)", cur, ref, found.p
    )


def evaluate(
    gates: dict[str, dict],
    values: dict[str, list[float]],
    baseline: dict[str, list[float]] | None = None,
    paired: bool = False,
    probe_cv: float | None = None,
) -> list[GateResult]:
    """Judge every gate. Missing (MISSING) or non-finite (ERROR) metrics are never skipped. Relative gates: `paired`
    when values[i] and baseline[i] ran next to each other (A/B in ABBA order), `probe_cv` the noisiest host probe of
    the runs judged (the noisy-host rule)."""
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
        for judged in (
            _absolute(name, gate, got),
            _relative(name, gate, got, (baseline or {}).get(name), paired, probe_cv),
        ):
            if judged is not None:
                results.append(judged)
    return results
