"""colobench run: run the selected scenarios; junit.xml and summary.md written; the exit code says the verdict."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from harness.cli import common
from harness.errors import ColobenchError
from harness.judge.verdict import BISECT_EXIT_CODES, EXIT_CODES, EXIT_HELP, worst
from harness.matrix.schema import fault_from_spec
from harness.report import summary
from harness.run import session
from harness.study import ab

NAME = "run"
HELP = (
    f"run scenarios (default: the CPU smoke matrix on the reference engine); writes junit.xml and summary.md; "
    f"{EXIT_HELP}"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    common.add_matrix(p)
    common.add_run(p)
    p.add_argument("--run-id", help="name of the run folder under reports/runs (default: time + random)")
    p.add_argument("--repeat", type=common.positive_int, metavar="K", help="runs per scenario (overrides the matrix)")
    p.add_argument(
        "--ab",
        metavar="A,B",
        help="A/B two variants on the same machine in ABBA order, judged pair by "
        "pair (with --repeat): sglang versions, none, args:KEY=VALUE[+KEY=VALUE] (engine arguments) or "
        "inject:KIND:VALUE",
    )
    p.add_argument("--bisect-exit-codes", action="store_true", help="exit 0 good, 1 bad, 125 skip (for git bisect run)")
    p.add_argument("--wheelhouse", metavar="DIR", help="offline wheels for creating version environments")
    p.add_argument(
        "--system-site",
        action="store_true",
        help="version environments see the system's packages (a GPU "
        "host's torch): the same environment `colobench env create V --system-site` built",
    )
    p.add_argument(
        "--inject",
        metavar="KIND[:VALUE]",
        help="gate self-test: inject a fault without changing scenario ids, e.g. sync_slowdown:0.1, sync_delay:0.5",
    )


def main(args: argparse.Namespace) -> int:
    scenarios = common.load_selection(args).scenarios
    if args.repeat is not None:
        scenarios = [dataclasses.replace(s, settings=s.settings.replace(repeat=args.repeat)) for s in scenarios]
    if args.inject:
        scenarios = [
            dataclasses.replace(s, settings=s.settings.replace(fault=fault_from_spec(args.inject))) for s in scenarios
        ]
    if not scenarios:
        raise ColobenchError("no scenario selected (check --matrix and -k)")
    variants = [v.strip() for v in args.ab.split(",")] if args.ab else []
    if args.ab:
        ab.check_variants(variants)
    sess = session.open_session(
        Path(args.reports_dir),
        args.run_id,
        baseline=args.baseline,
        keep_history=not args.no_history,
        retries=args.retries,
        wheelhouse=Path(args.wheelhouse) if args.wheelhouse else None,
        ray_address=args.ray_address,
        system_site=args.system_site,
    )
    print(f"colobench: {len(scenarios)} scenarios -> {sess.run_dir}", file=sys.stderr)
    results = ab.run_ab(sess, scenarios, variants) if args.ab else sess.run(scenarios)
    summary.append_step_summary((sess.run_dir / "summary.md").read_text())
    overall = worst([r.verdict for r in results])
    print(
        f"colobench: {overall.value}; junit: {sess.run_dir / 'junit.xml'}; summary: {sess.run_dir / 'summary.md'}",
        file=sys.stderr,
    )
    return (BISECT_EXIT_CODES if args.bisect_exit_codes else EXIT_CODES)[overall]
