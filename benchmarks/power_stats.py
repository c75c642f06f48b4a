"""The power of the A/B gates, computed (pure: pooled runs in, numbers out; benchmarks/gpu_power.py makes the pools in
ABBA order and writes the report). Every decision is judged exactly as `colobench run --ab` judges one
(`metrics.evaluate` on one median per run, paired, with the runs' host probes), on k pairs drawn from the pools:
- A/B pairs (runs 2j and 2j+1 of the sequence: neighbours, one of each side): how often B's change is `regressed`;
- unchanged pairs (runs 2j+1 and 2j+2: neighbours of one side, taken later-second and earlier-second in turn as the
  A/B pairs' B is, so a drift cancels as it does in a real --ab): false alarms, and, with the pair's second run made
  exactly SHIFT worse, how often a 5% change on this host's own noise would be caught;
- a parametric check at the same k: pairs drawn from the normal with the unchanged pairs' measured spread.
Also: per-run CV, the pairs' spread, the pairs a 5% change needs, drift against run order, time per run.
"""

from __future__ import annotations

import math
import random
import re
import statistics
from typing import NamedTuple

from harness.judge import metrics, stats
from harness.judge.result import ScenarioResult
from harness.matrix import defaults
from harness.run import execute

PAIRS = (3, 5)  # runs a side of the decisions drawn (issue 29: detection at <= 5 a side)
SHIFT = 0.05  # the change to catch
DRAWS = 2000
POWER = 0.95
RUN_ID = re.compile(r"\.([ab])-(\d+)$")  # `pools` names each run <scenario>.<side>-<sequence number>


class Run(NamedTuple):
    side: str
    number: int
    result: ScenarioResult


def sequence(runs: dict[str, list[ScenarioResult]]) -> list[Run]:
    """Both pools' runs in the order they were made (their sequence numbers)."""
    out = []
    for side, results in runs.items():
        for r in results:
            found = RUN_ID.search(r.scenario_id)
            if found:
                out.append(Run(side, int(found.group(2)), r))
    return sorted(out, key=lambda run: run.number)


def pairs(made: list[Run]) -> tuple[list[tuple[Run, Run]], list[tuple[Run, Run]]]:
    """(A/B pairs as (A, B), unchanged pairs as (stand-in A, stand-in B)) of neighbours in the ABBA sequence; a run
    missing (failed, left out) takes its pairs with it. An unchanged pair's stand-in B is its later run in every other
    pair, as B is in the A/B pairs (A B, B A, A B, ...): always the later would turn any drift into false alarms."""
    at = {run.number: run for run in made}
    changed, unchanged = [], []
    for first, run in at.items():
        other = at.get(first + 1)
        if other is None:
            continue
        if first % 2 == 0 and run.side != other.side:
            changed.append((run, other) if run.side == "a" else (other, run))
        elif first % 2 == 1 and run.side == other.side:
            unchanged.append((run, other) if (first // 2) % 2 == 0 else (other, run))
    return changed, unchanged


def decide(gate: dict, name: str, chosen: list[tuple[Run, Run]], shift: float = 0.0) -> metrics.GateStatus:
    """One --ab decision on these pairs (the second of each made `shift` worse)."""
    worse = 1 - shift if "max_drop" in gate else 1 + shift
    per_a = metrics.per_run_values([x.result.metrics for x, _ in chosen], {name: gate})
    per_b = metrics.per_run_values(
        [{name: [v * worse for v in y.result.metrics[name]]} for _, y in chosen], {name: gate}
    )
    probe = execute.probe_cv([run.result for pair in chosen for run in pair])
    (judged,) = metrics.evaluate({name: gate}, per_b, per_a, paired=True, probe_cv=probe)
    return judged.status


def rates(
    gate: dict,
    name: str,
    pool: list[tuple[Run, Run]],
    k: int,
    rng: random.Random,
    draws: int = DRAWS,
    shift: float = 0.0,
) -> dict | None:
    """Shares of `draws` decisions on k pairs drawn without replacement: regressed, inconclusive (None: fewer pairs
    than k). `distinct` says how many different draws the pool allows."""
    usable = [p for p in pool if p[0].result.metrics.get(name) and p[1].result.metrics.get(name)]
    if k > len(usable):
        return None
    seen = [decide(gate, name, rng.sample(usable, k), shift) for _ in range(draws)]
    return {
        "regressed": round(seen.count(metrics.GateStatus.FAIL) / draws, 4),
        "inconclusive": round(seen.count(metrics.GateStatus.INCONCLUSIVE) / draws, 4),
        "distinct": math.comb(len(usable), k),
    }


def log_ratios(pool: list[tuple[Run, Run]], name: str, gate: dict | None = None) -> list[float]:
    """log(second / first) of each pair's run values, each run taken as `gate` takes it (metrics.per_run_values:
    its `stat` of the run's samples; the median without a gate)."""
    usable = [p for p in pool if all(stats.finite(run.result.metrics.get(name, [])) for run in p)]
    if not usable:
        return []
    firsts, seconds = (per_run([pair[i] for pair in usable], name, gate) for i in (0, 1))
    return stats.log_ratios(seconds, firsts)


def per_run(runs: list[Run], name: str, gate: dict | None = None) -> list[float]:
    """One value per run with a finite sample of `name`, as the gate takes it (metrics.per_run_values)."""
    return metrics.per_run_values([run.result.metrics for run in runs], {name: gate or {}}).get(name, [])


def parametric(gate: dict, spread: float, k: int, rng: random.Random, draws: int = DRAWS, shift: float = 0.0) -> float:
    """Share of decisions on k pairs whose log ratios are normal with sd `spread` around log(1 -/+ shift), without
    the host probe: what the measured spread allows, free of which few pairs the pools happen to hold."""
    centre = math.log(1 - shift if "max_drop" in gate else 1 + shift)
    failed = 0
    for _ in range(draws):
        b = [math.exp(rng.gauss(centre, spread)) for _ in range(k)]
        (judged,) = metrics.evaluate({"m": gate}, {"m": b}, {"m": [1.0] * k}, paired=True)
        failed += judged.status == metrics.GateStatus.FAIL
    return round(failed / draws, 4)


def pairs_needed(spread: float, effect: float = SHIFT, alpha: float = metrics.DEFAULT_P, power: float = POWER) -> int:
    """Pairs at which a one-sided paired test at `alpha` sees `effect` with `power` (normal approximation), never
    fewer than the pairs the noisy-host rule needs to measure a spread."""
    z = statistics.NormalDist().inv_cdf
    n = ((z(1 - alpha) + z(power)) * spread / math.log(1 + effect)) ** 2
    return max(math.ceil(n), metrics.MIN_RUNS_FOR_SPREAD)


def change_interval(
    changed: list[tuple[Run, Run]], name: str, rng: random.Random, draws: int = DRAWS, gate: dict | None = None
) -> tuple[float, float, float]:
    """B's change over A (exp of the mean log ratio of the A/B pairs) and its 90% bootstrap interval (pairs drawn
    with replacement)."""
    logs = log_ratios(changed, name, gate)
    found = sorted(statistics.fmean(rng.choices(logs, k=len(logs))) for _ in range(draws))
    return tuple(
        round(math.expm1(x), 4)
        for x in (statistics.fmean(logs), found[int(0.05 * draws)], found[int(0.95 * draws) - 1])
    )


def drift(made: list[Run], name: str) -> dict:
    """Spearman's rho of each side's per-run medians against the sequence: a host drifting while the pools grew."""
    from scipy.stats import spearmanr

    out = {}
    for side in "ab":
        got = [
            (run.number, statistics.median(run.result.metrics[name]))
            for run in made
            if run.side == side and run.result.metrics.get(name)
        ]
        if len(got) >= 3:
            rho, p = spearmanr(*zip(*got))
            out[side] = {"rho": round(float(rho), 3), "p": round(float(p), 4)}
    return out


def _median_of(runs: list[Run], name: str) -> float | None:
    found = [statistics.median(r.result.metrics[name]) for r in runs if r.result.metrics.get(name)]
    return round(statistics.median(found), 4) if found else None


def analyze(
    made: list[Run], b_label: str, device: str, sglang: str, model: str, seed: int = 0, draws: int = DRAWS
) -> tuple[list[dict], dict]:
    """power.json rows (one per gated metric x pairs drawn, defaults.yaml's `ab:` gates) and the rest."""
    rng = random.Random(seed)
    changed, unchanged = pairs(made)
    a_runs = [r for r in made if r.side == "a"]
    rows, extra = [], {"pairs": len(changed), "unchanged_pairs": len(unchanged), "metrics": {}}
    for name, gate in defaults.ab_gates().items():
        same = log_ratios(unchanged, name, gate)  # each run's value as the gate takes it
        if len(same) < 2 or not log_ratios(changed, name, gate):
            continue
        spread = stats.sd(same)
        per_a = per_run(a_runs, name, gate)
        change = change_interval(changed, name, random.Random(seed), draws, gate)
        extra["metrics"][name] = {
            "per_run_cv": round(stats.cv(per_a) or 0.0, 4),
            "pair_spread": round(spread, 4),
            "b_vs_a": change,
            "pairs_needed": pairs_needed(spread),
            "drift": drift(made, name),
        }
        for k in PAIRS:
            detected, alarms = rates(gate, name, changed, k, rng, draws), rates(gate, name, unchanged, k, rng, draws)
            shifted = rates(gate, name, unchanged, k, rng, draws, SHIFT)
            rows.append(
                {
                    "metric": name,
                    "effect": SHIFT,
                    "b": b_label,
                    "runs_per_side": k,
                    "gate": gate,
                    "decisions": draws,
                    "detected": detected and detected["regressed"],
                    "inconclusive": detected and detected["inconclusive"],
                    "false_alarms": alarms and alarms["regressed"],
                    "exact_shift_detected": shifted and shifted["regressed"],
                    "parametric_detected": parametric(gate, spread, k, rng, draws, SHIFT),
                    "parametric_false_alarms": parametric(gate, spread, k, rng, draws),
                    "distinct_draws": {
                        "ab": detected and detected["distinct"],
                        "unchanged": alarms and alarms["distinct"],
                    },
                    "measured_change": change[0],
                    "per_run_cv": extra["metrics"][name]["per_run_cv"],
                    "pair_spread": round(spread, 4),
                    "device": device,
                    "sglang": sglang,
                    "model": model,
                    "pairs": len(changed),
                    "unchanged_pairs": len(unchanged),
                }
            )
    extra["host"] = {
        "probe_cv": _median_of_probe(made),
        "engine_gpu_busy": _median_of(a_runs, "engine_gpu_busy"),
        "weight_sync_copy_fraction": _median_of(a_runs, "weight_sync_copy_fraction"),
        "device_copy_gbps": _median_of(a_runs, "device_copy_gbps"),
        "weight_sync_gbps": _median_of(a_runs, "weight_sync_gbps"),
    }
    extra["timings"] = {side: _timing_summary([r.result for r in made if r.side == side]) for side in "ab"}
    return rows, extra


def _median_of_probe(made: list[Run]) -> dict | None:
    found = execute.probe_cvs([r.result for r in made])
    return {"median": round(statistics.median(found), 4), "max": round(max(found), 4)} if found else None


def _timing_summary(runs: list[ScenarioResult]) -> dict[str, dict[str, float]]:
    out = {}
    for key in ("engine_start_s", "first_step_s", "total_s"):
        vals = [r.timings[key] for r in runs if key in (r.timings or {})]
        if vals:
            out[key] = {
                "median": round(statistics.median(vals), 1),
                "min": round(min(vals), 1),
                "max": round(max(vals), 1),
            }
    return out
