"""colobench list: the scenarios a selection expands to (and, with --all, the dropped ones and why)."""

from __future__ import annotations

import argparse

from harness.cli import common
from harness.report import summary

NAME = "list"
HELP = "list the scenarios of the matrix (id, GPUs, kind, expectation)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    common.add_matrix(p)
    common.add_reports(p)
    p.add_argument("--all", action="store_true", help="also show combinations dropped as impossible, with the reason")
    p.add_argument("--ids", action="store_true", help="print ids only, one per line")


def main(args: argparse.Namespace) -> int:
    matrix = common.load_selection(args)
    if args.ids:
        print("\n".join(s.id for s in matrix.scenarios))
        return 0
    print(summary.list_table(matrix.scenarios, matrix.dropped if args.all else None))
    print(f"\n{len(matrix.scenarios)} scenarios" + (f", {len(matrix.dropped)} dropped" if args.all else ""))
    return 0
