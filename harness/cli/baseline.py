"""colobench baseline promote|revoke|list RUN: the baseline lifecycle (nothing is a baseline until promoted)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tabulate import tabulate

from harness.cli import common
from harness.store import history

NAME = "baseline"
HELP = "promote a run into the trusted baseline window, revoke it, or list trusted runs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["promote", "revoke", "list"])
    p.add_argument("run_id", nargs="?", help="the run id (the folder name under reports/runs)")
    common.add_reports(p)


def main(args: argparse.Namespace) -> int:
    store = history.HistoryStore(Path(args.reports_dir) / "history.sqlite")
    if args.action == "list":
        print(tabulate([[r] for r in store.trusted_runs()], headers=["trusted run"]))
        return 0
    if not args.run_id:
        from harness.errors import ColobenchError

        raise ColobenchError(f"baseline {args.action}: give the run id")
    getattr(store, args.action)(args.run_id)
    print(f"{args.run_id}: {args.action}d")
    return 0
