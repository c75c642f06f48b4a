"""A run of many scenarios, the same for every entry point: the run folder, baselines in, history out, reports
rewritten after every scenario, and an honest end when interrupted.

- Owns: run ids and `reports/runs/<run-id>/`, `open_session` (the one place that wires baselines and the history
  recorder: `colobench run`, `pytest suites/`, `--ab` and `bisect` all go through it), the sequential loop,
  junit.xml + summary.md after each scenario (so an interrupted run keeps valid reports), and what an interrupt
  leaves: the scenario in flight `interrupted`, the rest `not run: interrupted`, the history run marked.
- Does not own: one scenario's pipeline (execute.py) or report formats (report/).
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from harness.errors import ColobenchError
from harness.judge import stats
from harness.judge.result import ScenarioResult
from harness.judge.verdict import Verdict
from harness.matrix import axes
from harness.matrix.scenario import Scenario
from harness.report import junit, summary
from harness.run import envs, execute
from harness.store import fingerprint, history


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def check_run_id(run_id: str | None) -> None:
    if run_id is not None and not axes.safe_name(run_id):
        raise ColobenchError(
            f"--run-id {run_id!r}: expected letters, digits, '.', '_', '+', '-' (it names a folder under reports/runs)"
        )


def make_run_dir(reports_dir: Path, run_id: str | None = None) -> Path:
    check_run_id(run_id)
    run_dir = reports_dir / "runs" / (run_id or new_run_id())
    try:
        run_dir.mkdir(parents=True, exist_ok=False, mode=0o750)
    except FileExistsError:
        raise ColobenchError(f"{run_dir}: run folder exists already; pick another --run-id") from None
    except OSError as exc:
        raise ColobenchError(f"{run_dir}: cannot create the run folder: {exc.strerror}") from None
    return run_dir


def check_baseline(spec: str) -> None:
    """A one-line error unless `spec` is history, run:RUN_ID, version:V or none."""
    kind, _, value = spec.partition(":")
    if spec not in ("none", "history") and not (kind in ("run", "version") and value):
        raise ColobenchError(f"--baseline {spec!r}: expected history, run:RUN_ID, version:V or none")


def baseline_provider(spec: str, store: history.HistoryStore | None, bucket: str) -> execute.BaselineFn | None:
    """A function scenario -> the baseline's runs, from a --baseline spec: history | run:RUN_ID | version:V | none."""
    check_baseline(spec)
    kind, _, value = spec.partition(":")
    if spec == "none" or store is None:
        return None
    if spec == "history":
        return lambda s: store.baseline(s.identity, bucket)
    if kind == "run":
        return lambda s: store.scenarios_of_run(value).get(s.identity, [])
    return lambda s: store.scenarios_of_version(value, bucket).get(s.identity, [])


def ray_address_of(spec: str | None) -> str | None:
    """--ray-address: an address (`10.0.0.1:6379`, `ray://...`), or `env` for $RAY_ADDRESS. A RAY_ADDRESS merely
    present in the environment is never used on its own: a stale one must not hijack the owned cluster."""
    if not spec:
        return None
    address = os.environ.get("RAY_ADDRESS", "") if spec == "env" else spec
    if not address or any(c.isspace() or c == "\0" for c in address):
        raise ColobenchError(
            f"--ray-address {spec!r}: expected HOST:PORT, ray://HOST:PORT, or env with RAY_ADDRESS set"
        )
    return address


def recorder(store: history.HistoryStore, run_id: str) -> Callable[[Scenario, ScenarioResult], None]:
    """Record a finished scenario (skipped and interrupted ones ran nothing worth keeping)."""

    def record(scenario: Scenario, result: ScenarioResult) -> None:
        if result.verdict in (Verdict.SKIPPED, Verdict.INTERRUPTED):
            return
        versions = {k.removeprefix("version."): v for k, v in result.properties.items() if k.startswith("version.")}
        fp = fingerprint.collect(result.properties.get("python") or sys.executable, versions)
        finite = [{m: kept for m, vals in run.items() if (kept := stats.finite(vals))} for run in result.runs()]
        store.record_run(
            run_id,
            scenario.id,
            scenario.axes.get("sglang"),
            fingerprint.bucket(fp),
            fp,
            result.verdict.value,
            finite,
            result.run_dir,
            result.duration_s,
            identity=scenario.identity or None,
        )

    return record


@dataclass
class Session:
    run_dir: Path
    options: execute.Options = field(default_factory=execute.Options)
    out: TextIO = sys.stderr
    record: Callable[[Scenario, ScenarioResult], None] | None = None
    title: str = "colobench run"
    results: list[ScenarioResult] = field(default_factory=list)
    store: history.HistoryStore | None = None

    def write_reports(self) -> None:
        junit.write(self.results, self.run_dir / "junit.xml")
        summary.write_summary(self.results, self.run_dir / "summary.md", self.title)

    def add(self, scenario: Scenario, result: ScenarioResult) -> None:
        """Keep a finished result: recorded in the history, then the reports rewritten."""
        self.results.append(result)
        if self.record:
            self.record(scenario, result)
        self.write_reports()

    def run_one(self, scenario: Scenario) -> ScenarioResult:
        result = execute.run_scenario(scenario, self.run_dir, self.options)
        self.add(scenario, result)
        return result

    def interrupted(self, scenarios: list[Scenario], done: int) -> None:
        """After Ctrl-C or SIGTERM: the scenario in flight is `interrupted`, the rest are listed as not run."""
        for i, s in enumerate(scenarios[done:]):  # saved: `colobench report DIR` renders the interrupted run
            self.results.append(execute.stopped(s, self.run_dir, in_flight=i == 0))
        if self.store is not None:
            self.store.mark_interrupted(self.run_dir.name)
        self.write_reports()

    def run(self, scenarios: list[Scenario]) -> list[ScenarioResult]:
        total = len(scenarios)
        done = 0
        try:
            for i, scenario in enumerate(scenarios, 1):
                print(f"[{i}/{total}] {scenario.id} ...", file=self.out, flush=True)
                result = self.run_one(scenario)
                done = i
                line = f"[{i}/{total}] {scenario.id}: {result.verdict.value} ({result.duration_s:.1f}s)"
                print(line + (f" - {result.reason[:300]}" if result.reason else ""), file=self.out, flush=True)
        except KeyboardInterrupt:
            self.interrupted(scenarios, done)
            raise
        return self.results


def open_session(
    reports_dir: Path,
    run_id: str | None = None,
    *,
    baseline: str = "history",
    keep_history: bool = True,
    wheelhouse: Path | None = None,
    retries: int = 1,
    title: str | None = None,
    python: Callable[[Scenario], str] | None = None,
    ray_address: str | None = None,
    system_site: bool = False,
) -> Session:
    """The one wiring of a run: run folder, python per scenario, the baseline provider and the history recorder."""
    check_run_id(run_id)  # bad input is refused before anything is opened or made
    check_baseline(baseline)
    store = history.HistoryStore(reports_dir / "history.sqlite") if keep_history else None
    run_dir = make_run_dir(reports_dir, run_id)
    bucket = fingerprint.bucket(fingerprint.collect(sys.executable)) if store and baseline != "none" else ""
    options = execute.Options(
        python=python or envs.python_resolver(wheelhouse, system_site),
        infra_retries=retries,
        baseline=baseline_provider(baseline, store, bucket),
        ray_address=ray_address_of(ray_address),
    )
    return Session(
        run_dir,
        options,
        record=recorder(store, run_dir.name) if store else None,
        title=title or f"colobench run {run_dir.name}",
        store=store,
    )
