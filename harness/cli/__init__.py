"""The `colobench` command: one thin module per verb, each with NAME, HELP, add_arguments(p) and main(args) -> int.

The only place that catches ColobenchError: it prints one line and exits with the error's code.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import NoReturn

from harness.cli import (
    baseline,
    bisect,
    compare,
    env,
    history,
    init,
    list_,
    report,
    run,
    triage,
)
from harness.errors import ColobenchError
from harness.judge.verdict import EXIT_HELP

VERBS = [init, list_, run, report, compare, bisect, env, baseline, history, triage]
__all__ = ["main", "build_parser", "VERBS"]


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, like every other bad input (exit 2)."""

    def error(self, message: str) -> NoReturn:
        print(f"colobench: {self.prog}: {message}; see --help", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="colobench", description="Regression harness for colocated SGLang rollout + training.", epilog=EXIT_HELP
    )
    sub = parser.add_subparsers(dest="verb_name", required=True, metavar="VERB", parser_class=_Parser)
    for verb in VERBS:
        p = sub.add_parser(verb.NAME, help=verb.HELP, description=verb.HELP)
        verb.add_arguments(p)
        p.set_defaults(verb=verb)
    return parser


def interrupt_on_sigterm() -> None:
    """SIGTERM (a CI job cancelled, `timeout`) unwinds like Ctrl-C: runners are killed, reports stay valid."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    interrupt_on_sigterm()
    try:
        return args.verb.main(args)
    except ColobenchError as exc:
        print(f"colobench: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("colobench: interrupted; reports written so far are kept", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())
