"""colobench report: render a finished (or interrupted) run again: summary.md, junit.xml, the table on screen."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.judge import stats
from harness.matrix import defaults
from harness.report import junit, plots, summary

NAME = "report"
HELP = "render a finished run again (summary.md and junit.xml from its result files)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="reports/runs/<run-id>")
    p.add_argument("--no-write", action="store_true", help="print only; do not rewrite summary.md and junit.xml")
    p.add_argument("--figures", action="store_true", help="also write one PNG per key metric (engine startup, tok/s, sync)")


def main(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    results = summary.load_run(run_dir)
    text = summary.summary_markdown(results, f"colobench run {run_dir.name}")
    if not args.no_write:
        summary.write_summary(results, run_dir / "summary.md", f"colobench run {run_dir.name}")
        junit.write(results, run_dir / "junit.xml")
    if args.figures:
        labels = [r.scenario_id for r in results]
        for metric in defaults.key_metrics():
            points = [stats.finite(r.metrics.get(metric, [])) for r in results]
            if any(points):
                plots.metric_series(labels, {metric: points}, run_dir / f"{metric}.png", f"{run_dir.name}: {metric}", metric)
    print(text)
    return 0
