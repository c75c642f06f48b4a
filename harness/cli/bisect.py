"""colobench bisect: which SGLang version (or commit) broke a scenario, or dropped a metric, found by real runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli import common
from harness.errors import ColobenchError
from harness.matrix.rules import percent
from harness.matrix.scenario import Scenario
from harness.study import bisect_run

NAME = "bisect"
HELP = "find the first bad sglang version (or commit) of a scenario by binary search over real runs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    common.add_matrix(p)
    common.add_reports(p)
    p.add_argument("--scenario", metavar="ID", help="the scenario id (or select exactly one with -k)")
    p.add_argument("--good", required=True, help="a good version (or commit with --sglang-repo)")
    p.add_argument("--bad", required=True, help="a bad version (or commit)")
    p.add_argument("--versions", metavar="A,B,C", help="candidate versions (default: the package index)")
    p.add_argument(
        "--sglang-repo", metavar="PATH", help="bisect commits of this git repo (its package is installed per commit)"
    )
    p.add_argument(
        "--subdir", default="", help="with --sglang-repo: the package's folder inside the repo (sglang: python)"
    )
    p.add_argument(
        "--metric",
        help="bisect a change of this metric instead of a failure (judged as gates judge: give "
        "the scenario repeat >= 3, or a probe beyond the threshold but not beyond its runs' noise is skipped)",
    )
    p.add_argument("--max-drop", help="with --metric: bad when it drops more than this (e.g. 10%%)")
    p.add_argument("--max-rise", help="with --metric: bad when it rises more than this (e.g. 10%%)")
    p.add_argument("--wheelhouse", metavar="DIR", help="offline wheels for the environments")
    p.add_argument(
        "--system-site", action="store_true", help="environments see the system's packages (a GPU host's torch)"
    )


def _scenario(args: argparse.Namespace) -> Scenario:
    found = common.load_selection(args).scenarios
    if args.scenario:
        found = [s for s in found if s.id == args.scenario]
    if len(found) != 1:
        raise ColobenchError(f"bisect: select exactly one scenario (--scenario ID or -k); {len(found)} match")
    return found[0]


def main(args: argparse.Namespace) -> int:
    request = bisect_run.Request(
        scenario=_scenario(args),
        good=args.good,
        bad=args.bad,
        reports=Path(args.reports_dir),
        versions=args.versions.split(",") if args.versions else None,
        repo=Path(args.sglang_repo) if args.sglang_repo else None,
        subdir=args.subdir,
        metric=args.metric,
        max_drop=percent(args.max_drop) if args.max_drop else None,
        max_rise=percent(args.max_rise) if args.max_rise else None,
        wheelhouse=Path(args.wheelhouse) if args.wheelhouse else None,
        system_site=args.system_site,
    )
    result, text = bisect_run.run(request)
    print(text)
    return 0 if result.first_bad else 1
