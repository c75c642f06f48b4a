"""A run of many scenarios: the run folder, progress on screen, reports rewritten after every scenario.

- Owns: run ids and `reports/runs/<run-id>/`, the sequential loop shared by `colobench run` (and its A/B and
  bisect callers), writing junit.xml and summary.md after each scenario so an interrupted run keeps valid
  reports, and recording each result in the history store.
- Does not own: one scenario's pipeline (execute.py) or report formats (junit.py, report.py).
"""

from __future__ import annotations

import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from harness import execute, junit, report
from harness.errors import ColobenchError
from harness.scenario import Scenario
from harness.verdict import ScenarioResult


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def make_run_dir(reports_dir: Path, run_id: str | None = None) -> Path:
    run_dir = reports_dir / "runs" / (run_id or new_run_id())
    try:
        run_dir.mkdir(parents=True, exist_ok=False, mode=0o750)
    except FileExistsError:
        raise ColobenchError(f"{run_dir}: run folder exists already; pick another --run-id") from None
    except OSError as exc:
        raise ColobenchError(f"{run_dir}: cannot create the run folder: {exc.strerror}") from None
    return run_dir


@dataclass
class Session:
    run_dir: Path
    options: execute.Options = field(default_factory=execute.Options)
    out: TextIO = sys.stderr
    record: Callable[[Scenario, ScenarioResult], None] | None = None
    title: str = "colobench run"
    results: list[ScenarioResult] = field(default_factory=list)

    def write_reports(self) -> None:
        junit.write(self.results, self.run_dir / "junit.xml")
        report.write_summary(self.results, self.run_dir / "summary.md", self.title)

    def run(self, scenarios: list[Scenario]) -> list[ScenarioResult]:
        total = len(scenarios)
        try:
            for i, scenario in enumerate(scenarios, 1):
                print(f"[{i}/{total}] {scenario.id} ...", file=self.out, flush=True)
                result = execute.run_scenario(scenario, self.run_dir, self.options)
                self.results.append(result)
                if self.record:
                    self.record(scenario, result)
                self.write_reports()
                line = f"[{i}/{total}] {scenario.id}: {result.verdict.value} ({result.duration_s:.1f}s)"
                print(line + (f" - {result.reason[:300]}" if result.reason else ""), file=self.out, flush=True)
        finally:
            self.write_reports()
        return self.results
