"""pytest plugin: scenarios of matrix/ as pytest items. Kept thin: options, collection, fixtures.

`pytest suites/` collects one item per scenario (named by its id, so `-k colocate` and `-k "tp2 and arv2"`
select); markers gpu/cpu/colocate/split/fault; scenarios needing more GPUs than visible are skipped with the
reason. Under pytest-xdist each worker writes its own report folder and leases disjoint GPUs (harness/gpus.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("colobench", "colobench scenario matrix")
    group.addoption("--matrix", action="append", default=None, metavar="PATH",
                    help="matrix file or folder (repeatable; default: matrix/ beside suites/)")
    group.addoption("--sglang", default=None, metavar="VERSION", help="run sglang-engine scenarios against this version")
    group.addoption("--report-dir", default="reports", metavar="DIR", help="where run folders go (default: reports)")
    group.addoption("--colobench-retries", type=int, default=1, metavar="N", help="retries of an infra error")


def pytest_configure(config: pytest.Config) -> None:
    for name in ("gpu", "cpu", "colocate", "split", "fault"):
        config.addinivalue_line("markers", f"{name}: colobench scenario marker")
    from harness.cli import interrupt_on_sigterm
    interrupt_on_sigterm()
    if "PYTEST_XDIST_WORKER" not in os.environ and "COLOBENCH_RUN_ID" not in os.environ:
        from harness import session
        os.environ["COLOBENCH_RUN_ID"] = session.new_run_id()    # xdist workers inherit it: one run, a folder each
    config.stash[_MATRIX] = _load_matrix(config)


def _load_matrix(config: pytest.Config):
    """The selected matrix, validated once; bad input is a one-line usage error (exit 4), as xdist does."""
    from harness import models, scenario
    from harness.errors import ColobenchError
    targets = config.getoption("--matrix") or [str(Path(__file__).resolve().parent.parent / "matrix")]
    try:
        files = [f for t in targets for f in scenario.matrix_files(t)]
        return scenario.load_many(files, models.load(), sglang=config.getoption("--sglang"))
    except ColobenchError as exc:
        raise pytest.UsageError(f"colobench: {exc}") from None


class MatrixFile(pytest.File):
    """suites/test_*.py files that set COLOBENCH_MATRIX = True become a collector of the matrix scenarios."""

    def collect(self):
        from harness import gpus
        matrix = self.config.stash[_MATRIX]
        visible = len(gpus.visible_gpus())
        for s in matrix.scenarios:
            item = ScenarioItem.from_parent(self, name=s.id, scenario=s)
            for marker in s.markers:
                item.add_marker(marker)
            if s.gpus_to_lease > visible:
                item.add_marker(pytest.mark.skip(reason=f"needs {s.gpus_to_lease} GPUs, {visible} visible"))
            yield item


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario, **kw) -> None:
        super().__init__(**kw)
        self.scenario = scenario

    def runtest(self) -> None:
        from harness import envs, execute, session
        from harness.verdict import Verdict
        run_dir = self.config.stash[_RUN_DIR]
        options = execute.Options(python=envs.python_resolver(), infra_retries=self.config.getoption("--colobench-retries"))
        result = execute.run_scenario(self.scenario, run_dir, options)
        self.user_properties += [("verdict", result.verdict.value), ("run_dir", result.run_dir)] + [
            (f"metric.{k}", ",".join(f"{x:.6g}" for x in v)) for k, v in result.metrics.items()]
        _RESULTS.append(result)
        session.Session(run_dir, results=list(_RESULTS)).write_reports()
        if result.verdict == Verdict.SKIPPED:
            pytest.skip(result.reason)
        if result.verdict == Verdict.INCONCLUSIVE:
            pytest.skip(f"inconclusive: {result.reason}")
        if result.verdict != Verdict.PASS:
            raise ScenarioFailed(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ScenarioFailed):
            r = excinfo.value.result
            lines = [f"{r.verdict.value}: {r.reason}", f"run folder: {r.run_dir}"] + list(r.error_lines)
            return "\n".join(lines)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, 0, f"scenario {self.name}"


class ScenarioFailed(Exception):
    def __init__(self, result) -> None:
        super().__init__(result.reason)
        self.result = result


_RUN_DIR = pytest.StashKey[Path]()
_MATRIX = pytest.StashKey[object]()
_RESULTS: list = []


def pytest_sessionstart(session: pytest.Session) -> None:
    from harness import session as sess
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    run_id = os.environ.get("COLOBENCH_RUN_ID") or sess.new_run_id()
    reports = Path(session.config.getoption("--report-dir"))
    run_dir = reports / "runs" / (f"{run_id}-{worker}" if worker else run_id)
    session.config.stash[_RUN_DIR] = run_dir


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix == ".py" and file_path.name.startswith("test_") and "COLOBENCH_MATRIX = True" in file_path.read_text():
        return MatrixFile.from_parent(parent, path=file_path)
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if isinstance(item, ScenarioItem):
        item.config.stash[_RUN_DIR].mkdir(parents=True, exist_ok=True, mode=0o750)
