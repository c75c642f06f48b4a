"""The power of colobench's default A/B gates on a GPU (issue 20.5): pools of real runs, then resampled decisions.

`pools`: runs one scenario as A (unchanged) and B (a real change: engine arguments, e.g. a smaller
`chunked_prefill_size`, and/or an injected fault, e.g. `sync_slowdown:0.05`) alternately, A B A B ..., each run a
full scenario (its own engine, trainer, syncs and verdict), into OUT/a/ and OUT/b/ (`--sides a` or `b`: one pool
only). Calls append: a pool can grow over several device calls, never with another scenario or B. `analyze`: from
the pools, by resampling (k runs a side, drawn without replacement within a side, 2000 draws), how often the
default `ab:` gate of each metric
(defaults.yaml, judged exactly as `colobench run --ab` judges: `metrics.evaluate` on one median per run) calls B
`regressed` against A (detection) and how often it calls A regressed against other disjoint A runs (false alarm;
needs 2k unchanged runs), at 3, 5 and 8 runs a side; the same A halves with one made 5% worse (detection of an exact
5% on the measured noise); the same for each effect at stricter thresholds (what it would take); B's measured change
with a 90% bootstrap interval (how far the pools pin it down); per-run CV of every
gated metric; the spread of the per-run median by number of steady steps; the steady steps a 2% per-run CV would take
(step-to-step and run-to-run variance); the runs a side a 5% change needs at the measured per-run CV; each metric's
drift while the pools grew (Spearman rho against run order, run-order-<metric>.png); engine start, first step and
total time per run. Writes power.json, power-extra.json, power.md and the figures.

Usage (GPU host; tools/gpu-host.sh; the repository on PYTHONPATH):
  python3 benchmarks/gpu_power.py pools --matrix matrix/perf.yaml -k "qwen3-8b-shape and not mcore" --pairs 5 \
      --steps 8 --b-args chunked_prefill_size=1024 --b-inject sync_slowdown:0.05 --out /tmp/out/pools
  python3 benchmarks/gpu_power.py analyze /tmp/out/pools --out reports/gpu/DATE-power
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import re
import statistics
import sys
import time
from pathlib import Path

from tabulate import tabulate

from harness.cli import interrupt_on_sigterm
from harness.errors import ColobenchError
from harness.judge import metrics, stats
from harness.judge.result import ScenarioResult
from harness.judge.verdict import Verdict
from harness.matrix import defaults, models, scenario, schema
from harness.report import plots
from harness.run import execute
from harness.study import ab

RUNS_PER_SIDE = (3, 5, 8)
SHIFT = 0.05                           # the regression the issue asks to catch, laid on the A pool's own noise
DRAWS = 2000
STRICTER = ("1%", "2%", "3%")          # thresholds tried beside the default (what detection would take)
TARGET_CV = 0.02                       # a per-run CV at which 5% shows at <= 5 runs a side (README: Power)
PROJECTED_STEPS = (5, 10, 20, 40)
POWER = 0.95                           # the detection rate issue 20 asks of a 5% regression
RUN_ID = re.compile(r"\.([ab])(\d{6})-(\d+)$")   # `pools` names each run <scenario>.<side><HHMMSS>-<pair>


def side_b(s: scenario.Scenario, args: str | None, inject: str | None) -> scenario.Scenario:
    """A with both changes applied the way `--ab` applies one side's (ab.with_variant)."""
    for variant in filter(None, [args and f"args:{args}", inject and f"inject:{inject}"]):
        s = ab.with_variant(s, variant, 1, "b")
    return s


def with_steps(s: scenario.Scenario, steps: int) -> scenario.Scenario:
    """The scenario at `steps` steps (its warm-up steps kept), checked as the matrix checks `steps:`."""
    problem = schema.SETTINGS["steps"][1](steps)
    warmup = s.settings.get("warmup_steps") or 0
    if problem or warmup >= steps:
        raise ColobenchError(f"--steps: {problem or f'{steps} leaves no steady step after {warmup} warm-up'}")
    return dataclasses.replace(s, settings={**s.settings, "steps": steps})


def run_pools(ns: argparse.Namespace) -> int:
    matrix = scenario.load_many(scenario.matrix_files(ns.matrix), models.load(), sglang=ns.sglang)
    found = scenario.select(matrix.scenarios, ns.k)
    if len(found) != 1:
        print(f"gpu_power: -k {ns.k!r} selects {len(found)} scenarios of {ns.matrix}; expected one", file=sys.stderr)
        return 2
    a = with_steps(found[0], ns.steps) if ns.steps is not None else found[0]
    b = side_b(a, ns.b_args, ns.b_inject)
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    recipe = {"scenario": a.id, "b_args": ns.b_args, "b_inject": ns.b_inject, "steps": a.settings["steps"]}
    made = out / "pools.json"
    held = json.loads(made.read_text()) if made.is_file() else recipe
    if held != recipe:
        print(f"gpu_power: {made} holds pools of {json.dumps(held)}; this call's is {json.dumps(recipe)} "
              "(one folder, one A/B pair)", file=sys.stderr)
        return 2
    made.write_text(json.dumps(recipe))
    options = execute.Options(ray_address=ns.ray_address, infra_retries=0)
    stamp = time.strftime("%H%M%S")
    sides = {"a": a, "b": b}
    for pair in range(ns.pairs):
        for side in ns.sides:
            one = dataclasses.replace(sides[side], id=f"{a.id}.{side}{stamp}-{pair}")
            try:
                result = execute.run_scenario(one, out / side, options)
            except KeyboardInterrupt:               # the call's deadline (SIGTERM) or Ctrl-C: the folder says so
                execute.stopped(one, out / side, in_flight=True)
                raise
            medians = " ".join(f"{name}={statistics.median(result.metrics[name]):.4g}"
                               for name in defaults.ab_gates() if result.metrics.get(name))
            print(f"{one.id}: {result.verdict.value} ({result.duration_s:.0f}s) {medians} {result.reason[:200]}",
                  flush=True)
    return 0


# --- analysis (pure: result.json files in, numbers out) ------------------------------------------------------
def decision_rate(gate: dict, name: str, pool_a: list[list[float]], pool_b: list[list[float]] | None, k: int,
                  rng: random.Random, draws: int = DRAWS, shift: float = 0.0) -> int | None:
    """How many of `draws` resampled decisions (k runs a side, drawn without replacement within a side: a run twice
    in one side would be a tie no real A/B has) fail `gate`. `pool_b` None: A against other A runs, two disjoint
    draws of k (None when the pool holds fewer than 2k runs: draws sharing runs would understate it), the second
    side's samples made `shift` worse (0: false alarms; 0.05: a 5% regression on the measured noise)."""
    if pool_b is None and 2 * k > len(pool_a):
        return None
    failed = 0
    worse = 1 - shift if "max_drop" in gate else 1 + shift
    for _ in range(draws):
        if pool_b is None:
            both = rng.sample(pool_a, 2 * k)
            a, b = both[:k], [[x * worse for x in run] for run in both[k:]]
        else:
            a, b = rng.sample(pool_a, k), rng.sample(pool_b, k)
        per_a = metrics.per_run_values([{name: s} for s in a], {name: gate})
        per_b = metrics.per_run_values([{name: s} for s in b], {name: gate})
        failed += any(g.status == metrics.GateStatus.FAIL for g in metrics.evaluate({name: gate}, per_b, per_a))
    return failed


def steady_spread(runs: list[ScenarioResult], name: str) -> dict[int, float]:
    """CV across runs of the per-run median using the first n steady samples, n = 1..all."""
    series = [r.metrics.get(name, []) for r in runs]
    longest = min((len(s) for s in series), default=0)
    out = {}
    for n in range(1, longest + 1):
        found = stats.cv([statistics.median(s[:n]) for s in series])
        if found is not None:
            out[n] = round(found, 4)
    return out


def steps_needed(pool: list[list[float]], target_cv: float = TARGET_CV) -> dict:
    """Variance components of the per-run mean: `step_cv` (step to step inside a run) and `run_cv` (run to run beyond
    what the steps explain, e.g. one engine instance faster than the next); the per-run CV they project at N steady
    steps, sqrt(run_cv^2 + step_cv^2 / N), and the steps that bring it to `target_cv` (None: the run-level part alone
    is above it, so only more runs or a quieter host help). Means stand in for the gates' medians."""
    runs = [s for s in pool if len(s) >= 2]
    means = [statistics.fmean(s) for s in runs]
    if len(means) < 2 or not statistics.fmean(means):
        return {}
    centre = statistics.fmean(means)
    within = statistics.fmean([statistics.variance(s) for s in runs]) / centre**2
    per_run_n = statistics.fmean([len(s) for s in runs])
    between = max(0.0, statistics.variance(means) / centre**2 - within / per_run_n)
    slack = target_cv**2 - between
    return {"step_cv": round(within**0.5, 4), "run_cv": round(between**0.5, 4),
            "projected_cv": {n: round((between + within / n) ** 0.5, 4) for n in PROJECTED_STEPS},
            "target_cv": target_cv, "steps_for_target": math.ceil(within / slack) if slack > 0 else None}


def per_run_cv(pool: list[list[float]]) -> float | None:
    """CV of the per-run medians."""
    found = stats.cv([statistics.median(s) for s in pool])
    return None if found is None else round(found, 4)


def runs_needed(cv: float | None, effect: float = SHIFT, alpha: float = metrics.DEFAULT_P,
                power: float = POWER) -> int | None:
    """Runs a side at which a one-sided test at `alpha` detects a change of `effect` with `power`, at per-run CV
    `cv`: the normal approximation 2 ((z_alpha + z_power) cv / effect)^2, times pi/3 for Mann-Whitney against a t test
    on normal data, and never below the fewest runs at which Mann-Whitney can reach p < alpha at all. A lower bound:
    the gate also needs the median change past its threshold."""
    if not cv:
        return None
    z = statistics.NormalDist().inv_cdf
    n = 2 * ((z(1 - alpha) + z(power)) * cv / effect) ** 2 * math.pi / 3
    return max(math.ceil(n), stats.runs_for_significance(alpha))


def run_order(result: ScenarioResult) -> tuple:
    """When `pools` started the run: its id's HHMMSS stamp and pair number (A before B within a pair)."""
    found = RUN_ID.search(result.scenario_id)
    return (found.group(2), int(found.group(3)), found.group(1)) if found else (result.scenario_id,)


def chronological(sides: dict[str, list[ScenarioResult]]) -> list[tuple[str, ScenarioResult]]:
    """(side, run) of both pools in the order the runs were made."""
    return sorted(((side, r) for side, runs in sides.items() for r in runs), key=lambda made: run_order(made[1]))


def drift(sides: dict[str, list[ScenarioResult]], name: str) -> dict | None:
    """Spearman's rank correlation of each side's per-run medians with the order the runs were made in (A and B
    alternate, so both see the same host): a host that drifts while the pools grow shows on both sides."""
    from scipy.stats import spearmanr
    made = chronological(sides)
    out = {}
    for side in sides:
        got = [(i, statistics.median(r.metrics[name])) for i, (s, r) in enumerate(made)
               if s == side and r.metrics.get(name)]
        if len(got) >= 3:
            rho, p = spearmanr(*zip(*got))
            out[side] = {"rho": round(float(rho), 3), "p": round(float(p), 4)}
    return out or None


def with_threshold(gate: dict, limit: str) -> dict:
    """The same relative gate with another max_drop / max_rise."""
    key = "max_drop" if "max_drop" in gate else "max_rise"
    return {**{k: v for k, v in gate.items() if k not in ("max_drop", "max_rise")}, key: limit}


def centre_change(pool_a: list[list[float]], pool_b: list[list[float]]) -> float:
    med = [statistics.median([statistics.median(s) for s in p]) for p in (pool_a, pool_b)]
    return med[1] / med[0] - 1 if med[0] else float("nan")


def change_interval(pool_a: list[list[float]], pool_b: list[list[float]], rng: random.Random,
                    draws: int = DRAWS) -> tuple[float, float]:
    """90% bootstrap interval of `centre_change` (runs drawn with replacement within each side): how far the pools
    pin B's change down (on a noisy host a median of 7 runs can put a slowdown on the wrong side of zero)."""
    found = sorted(centre_change(rng.choices(pool_a, k=len(pool_a)), rng.choices(pool_b, k=len(pool_b)))
                   for _ in range(draws))
    return round(found[int(0.05 * draws)], 4), round(found[int(0.95 * draws) - 1], 4)


def analyze(a_runs: list[ScenarioResult], b_runs: list[ScenarioResult], effect: str, device: str, sglang: str,
            model: str, seed: int = 0, draws: int = DRAWS) -> tuple[list[dict], dict]:
    """power.json rows (one per metric x runs per side, default gates) and the rest of the figures."""
    rng = random.Random(seed)
    gates = defaults.ab_gates()
    rows, extra = [], {"measured_change": {}, "change_interval": {}, "stricter": [], "shifted": [], "per_run_cv": {},
                       "steady_steps_cv": {}, "steps_needed": {}, "runs_needed": {}, "drift": {}}
    for name, gate in gates.items():
        pool_a = [r.metrics[name] for r in a_runs if r.metrics.get(name)]
        pool_b = [r.metrics[name] for r in b_runs if r.metrics.get(name)]
        if len(pool_a) < 2 or len(pool_b) < 2:
            continue
        extra["measured_change"][name] = round(centre_change(pool_a, pool_b), 4)
        extra["change_interval"][name] = change_interval(pool_a, pool_b, random.Random(seed), draws)
        extra["per_run_cv"][name] = {"a": per_run_cv(pool_a), "b": per_run_cv(pool_b)}
        extra["steady_steps_cv"][name] = steady_spread(a_runs, name)
        extra["steps_needed"][name] = steps_needed(pool_a)
        extra["runs_needed"][name] = runs_needed(extra["per_run_cv"][name]["a"])
        extra["drift"][name] = drift({"a": a_runs, "b": b_runs}, name)
        for k in [k for k in RUNS_PER_SIDE if k <= min(len(pool_a), len(pool_b))]:
            rows.append({"metric": name, "effect": effect, "runs_per_side": k, "gate": gate, "decisions": draws,
                         "detected": decision_rate(gate, name, pool_a, pool_b, k, rng, draws),
                         "unchanged_decisions": draws,
                         "false_alarms": decision_rate(gate, name, pool_a, None, k, rng, draws),
                         "measured_change": extra["measured_change"][name], "device": device, "sglang": sglang,
                         "model": model, "pool_a": len(pool_a), "pool_b": len(pool_b)})
            default = gate.get("max_drop") or gate.get("max_rise")
            for limit in (default, *STRICTER):
                tried = with_threshold(gate, limit)
                if limit != default:
                    extra["stricter"].append({"metric": name, "runs_per_side": k, "threshold": limit,
                                              "detected": decision_rate(tried, name, pool_a, pool_b, k, rng, draws),
                                              "false_alarms": decision_rate(tried, name, pool_a, None, k, rng, draws),
                                              "decisions": draws})
                extra["shifted"].append({"metric": name, "runs_per_side": k, "threshold": limit, "shift": SHIFT,
                                         "detected": decision_rate(tried, name, pool_a, None, k, rng, draws, SHIFT),
                                         "decisions": draws})
    extra["timings"] = {side: _timing_summary(runs) for side, runs in (("a", a_runs), ("b", b_runs))}
    return rows, extra


def _timing_summary(runs: list[ScenarioResult]) -> dict[str, dict[str, float]]:
    out = {}
    for key in ("engine_start_s", "first_step_s", "total_s"):
        vals = [r.timings[key] for r in runs if key in (r.timings or {})]
        if vals:
            out[key] = {"median": round(statistics.median(vals), 1), "min": round(min(vals), 1),
                        "max": round(max(vals), 1)}
    return out


def draw_run_order(sides: dict[str, list[ScenarioResult]], out: Path) -> list[Path]:
    """One PNG per gated metric: each run's steady samples (median, whiskers min..max) in the order the runs were
    made, A and B as two series. Drift of the host shows as both series moving together."""
    made = chronological(sides)
    labels = []
    for side, r in made:
        order = run_order(r)
        labels.append(f"{order[0][:2]}:{order[0][2:4]}:{order[0][4:]} {side.upper()}" if len(order) == 3
                      else r.scenario_id)
    drawn = []
    for name in defaults.ab_gates():
        series = {side.upper(): [r.metrics.get(name, []) if s == side else [] for s, r in made] for side in sides}
        if any(any(points) for points in series.values()):
            drawn.append(plots.metric_series(labels, series, out / f"run-order-{name}.png",
                                             f"{name} per run, in the order made (A and B alternate)"))
    return [p for p in drawn if p]


def _share(count: int | None, of: int) -> str:
    return "n/a (fewer than 2k unchanged runs)" if count is None else f"{count / of:.1%}"


def render(rows: list[dict], extra: dict, pools: dict, meta: dict) -> str:
    steps = f", {pools['steps']} steps a run" if "steps" in pools else ""
    lines = [f"# Power of the default A/B gates: {pools['scenario']}", "",
             (f"A: unchanged. B: engine args `{pools.get('b_args')}`, injected `{pools.get('b_inject')}`. "
              f"Pools: {meta['a']} A runs, {meta['b']} B runs (runs left out, failed or without a result: "
              f"{meta['failed']}){steps}. Device "
              f"{meta['device']}, sglang {meta['sglang']}. {DRAWS} resampled decisions per cell; a cell of k runs "
              "a side needs k runs in each pool."), "",
             "## Default gates (defaults.yaml `ab:`)", ""]
    table = [[r["metric"], "{:+.1%} ({:+.1%} to {:+.1%})".format(r["measured_change"],
                                                                  *extra["change_interval"][r["metric"]]),
              json.dumps(r["gate"]), r["runs_per_side"],
              f"{r['detected'] / r['decisions']:.1%}", _share(r["false_alarms"], r["unchanged_decisions"])]
             for r in rows]
    lines.append(tabulate(table, ["metric", "B vs A (median; 90% interval)", "gate", "runs/side", "detected", "false alarms"],
                          tablefmt="github"))
    lines += ["", "## Stricter thresholds (same pools)", ""]
    table = [[s["metric"], s["threshold"], s["runs_per_side"], f"{s['detected'] / s['decisions']:.1%}",
              _share(s["false_alarms"], s["decisions"])] for s in extra["stricter"]]
    lines.append(tabulate(table, ["metric", "threshold", "runs/side", "detected", "false alarms"], tablefmt="github"))
    lines += ["", f"## A {SHIFT:.0%} regression laid on the A pool's own runs (disjoint halves; what it would take)",
              ""]
    table = [[s["metric"], s["threshold"], s["runs_per_side"], _share(s["detected"], s["decisions"])]
             for s in extra["shifted"]]
    lines.append(tabulate(table, ["metric", "threshold", "runs/side", "detected"], tablefmt="github"))
    lines += ["", "## Per-run CV of the gated metrics (CV of the per-run medians)", ""]
    lines.append(tabulate([[m, v["a"], v["b"]] for m, v in extra["per_run_cv"].items()], ["metric", "A", "B"],
                          tablefmt="github"))
    lines += ["", (f"## Runs a side for {POWER:.0%} detection of a {SHIFT:.0%} change at the A pool's per-run CV "
                   f"(one-sided, p < {metrics.DEFAULT_P}; normal approximation, a lower bound)"), ""]
    lines.append(tabulate([[m, extra["per_run_cv"][m]["a"], n] for m, n in extra["runs_needed"].items()],
                          ["metric", "per-run CV (A)", "runs a side"], tablefmt="github"))
    lines += ["", ("## Drift of the host while the pools grew (Spearman rho of per-run medians against run order; "
                   "figures `run-order-<metric>.png`)"), ""]
    lines.append(tabulate([[m, *[f"{d[side]['rho']:+.2f} (p {d[side]['p']:.2g})" if d and side in d else "n/a"
                                 for side in ("a", "b")]] for m, d in extra["drift"].items()],
                          ["metric", "A", "B"], tablefmt="github"))
    lines += ["", "## CV of the per-run median by steady steps used (A pool)", ""]
    longest = max((len(v) for v in extra["steady_steps_cv"].values()), default=0)
    lines.append(tabulate([[m, *v.values()] for m, v in extra["steady_steps_cv"].items()],
                          ["metric \\ steady steps", *range(1, longest + 1)], tablefmt="github"))
    lines += ["", (f"## Steady steps for a per-run CV of {TARGET_CV:.0%} (A pool: variance of the per-run mean split "
                   "into step-to-step and run-to-run)"), ""]
    table = [[m, v["step_cv"], v["run_cv"], *v["projected_cv"].values(),
              v["steps_for_target"] if v["steps_for_target"] is not None else "not by steps (run-to-run part)"]
             for m, v in extra["steps_needed"].items() if v]
    lines.append(tabulate(table, ["metric", "step CV", "run CV", *[f"CV @{n}" for n in PROJECTED_STEPS],
                                  "steps needed"], tablefmt="github"))
    lines += ["", "## Time per run (s)", ""]
    lines.append(tabulate([[side, key, v["median"], v["min"], v["max"]] for side, t in extra["timings"].items()
                           for key, v in t.items()], ["side", "phase", "median", "min", "max"], tablefmt="github"))
    return "\n".join(lines) + "\n"


def run_analyze(ns: argparse.Namespace) -> int:
    pools_dir = Path(ns.pools)
    pools = json.loads((pools_dir / "pools.json").read_text())
    # a run that failed, was interrupted or left no result (killed before it wrote one) is reported, never pooled
    all_runs = {side: [ScenarioResult.load(d / "result.json") if (d / "result.json").is_file() else None
                       for d in sorted((pools_dir / side).glob("*/"))] for side in ("a", "b")}
    failed = {side: sum(r is None or r.verdict != Verdict.PASS for r in runs) for side, runs in all_runs.items()}
    a_runs, b_runs = ([r for r in all_runs[side] if r and r.verdict == Verdict.PASS] for side in ("a", "b"))
    props = a_runs[0].properties if a_runs else {}
    effect = " + ".join(filter(None, [f"args:{pools['b_args']}" if pools.get("b_args") else "",
                                      f"inject:{pools['b_inject']}" if pools.get("b_inject") else ""]))
    meta = {"a": len(a_runs), "b": len(b_runs), "failed": failed, "device": ns.device or props.get("version.gpu", "?"),
            "sglang": props.get("version.sglang", "?")}
    rows, extra = analyze(a_runs, b_runs, effect, meta["device"], meta["sglang"],
                          props.get("axis.model") or pools["scenario"].split(".")[0])
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "power.json").write_text(json.dumps(rows, indent=1) + "\n")
    (out / "power-extra.json").write_text(json.dumps(extra, indent=1) + "\n")
    (out / "power.md").write_text(render(rows, extra, pools, meta))
    draw_run_order({"a": a_runs, "b": b_runs}, out)
    print((out / "power.md").read_text())
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="gpu_power.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="verb", required=True)
    pools = sub.add_parser("pools")
    pools.add_argument("--matrix", required=True)
    pools.add_argument("-k", required=True)
    pools.add_argument("--pairs", type=int, required=True, help="rounds; each runs one scenario per side in --sides")
    pools.add_argument("--sides", choices=("ab", "a", "b"), default="ab",
                       help="which pools a round grows (default ab: A then B); a or b evens out pools that differ")
    pools.add_argument("--sglang", help="run against this sglang version (default: the matrix's)")
    pools.add_argument("--steps", type=int, help="steps a run (default: the scenario's); its warm-up steps stay")
    pools.add_argument("--b-args")
    pools.add_argument("--b-inject")
    pools.add_argument("--ray-address")
    pools.add_argument("--out", required=True)
    an = sub.add_parser("analyze")
    an.add_argument("pools")
    an.add_argument("--out", required=True)
    an.add_argument("--device")
    ns = p.parse_args(argv)
    interrupt_on_sigterm()
    try:
        return run_pools(ns) if ns.verb == "pools" else run_analyze(ns)
    except (ColobenchError, OSError, ValueError) as exc:
        print(f"gpu_power: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gpu_power: interrupted; the runs made so far are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
