"""Flags shared by several verbs, and the scenario selection they feed."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness import REPO_ROOT
from harness.matrix import models, scenario
from harness.run import shard

DEFAULT_MATRIX = REPO_ROOT / "matrix" / "smoke.yaml"
DEFAULT_REPORTS = Path("reports")


def add_matrix(p: argparse.ArgumentParser) -> None:
    p.add_argument("--matrix", action="append", metavar="PATH",
                   help="matrix file or folder (repeatable; default: matrix/smoke.yaml, the CPU smoke matrix)")
    p.add_argument("--models", default=str(models.DEFAULT_PATH), metavar="PATH", help="models registry (default: models.yaml)")
    p.add_argument("--sglang", metavar="VERSION", help="run sglang-engine scenarios against this version")
    p.add_argument("-k", dest="keyword", metavar="EXPR", help="select scenarios, pytest style: 'tp2 and arv2'")
    p.add_argument("--gpus", type=non_negative_int, metavar="N", help="only scenarios that lease exactly N GPUs "
                   "(route rows to runners by GPU count; 0: the CPU rows)")
    p.add_argument("--shard", metavar="I/N", help="only shard I of N of the selection, balanced by past durations "
                   "(from the history in --reports-dir)")


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def non_negative_int(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative integer")
    return int(text)


def add_reports(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reports-dir", default=str(DEFAULT_REPORTS), metavar="DIR", help="where runs and history go (default: reports)")


def load_selection(args: argparse.Namespace) -> scenario.Matrix:
    files: list[Path] = []
    for target in args.matrix or [DEFAULT_MATRIX]:
        files += scenario.matrix_files(target)
    matrix = scenario.load_many(files, models.load(args.models), sglang=args.sglang)
    matrix.scenarios = scenario.select(matrix.scenarios, args.keyword)
    if args.gpus is not None:
        matrix.scenarios = [s for s in matrix.scenarios if s.gpus_to_lease == args.gpus]
    if args.shard:
        matrix.scenarios = shard.pick(matrix.scenarios, args.shard, shard.past_durations(Path(args.reports_dir), matrix.scenarios))
    return matrix
