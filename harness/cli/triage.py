"""colobench triage: name the first causal error in any folder of logs (a framework's own included)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.errors import ColobenchError
from harness.judge import triage
from harness.judge.logs import LogLine

NAME = "triage"
HELP = "name the first causal error in a folder of logs, with cause, fix and the lines around it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("logdir", help="a folder of *.log/*.out/*.err/*.txt files (searched recursively), or one file")
    p.add_argument("--json", action="store_true", help="print the diagnosis as JSON")
    p.add_argument(
        "--signatures", default=str(triage.CATALOG), help="signature catalog (default: harness/signatures.yaml)"
    )


def main(args: argparse.Namespace) -> int:
    target = Path(args.logdir)
    if not target.exists():
        raise ColobenchError(f"{target}: no such folder or file")
    catalog = triage.load(args.signatures)
    if target.is_file():
        text = target.read_text(encoding="utf-8", errors="replace").splitlines()
        diag = triage.diagnose([LogLine(target.stem, n, t, None) for n, t in enumerate(text, 1)], catalog)
    else:
        diag = triage.diagnose_folder(target, catalog)
    if args.json:
        print(json.dumps(diag.to_json(), indent=1))
    else:
        print(diag.one_line())
        if diag.context:
            print("\n".join(diag.context))
    return 0 if diag.line is None else 1
