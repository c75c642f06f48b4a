"""colobench report: render a finished (or interrupted) run again, or merge shard / worker run folders into one."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import ColobenchError
from harness.judge import stats
from harness.matrix import defaults
from harness.report import junit, plots, summary

NAME = "report"
HELP = "render a finished run again (summary.md and junit.xml from its result files); --merge several into one"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="reports/runs/<run-id> (several with --merge)")
    p.add_argument("--merge", action="store_true", help="merge the run folders (CI shards, xdist workers) into --out")
    p.add_argument("--out", metavar="DIR", help="with --merge: the merged run folder (default: reports/runs/merged)")
    p.add_argument("--no-write", action="store_true", help="print only; do not rewrite summary.md and junit.xml")
    p.add_argument(
        "--figures", action="store_true", help="also write one PNG per key metric (engine startup, tok/s, sync)"
    )


def main(args: argparse.Namespace) -> int:
    dirs = [Path(d) for d in args.run_dirs]
    if args.merge:
        out = Path(args.out or "reports/runs/merged")
        if out.resolve() in {d.resolve() for d in dirs}:
            raise ColobenchError(f"--out {out}: is one of the folders being merged; pick another")
        results = summary.merge(dirs, out, f"colobench run {out.name} (merged from {len(dirs)})")
        run_dir = out
    elif len(dirs) > 1:
        raise ColobenchError("report: several run folders need --merge (and --out)")
    else:
        run_dir = dirs[0]
        results = summary.load_run(run_dir)
        if not args.no_write:
            summary.write_summary(results, run_dir / "summary.md", f"colobench run {run_dir.name}")
            junit.write(results, run_dir / "junit.xml")
    if args.figures:
        labels = [r.scenario_id for r in results]
        for metric in defaults.key_metrics():
            points = [stats.finite(r.metrics.get(metric, [])) for r in results]
            if any(points):
                plots.metric_series(
                    labels, {metric: points}, run_dir / f"{metric}.png", f"{run_dir.name}: {metric}", metric
                )
    print(summary.summary_markdown(results, f"colobench run {run_dir.name}"))
    return 0
