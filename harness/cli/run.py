"""colobench run: run the selected scenarios; JUnit and summary written; exit 0 pass, 1 regressed, 2 bad input."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from harness import ab, envs, execute, fingerprint, history, report, session
from harness.cli import common
from harness.errors import ColobenchError
from harness.schema import fault_from_spec
from harness.scenario import Scenario
from harness.verdict import BISECT_EXIT_CODES, EXIT_CODES, ScenarioResult, worst

NAME = "run"
HELP = "run scenarios (default: the CPU smoke matrix on the reference engine); writes junit.xml and summary.md"


def add_arguments(p: argparse.ArgumentParser) -> None:
    common.add_matrix(p)
    common.add_reports(p)
    p.add_argument("--run-id", help="name of the run folder under reports/runs (default: time + random)")
    p.add_argument("--repeat", type=int, metavar="K", help="samples per scenario (overrides the matrix)")
    p.add_argument("--retries", type=int, default=1, metavar="N", help="retries of an infra error (default 1)")
    p.add_argument("--baseline", default="history", metavar="SPEC",
                   help="baseline of relative gates: history (trusted window), run:RUN_ID, version:V, none")
    p.add_argument("--ab", metavar="A,B", help="A/B two variants on the same machine, A B A B ... (with --repeat): "
                   "sglang versions, none, or inject:KIND:VALUE")
    p.add_argument("--no-history", action="store_true", help="do not record this run in reports/history.sqlite")
    p.add_argument("--bisect-exit-codes", action="store_true", help="exit 0 good, 1 bad, 125 skip (for git bisect run)")
    p.add_argument("--wheelhouse", metavar="DIR", help="offline wheels for creating version environments")
    p.add_argument("--inject", metavar="KIND[:VALUE]",
                   help="gate self-test: inject a fault without changing scenario ids, e.g. sync_slowdown:0.1, sync_delay:0.5")


def baseline_provider(spec: str, store: history.HistoryStore | None, bucket: str):
    """A function scenario -> baseline samples, from a --baseline spec."""
    kind, _, value = spec.partition(":")
    if spec not in ("none", "history") and not (kind in ("run", "version") and value):
        raise ColobenchError(f"--baseline {spec!r}: expected history, run:RUN_ID, version:V or none")
    if spec == "none" or store is None:
        return None
    if spec == "history":
        return lambda s: store.baseline(s.id, bucket)
    if kind == "run" and value:
        return lambda s: store.scenarios_of_run(value).get(history.identity(s.id), [])
    if kind == "version" and value:
        return lambda s: store.scenarios_of_version(value, bucket).get(history.identity(s.id), [])
    raise ColobenchError(f"--baseline {spec!r}: expected history, run:RUN_ID, version:V or none")


def recorder(store: history.HistoryStore, run_id: str, python_of):
    def record(scenario: Scenario, result: ScenarioResult) -> None:
        versions = {k.removeprefix("version."): v for k, v in result.properties.items() if k.startswith("version.")}
        fp = fingerprint.collect(python_of(scenario), versions)
        finite = [{m: kept for m, vals in run.items() if (kept := [v for v in vals if v == v])} for run in result.runs()]
        store.record_run(run_id, scenario.id, scenario.axes.get("sglang"), fingerprint.bucket(fp), fp,
                         result.verdict.value, finite, result.run_dir)
    return record


def main(args: argparse.Namespace) -> int:
    matrix = common.load_selection(args)
    scenarios = matrix.scenarios
    if args.repeat is not None:
        if args.repeat < 1:
            raise ColobenchError(f"--repeat {args.repeat}: expected a positive int")
        scenarios = [dataclasses.replace(s, settings={**s.settings, "repeat": args.repeat}) for s in scenarios]
    if args.inject:
        scenarios = [dataclasses.replace(s, settings={**s.settings, "fault": fault_from_spec(args.inject)}) for s in scenarios]
    if not scenarios:
        raise ColobenchError("no scenario selected (check --matrix and -k)")
    reports_dir = Path(args.reports_dir)
    run_dir = session.make_run_dir(reports_dir, args.run_id)
    store = None if args.no_history else history.HistoryStore(reports_dir / "history.sqlite")
    bucket = fingerprint.bucket(fingerprint.collect(sys.executable)) if store else ""
    python_of = envs.python_resolver(Path(args.wheelhouse) if args.wheelhouse else None)
    options = execute.Options(python=python_of, infra_retries=args.retries,
                              baseline=baseline_provider(args.baseline, store, bucket))
    sess = session.Session(run_dir, options, record=recorder(store, run_dir.name, python_of) if store else None,
                           title=f"colobench run {run_dir.name}")
    print(f"colobench: {len(scenarios)} scenarios -> {run_dir}", file=sys.stderr)
    if args.ab:
        results = ab.run_ab(sess, scenarios, [v.strip() for v in args.ab.split(",")])
    else:
        results = sess.run(scenarios)
    report.append_step_summary((run_dir / "summary.md").read_text())
    overall = worst([r.verdict for r in results])
    print(f"colobench: {overall.value}; junit: {run_dir / 'junit.xml'}; summary: {run_dir / 'summary.md'}", file=sys.stderr)
    return (BISECT_EXIT_CODES if args.bisect_exit_codes else EXIT_CODES)[overall]
