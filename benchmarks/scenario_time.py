"""Time per scenario (issue 20.6): engine start, time to the first finished step and total, from finished run folders.

Usage: python3 benchmarks/scenario_time.py RUN_DIR [RUN_DIR ...] --out DIR   (writes scenario-time.md and .png)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tabulate import tabulate

from harness.judge.result import ScenarioResult
from harness.report import plots

PHASES = (("engine_start_s", "engine start"), ("first_step_s", "first step done"), ("total_s", "total"))


def collect(run_dirs: list[Path]) -> list[ScenarioResult]:
    return [ScenarioResult.load(p) for d in run_dirs for p in sorted(d.glob("*/result.json"))]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="scenario_time.py", description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out", required=True, type=Path)
    ns = p.parse_args(argv)
    results = [r for r in collect(ns.runs) if r.timings]
    rows = [
        [r.scenario_id, r.verdict.value, *[round(r.timings[k], 1) if k in r.timings else "" for k, _ in PHASES]]
        for r in results
    ]
    ns.out.mkdir(parents=True, exist_ok=True)
    table = tabulate(rows, ["scenario", "verdict", *[label + " (s)" for _, label in PHASES]], tablefmt="github")
    (ns.out / "scenario-time.md").write_text(f"# Time per scenario (seconds from the runner's start)\n\n{table}\n")
    plots.metric_series(
        [r.scenario_id for r in results],
        {label: [[r.timings[k]] if k in r.timings else [] for r in results] for k, label in PHASES},
        ns.out / "scenario-time.png",
        "time per scenario",
        "s",
    )
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
