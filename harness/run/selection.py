"""What to run, the same for `colobench` and `pytest`: the options that select and run scenarios (one table, the
same names in both front ends) and the selection itself (matrices, models, --sglang, -k, --gpus, --shard I/N).

- Owns: OPTIONS (flags, defaults, help) and their registration with argparse or pytest; `select` (files resolved
  through resources.py, then the version, keyword, GPU-count and shard filters); the shard split: longest-first
  greedy assignment of scenarios to the shard with the least total time so far (ties to the lower shard), using each
  scenario's recent median duration from the history and the median of the known ones for the rest (every scenario
  counts 1 when nothing is known), pure and stable, so every runner computes the same shards.
- Does not own: reading matrices (matrix/), storing durations (store/history.py), merging shards' reports
  (report/summary.merge). pytest keeps its own -k (over the same ids and markers).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from statistics import median
from typing import Any

from harness import resources
from harness.errors import ColobenchError
from harness.matrix import models, scenario
from harness.matrix.scenario import Scenario
from harness.store import history


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def non_negative_int(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative integer")
    return int(text)


# flag -> argparse/pytest keyword arguments. SELECT: which scenarios; RUN: how they run and where results go.
SELECT: dict[str, dict[str, Any]] = {
    "--matrix": dict(
        action="append",
        default=None,
        metavar="PATH",
        help="matrix file or folder, or a built-in matrix by name (repeatable; default: the CPU smoke "
        "matrix for colobench, ./matrix/ or the built-in matrices for pytest)",
    ),
    "--models": dict(
        default=None,
        metavar="PATH",
        help="a models file whose entries add to the built-in ones (default: ./models.yaml if present)",
    ),
    "--sglang": dict(default=None, metavar="VERSION", help="run sglang-engine scenarios against this version"),
    "--gpus": dict(
        type=non_negative_int,
        default=None,
        metavar="N",
        help="only scenarios that lease exactly N GPUs (route rows to runners by GPU count; 0: CPU rows)",
    ),
    "--shard": dict(
        default=None,
        metavar="I/N",
        help="only shard I of N of the selection, balanced by past durations (from the history in --reports-dir)",
    ),
}
RUN: dict[str, dict[str, Any]] = {
    "--reports-dir": dict(default="reports", metavar="DIR", help="where runs and history go (default: reports)"),
    "--retries": dict(type=non_negative_int, default=1, metavar="N", help="retries of an infra error (default 1)"),
    "--baseline": dict(
        default="history",
        metavar="SPEC",
        help="baseline of relative gates: history (trusted window), run:RUN_ID, version:V, none",
    ),
    "--no-history": dict(action="store_true", default=False, help="do not record scenario runs in the history"),
    "--ray-address": dict(
        default=None,
        metavar="ADDR",
        help="attach to this Ray cluster (or `env`: $RAY_ADDRESS) instead of starting one per scenario",
    ),
}
# spellings of an earlier release, accepted with a deprecation line until 0.3
DEPRECATED = {"--report-dir": "--reports-dir", "--colobench-retries": "--retries"}


def add_to(add, table: dict[str, dict[str, Any]]) -> None:
    """Register `table` through `add` (argparse's add_argument or pytest's group.addoption), old spellings too."""
    for flag, kwargs in table.items():
        old = [o for o, new in DEPRECATED.items() if new == flag]
        add(flag, *old, dest=flag.lstrip("-").replace("-", "_"), **kwargs)


def warn_deprecated(argv: list[str], out=sys.stderr) -> None:
    for arg in argv:
        new = DEPRECATED.get(str(arg).split("=", 1)[0])
        if new:
            print(
                f"colobench: {arg.split('=', 1)[0]} is deprecated; use {new} (the old spelling goes in 0.3)", file=out
            )


def select(
    matrix: list[str] | None,
    models_file: str | None,
    sglang: str | None,
    keyword: str | None,
    gpus: int | None,
    shard: str | None,
    reports_dir: str | Path,
    default: list[Path],
) -> scenario.Matrix:
    """The selected scenarios of the matrices named (else `default`), validated; a one-line error otherwise."""
    files = [f for target in (matrix or default) for f in scenario.matrix_files(resources.matrix_target(target))]
    known = models.load_all(resources.models_files(models_file))
    found = scenario.load_many(files, known, sglang=sglang)
    found.scenarios = scenario.select(found.scenarios, keyword)
    if gpus is not None:
        found.scenarios = [s for s in found.scenarios if s.gpus_to_lease == gpus]
    if shard:
        found.scenarios = pick(found.scenarios, shard, past_durations(Path(reports_dir), found.scenarios))
    return found


def parse(spec: str) -> tuple[int, int]:
    """'2/4' -> (2, 4), 1-based; a one-line error otherwise."""
    i, sep, n = spec.partition("/")
    if not sep or not i.isdigit() or not n.isdigit() or not 1 <= int(i) <= int(n):
        raise ColobenchError(f"--shard {spec!r}: expected I/N with 1 <= I <= N, e.g. 1/4")
    return int(i), int(n)


def assign(ids: list[str], n: int, durations: dict[str, float]) -> dict[str, int]:
    """{scenario id: shard index 0..n-1}."""
    known = [d for d in durations.values() if d > 0]
    default = median(known) if known else 1.0
    cost = {sid: durations.get(sid, default) or default for sid in ids}
    totals = [0.0] * n
    out = {}
    for sid in sorted(ids, key=lambda s: (-cost[s], s)):
        k = min(range(n), key=lambda j: (totals[j], j))
        out[sid] = k
        totals[k] += cost[sid]
    return out


def pick(scenarios: list[Scenario], spec: str, durations: dict[str, float]) -> list[Scenario]:
    """The scenarios of shard I of N, in their selection order."""
    i, n = parse(spec)
    where = assign([s.id for s in scenarios], n, durations)
    return [s for s in scenarios if where[s.id] == i - 1]


def past_durations(reports_dir: Path, scenarios: list[Scenario]) -> dict[str, float]:
    """{scenario id: its recent median duration} from the history in `reports_dir`, where there is one."""
    path = reports_dir / "history.sqlite"
    if not path.exists():
        return {}
    known = history.HistoryStore(path).durations()
    return {s.id: known[s.identity] for s in scenarios if s.identity in known}
