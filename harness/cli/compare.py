"""colobench compare A B: two runs (run ids) or two versions (version:0.5.11 version:0.5.12) from history."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli import common
from harness.store import history
from harness.study import compare

NAME = "compare"
HELP = (
    "compare two runs or two versions: per scenario and metric A, B, delta, percent change, p-value, verdict "
    "(+ markdown, PNG)"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", help="a run id, or version:V")
    p.add_argument("b", help="a run id, or version:V")
    p.add_argument("--out", metavar="DIR", help="write compare.md and one PNG per metric here")
    common.add_reports(p)


def main(args: argparse.Namespace) -> int:
    store = history.HistoryStore(Path(args.reports_dir) / "history.sqlite")
    la, da, fa = compare.side(store, args.a)
    lb, db, fb = compare.side(store, args.b)
    rows = compare.rows(da, db)
    print(compare.table(rows))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.md").write_text(compare.markdown(la, lb, rows, fa, fb))
        for ident, metric in sorted({(r.scenario, r.metric) for r in rows}):
            compare.plot_versions(store, ident, metric, out / f"{ident}.{metric}.png")
        print(f"\nwritten: {out / 'compare.md'}")
    return 1 if any(r.verdict == "worse" for r in rows) else 0
