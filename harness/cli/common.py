"""Flags shared by several verbs: the selection and run options of run/selection.py (the pytest plugin registers the
same table), plus -k, which pytest has of its own."""

from __future__ import annotations

import argparse

from harness import resources
from harness.matrix import scenario
from harness.run import selection
from harness.run.selection import non_negative_int, positive_int

__all__ = ["add_matrix", "add_reports", "add_run", "load_selection", "non_negative_int", "positive_int"]


def add_matrix(p: argparse.ArgumentParser) -> None:
    selection.add_to(p.add_argument, selection.SELECT)
    p.add_argument("-k", dest="keyword", metavar="EXPR", help="select scenarios, pytest style: 'tp2 and arv2'")


def add_reports(p: argparse.ArgumentParser) -> None:
    selection.add_to(p.add_argument, {"--reports-dir": selection.RUN["--reports-dir"]})


def add_run(p: argparse.ArgumentParser) -> None:
    """How scenarios run: retries, baseline, history, Ray (with --reports-dir)."""
    selection.add_to(p.add_argument, selection.RUN)


def load_selection(args: argparse.Namespace) -> scenario.Matrix:
    return selection.select(
        args.matrix,
        args.models,
        args.sglang,
        args.keyword,
        args.gpus,
        args.shard,
        args.reports_dir,
        [resources.default_matrix()],
    )
