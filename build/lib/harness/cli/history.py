"""colobench history export|import FILE: carry the results history between CI jobs (a checkout is cleaned between
jobs; an artifact or cache is not)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.cli import common
from harness.errors import HistoryError
from harness.store import history

NAME = "history"
HELP = "export the results history to a JSON-lines file, or import one (runs already present are skipped)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["export", "import"])
    p.add_argument("file", help="the JSON-lines file to write or read")
    common.add_reports(p)


def main(args: argparse.Namespace) -> int:
    store = history.HistoryStore(Path(args.reports_dir) / "history.sqlite")
    path = Path(args.file)
    if args.action == "export":
        rows = store.export_rows()
        path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        print(f"{path}: {sum(r['kind'] == 'run' for r in rows)} runs exported")
        return 0
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise HistoryError(f"{path}: cannot read the history export ({exc})") from None
    print(f"{path}: {store.import_rows(rows, str(path))} runs imported")
    return 0
