"""The power of colobench's A/B gates on a GPU (issue 29): pools of real runs in ABBA order, then resampled decisions.

`pools`: runs one scenario as A (unchanged) and B (a known change: `--b-inject slowdown:0.05` lengthens rollout, train
step and weight sync by 5% on the host's real noise; `--b-args` changes engine arguments), one run at a time in ABBA
order (A B B A A B ...; the order goes on across calls), each a full scenario (its own engine, trainer, syncs,
verdict and host probe), into OUT/a/ and OUT/b/. A folder never mixes scenarios, B sides or step counts.
`analyze`: power_stats.py's numbers (decisions on 3 and 5 pairs drawn from the pools, judged as `--ab` judges:
detection of B, false alarms and an exact 5% on the unchanged neighbour pairs, the parametric check; per-run CV,
pairs' spread, pairs needed, drift, time per run; the host's probe, GPU-bound fraction and copy bandwidth), written
as power.json, power-extra.json, power.md and run-order-<metric>.png.

Usage (GPU host; tools/gpu-host.sh; the repository on PYTHONPATH; tools/gpu-power-pools.sh wraps `pools`):
  python3 benchmarks/gpu_power.py pools --matrix matrix/perf.yaml -k "llama3.1-8b-l10 and not mcore" --runs 4 \
      --b-inject slowdown:0.05 --out /tmp/out/pools
  python3 benchmarks/gpu_power.py analyze /tmp/out/pools --out reports/gpu/DATE-power
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

import power_stats
from tabulate import tabulate

from harness.cli import interrupt_on_sigterm
from harness.errors import ColobenchError
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
    problem = schema.CHECKS["steps"](steps)
    warmup = s.settings.warmup_steps or 0
    if problem or warmup >= steps:
        raise ColobenchError(f"--steps: {problem or f'{steps} leaves no steady step after {warmup} warm-up'}")
    return dataclasses.replace(s, settings=s.settings.replace(steps=steps))


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
    recipe = {
        "scenario": a.id,
        "b_args": ns.b_args,
        "b_inject": ns.b_inject,
        "steps": a.settings.steps,
        "order": "ABBA",
    }
    made = out / "pools.json"
    held = json.loads(made.read_text()) if made.is_file() else recipe
    if held != recipe:
        print(
            f"gpu_power: {made} holds pools of {json.dumps(held)}; this call's is {json.dumps(recipe)} "
            "(one folder, one A/B pair)",
            file=sys.stderr,
        )
        return 2
    made.write_text(json.dumps(recipe))
    options = execute.Options(ray_address=ns.ray_address, infra_retries=0)
    sides = {"a": a, "b": b}
    for _ in range(ns.runs):
        number = sum(1 for side in "ab" for d in (out / side).glob("*/") if d.is_dir())
        side = ab.abba_side(number)
        one = dataclasses.replace(sides[side], id=f"{a.id}.{side}-{number:03d}")
        try:
            result = execute.run_scenario(one, out / side, options)
        except KeyboardInterrupt:  # the call's deadline (SIGTERM) or Ctrl-C: the folder says so
            execute.stopped(one, out / side, in_flight=True)
            raise
        medians = " ".join(
            f"{name}={statistics.median(result.metrics[name]):.4g}"
            for name in (*defaults.ab_gates(), "engine_gpu_busy")
            if result.metrics.get(name)
        )
        print(
            f"{one.id}: {result.verdict.value} ({result.duration_s:.0f}s) probe_cv="
            f"{result.properties.get('host.probe_cv')} {medians} {result.reason[:200]}",
            flush=True,
        )
    return 0


def draw_run_order(made: list[power_stats.Run], out: Path) -> list[Path]:
    """One PNG per gated metric: each run's steady samples (median, whiskers min..max) in the order the runs were
    made, A and B as two series. Drift of the host shows as both series moving together."""
    labels = [f"{run.number} {run.side.upper()}" for run in made]
    drawn = []
    for name in defaults.ab_gates():
        series = {
            side.upper(): [run.result.metrics.get(name, []) if run.side == side else [] for run in made]
            for side in "ab"
        }
        if any(any(points) for points in series.values()):
            drawn.append(
                plots.metric_series(
                    labels, series, out / f"run-order-{name}.png", f"{name} per run, in the order made (ABBA)"
                )
            )
    return [p for p in drawn if p]


def _share(value: float | None) -> str:
    return "n/a (too few pairs)" if value is None else f"{value:.1%}"


def render(rows: list[dict], extra: dict, pools: dict, meta: dict) -> str:
    host = extra["host"]
    probe = host["probe_cv"] or {}
    lines = [
        f"# Power of the default A/B gates: {pools['scenario']}",
        "",
        (
            f"A: unchanged. B: `{meta['b']}`. Runs in ABBA order on one host, {pools.get('steps', '?')} steps a run: "
            f"{meta['a']} A + {meta['b_runs']} B judged (left out, failed or without a result: {meta['failed']}), "
            f"{extra['pairs']} A/B pairs and {extra['unchanged_pairs']} unchanged pairs of neighbours. Device "
            f"{meta['device']}, sglang {meta['sglang']}. {rows[0]['decisions'] if rows else 0} decisions a cell, "
            "k pairs drawn "
            "without replacement, each judged as `colobench run --ab` judges (paired, the runs' host probes)."
        ),
        "",
        (
            f"Host: CPU probe CV median {probe.get('median', 'n/a')}, max {probe.get('max', 'n/a')}; engine busy "
            f"{host['engine_gpu_busy']} of the rollout (GPU-bound fraction, A runs' median); weight sync "
            f"{host['weight_sync_gbps']} GB/s = {host['weight_sync_copy_fraction']} of a plain device copy "
            f"({host['device_copy_gbps']} GB/s)."
        ),
        "",
        "## Default gates (defaults.yaml `ab:`)",
        "",
    ]
    table = [
        [
            r["metric"],
            r["runs_per_side"],
            json.dumps(r["gate"]),
            _share(r["detected"]),
            _share(r["inconclusive"]),
            _share(r["false_alarms"]),
            _share(r["exact_shift_detected"]),
            _share(r["parametric_detected"]),
            _share(r["parametric_false_alarms"]),
            r["distinct_draws"]["ab"],
            r["distinct_draws"]["unchanged"],
        ]
        for r in rows
    ]
    lines.append(
        tabulate(
            table,
            [
                "metric",
                "pairs",
                "gate",
                "B detected",
                "B inconclusive",
                "false alarms",
                f"exact {power_stats.SHIFT:.0%} detected",
                f"parametric {power_stats.SHIFT:.0%}",
                "parametric false",
                "distinct A/B draws",
                "distinct unchanged draws",
            ],
            tablefmt="github",
        )
    )
    lines += ["", "## Noise and B's change", ""]
    table = [
        [
            m,
            "{:+.1%} ({:+.1%} to {:+.1%})".format(*v["b_vs_a"]),
            f"{v['per_run_cv']:.2%}",
            f"{v['pair_spread']:.2%}",
            v["pairs_needed"],
            " ".join(f"{s.upper()} {d['rho']:+.2f} (p {d['p']:.2g})" for s, d in v["drift"].items()) or "n/a",
        ]
        for m, v in extra["metrics"].items()
    ]
    lines.append(
        tabulate(
            table,
            [
                "metric",
                "B vs A (90% interval)",
                "per-run CV (A)",
                "pairs' spread (unchanged)",
                f"pairs for {power_stats.POWER:.0%} at {power_stats.SHIFT:.0%}",
                "drift (Spearman rho vs order)",
            ],
            tablefmt="github",
        )
    )
    lines += ["", "## Time per run (s)", ""]
    lines.append(
        tabulate(
            [
                [side, key, v["median"], v["min"], v["max"]]
                for side, t in extra["timings"].items()
                for key, v in t.items()
            ],
            ["side", "phase", "median", "min", "max"],
            tablefmt="github",
        )
    )
    return "\n".join(lines) + "\n"


def run_analyze(ns: argparse.Namespace) -> int:
    pools_dir = Path(ns.pools)
    pools = json.loads((pools_dir / "pools.json").read_text())
    # a run that failed, was interrupted or left no result (killed before it wrote one) is reported, never pooled
    all_runs = {
        side: [
            ScenarioResult.load(d / "result.json") if (d / "result.json").is_file() else None
            for d in sorted((pools_dir / side).glob("*/"))
        ]
        for side in ("a", "b")
    }
    failed = {side: sum(r is None or r.verdict != Verdict.PASS for r in runs) for side, runs in all_runs.items()}
    made = power_stats.sequence(
        {side: [r for r in runs if r and r.verdict == Verdict.PASS] for side, runs in all_runs.items()}
    )
    props = made[0].result.properties if made else {}
    b = " + ".join(
        filter(
            None,
            [
                f"args:{pools['b_args']}" if pools.get("b_args") else "",
                f"inject:{pools['b_inject']}" if pools.get("b_inject") else "",
            ],
        )
    )
    meta = {
        "a": sum(r.side == "a" for r in made),
        "b_runs": sum(r.side == "b" for r in made),
        "b": b,
        "failed": failed,
        "device": ns.device or props.get("version.gpu", "?"),
        "sglang": props.get("version.sglang", "?"),
    }
    rows, extra = power_stats.analyze(
        made,
        b,
        meta["device"],
        meta["sglang"],
        props.get("axis.model") or pools["scenario"].split(".")[0],
        draws=ns.draws,
    )
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "power.json").write_text(json.dumps(rows, indent=1) + "\n")
    (out / "power-extra.json").write_text(json.dumps(extra, indent=1) + "\n")
    (out / "power.md").write_text(render(rows, extra, pools, meta))
    draw_run_order(made, out)
    print((out / "power.md").read_text())
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="gpu_power.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="verb", required=True)
    pools = sub.add_parser("pools")
    pools.add_argument("--matrix", required=True)
    pools.add_argument("-k", required=True)
    pools.add_argument(
        "--runs",
        type=int,
        required=True,
        help="runs to add, each on the side the ABBA order gives next (it goes on across calls)",
    )
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
    an.add_argument("--draws", type=int, default=power_stats.DRAWS, help="decisions a cell")
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
