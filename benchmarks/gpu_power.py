"""The power of colobench's default A/B gates on a GPU (issue 20.5): pools of real runs, then resampled decisions.

`pools`: runs one scenario as A (unchanged) and B (a real change: engine arguments, e.g. a smaller
`chunked_prefill_size`, and/or an injected fault, e.g. `sync_slowdown:0.05`) alternately, A B A B ..., each run a
full scenario (its own engine, trainer, syncs and verdict), into OUT/a/ and OUT/b/ (`--sides a` or `b`: one pool
only). Calls append: a pool can grow over several device calls, never with another scenario, B or step count.
`analyze`: the numbers power_stats.py draws from the pools (resampled decisions of each default `ab:` gate at 3, 5
and 8 runs a side: detection of B, false alarms on disjoint unchanged runs, an exact 5% laid on A's own runs, stricter
thresholds; B's change with a 90% interval; per-run CV, its step/run split and the steps and runs a 5% change needs;
drift against run order; time per run), written as power.json, power-extra.json, power.md and
run-order-<metric>.png.

Usage (GPU host; tools/gpu-host.sh; the repository on PYTHONPATH):
  python3 benchmarks/gpu_power.py pools --matrix matrix/perf.yaml -k "qwen3-8b-shape and not mcore" --pairs 5 \
      --steps 8 --b-args chunked_prefill_size=1024 --b-inject sync_slowdown:0.05 --out /tmp/out/pools
  python3 benchmarks/gpu_power.py analyze /tmp/out/pools --out reports/gpu/DATE-power
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import power_stats
from tabulate import tabulate

from harness.cli import interrupt_on_sigterm
from harness.errors import ColobenchError
from harness.judge import metrics
from harness.judge.result import ScenarioResult
from harness.judge.verdict import Verdict
from harness.matrix import defaults, models, scenario, schema
from harness.report import plots
from harness.run import execute
from harness.study import ab


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


def draw_run_order(sides: dict[str, list[ScenarioResult]], out: Path) -> list[Path]:
    """One PNG per gated metric: each run's steady samples (median, whiskers min..max) in the order the runs were
    made, A and B as two series. Drift of the host shows as both series moving together."""
    made = power_stats.chronological(sides)
    labels = []
    for side, r in made:
        order = power_stats.run_order(r)
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
              f"{meta['device']}, sglang {meta['sglang']}. {power_stats.DRAWS} resampled decisions per cell; a cell "
              "of k runs a side needs k runs in each pool."), "",
             "## Default gates (defaults.yaml `ab:`)", ""]
    table = [[r["metric"], "{:+.1%} ({:+.1%} to {:+.1%})".format(r["measured_change"],
                                                                  *extra["change_interval"][r["metric"]]),
              json.dumps(r["gate"]), r["runs_per_side"],
              f"{r['detected'] / r['decisions']:.1%}", _share(r["false_alarms"], r["unchanged_decisions"])]
             for r in rows]
    lines.append(tabulate(table, ["metric", "B vs A (median; 90% interval)", "gate", "runs/side", "detected",
                                  "false alarms"], tablefmt="github"))
    lines += ["", "## Stricter thresholds (same pools)", ""]
    table = [[s["metric"], s["threshold"], s["runs_per_side"], f"{s['detected'] / s['decisions']:.1%}",
              _share(s["false_alarms"], s["decisions"])] for s in extra["stricter"]]
    lines.append(tabulate(table, ["metric", "threshold", "runs/side", "detected", "false alarms"], tablefmt="github"))
    lines += ["", (f"## A {power_stats.SHIFT:.0%} regression laid on the A pool's own runs (disjoint halves; what it "
                   "would take)"), ""]
    table = [[s["metric"], s["threshold"], s["runs_per_side"], _share(s["detected"], s["decisions"])]
             for s in extra["shifted"]]
    lines.append(tabulate(table, ["metric", "threshold", "runs/side", "detected"], tablefmt="github"))
    lines += ["", "## Per-run CV of the gated metrics (CV of the per-run medians)", ""]
    lines.append(tabulate([[m, v["a"], v["b"]] for m, v in extra["per_run_cv"].items()], ["metric", "A", "B"],
                          tablefmt="github"))
    lines += ["", (f"## Runs a side for {power_stats.POWER:.0%} detection of a {power_stats.SHIFT:.0%} change at the "
                   f"A pool's per-run CV (one-sided, p < {metrics.DEFAULT_P}; normal approximation, a lower "
                   "bound)"), ""]
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
    lines += ["", (f"## Steady steps for a per-run CV of {power_stats.TARGET_CV:.0%} (A pool: variance of the per-run "
                   "mean split into step-to-step and run-to-run)"), ""]
    table = [[m, v["step_cv"], v["run_cv"], *v["projected_cv"].values(),
              v["steps_for_target"] if v["steps_for_target"] is not None else "not by steps (run-to-run part)"]
             for m, v in extra["steps_needed"].items() if v]
    lines.append(tabulate(table, ["metric", "step CV", "run CV", *[f"CV @{n}" for n in power_stats.PROJECTED_STEPS],
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
    rows, extra = power_stats.analyze(a_runs, b_runs, effect, meta["device"], meta["sglang"],
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
