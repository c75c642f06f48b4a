"""pytest plugin: the scenarios of matrix/*.yaml as pytest items, run through the same session as `colobench run`
(history recorded, baselines used, the same verdicts and JUnit properties). Kept thin: options, collection, hooks.

Registered through the `pytest11` entry point of the installed package, so `pytest` in any repository that installed
colobench sees it. Options are run/selection.py's table, the same names `colobench run` takes.
- `pytest suites/` (a test_*.py file with COLOBENCH_MATRIX = True) collects every matrix of --matrix (default: the
  repository's matrix/, else the built-in ones) under one node per matrix, named by the matrix (`-k smoke`,
  `-k colocate`, `-k "tp2 and arv2"`); `pytest path/to/matrix.yaml` collects one matrix file directly.
- markers gpu/cpu/colocate/split/fault; scenarios needing more GPUs than visible are skipped with the reason;
  `inconclusive` is reported as a skip whose reason starts with it, a `verdict` user property, and a line in the
  terminal summary.
- under pytest-xdist each worker writes `reports/runs/<run-id>-<worker>/` and leases disjoint GPUs; the controller
  merges the workers' folders into `reports/runs/<run-id>/` (one junit.xml and summary.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_SESSION = pytest.StashKey[object]()
_VERDICTS = pytest.StashKey[list]()
_MATRIX = pytest.StashKey[object]()
_RUN_ID = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    from harness.run import selection  # the same table `colobench run` registers

    group = parser.getgroup("colobench", "colobench scenario matrix")
    selection.add_to(group.addoption, selection.SELECT)
    selection.add_to(group.addoption, selection.RUN)


def pytest_configure(config: pytest.Config) -> None:
    for name in ("gpu", "cpu", "colocate", "split", "fault"):
        config.addinivalue_line("markers", f"{name}: colobench scenario marker")
    config.stash[_VERDICTS] = []
    if getattr(config, "workerinput", None) is None:
        from harness.run import selection

        selection.warn_deprecated(list(config.invocation_params.args))


def _default_targets(config: pytest.Config) -> list[Path]:
    """Without --matrix: ./matrix/ of the repository pytest runs in, else colobench's built-in matrices."""
    from harness import resources

    own = Path(config.rootpath) / "matrix"
    return [own if own.is_dir() and any(own.glob("*.yaml")) else resources.builtin_matrices()]


def _matrix(config: pytest.Config, targets: list[str] | None):
    """The selected matrices, validated; bad input is a one-line usage error, as xdist does."""
    from harness.errors import ColobenchError
    from harness.run import selection

    opt = config.option
    try:
        return selection.select(
            targets, opt.models, opt.sglang, None, opt.gpus, None, opt.reports_dir, _default_targets(config)
        )
    except ColobenchError as exc:
        raise pytest.UsageError(f"colobench: {exc}") from None


def _wants_scenarios(config: pytest.Config) -> bool:
    """Whether this pytest run reaches a suite or a matrix (so `pytest tests` never reads a matrix)."""
    if config.getoption("--matrix"):
        return True
    homes = [Path(config.rootpath) / "suites", *_default_targets(config)]
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if any(path == h.resolve() or h.resolve() in path.parents or path in h.resolve().parents for h in homes):
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    """Validate the default matrices before collection: a bad file is a usage error (exit 4), not a collection error."""
    config = session.config
    if _wants_scenarios(config):
        config.stash[_MATRIX] = _matrix(config, config.getoption("--matrix"))


def _items(parent: pytest.Collector, scenarios: list):
    from harness.run import gpus

    visible = len(gpus.visible_gpus())
    for s in scenarios:
        item = ScenarioItem.from_parent(parent, name=s.id, scenario=s)
        for marker in s.markers:
            item.add_marker(marker)
        if s.gpus_to_lease > visible:
            item.add_marker(pytest.mark.skip(reason=f"needs {s.gpus_to_lease} GPUs, {visible} visible"))
        yield item


class MatrixNode(pytest.Collector):
    """One matrix (named by its `name`, so -k matches it) inside suites/test_scenarios.py."""

    def __init__(self, *, scenarios: list, **kw) -> None:
        super().__init__(**kw)
        self.scenarios = scenarios

    def collect(self):
        yield from _items(self, self.scenarios)


class SuiteFile(pytest.File):
    """suites/test_*.py files that set COLOBENCH_MATRIX = True: every matrix of --matrix (default: matrix/)."""

    def collect(self):
        matrix = self.config.stash.get(_MATRIX, None) or _matrix(self.config, self.config.getoption("--matrix"))
        by_name: dict[str, list] = {}
        for s in matrix.scenarios:
            by_name.setdefault(s.matrix, []).append(s)
        for name, scenarios in by_name.items():
            yield MatrixNode.from_parent(self, name=name, scenarios=scenarios)


class MatrixFile(pytest.File):
    """A matrix YAML file named on the command line (`pytest matrix/smoke.yaml`)."""

    def collect(self):
        yield from _items(self, _matrix(self.config, [str(self.path)]).scenarios)


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario, **kw) -> None:
        super().__init__(**kw)
        self.scenario = scenario

    def runtest(self) -> None:
        from harness.judge.verdict import Verdict

        sess = self.config.stash[_SESSION]
        try:
            result = sess.run_one(self.scenario)
        except KeyboardInterrupt:
            rest = [
                i.scenario for i in self.session.items[self.session.items.index(self) :] if isinstance(i, ScenarioItem)
            ]
            sess.interrupted(rest, 0)
            raise
        self.user_properties += [("verdict", result.verdict.value), ("run_dir", result.run_dir)] + [
            (f"metric.{k}", ",".join(f"{x:.6g}" for x in v)) for k, v in result.metrics.items()
        ]
        self.config.stash[_VERDICTS].append((self.scenario.id, result.verdict.value, result.reason))
        if result.verdict == Verdict.SKIPPED:
            pytest.skip(result.reason)
        if result.verdict == Verdict.INCONCLUSIVE:
            pytest.skip(f"inconclusive: {result.reason}")
        if result.verdict != Verdict.PASS:
            raise ScenarioFailed(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ScenarioFailed):
            r = excinfo.value.result
            return "\n".join([f"{r.verdict.value}: {r.reason}", f"run folder: {r.run_dir}"] + list(r.error_lines))
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, 0, f"scenario {self.name}"


class ScenarioFailed(Exception):
    def __init__(self, result) -> None:
        super().__init__(result.reason)
        self.result = result


def pytest_collect_file(file_path: Path, parent):
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("test_")
        and "COLOBENCH_MATRIX = True" in file_path.read_text()
    ):
        return SuiteFile.from_parent(parent, path=file_path)
    if file_path.suffix == ".yaml" and _is_matrix(file_path, parent.config):
        return MatrixFile.from_parent(parent, path=file_path)
    return None


def _is_matrix(path: Path, config: pytest.Config) -> bool:
    """A YAML file under a matrix/ folder, or one named on the command line that opens as a matrix (`schema: 1`)."""
    if path.parent.name == "matrix":
        return True
    named = {Path(a.split("::")[0]).resolve() for a in config.args}
    try:
        return path.resolve() in named and path.read_text(errors="replace").lstrip("\ufeff").startswith("schema:")
    except OSError:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    """--shard I/N: keep this runner's share of the scenarios (the same split `colobench run --shard` makes)."""
    spec = config.getoption("--shard")
    if not spec:
        return
    from harness.errors import ColobenchError
    from harness.run import selection

    scenarios = [i.scenario for i in items if isinstance(i, ScenarioItem)]
    try:
        keep = {
            s.id
            for s in selection.pick(
                scenarios, spec, selection.past_durations(Path(config.option.reports_dir), scenarios)
            )
        }
    except ColobenchError as exc:
        raise pytest.UsageError(f"colobench: {exc}") from None
    dropped = [i for i in items if isinstance(i, ScenarioItem) and i.scenario.id not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in dropped]


def _run_id(config: pytest.Config) -> str:
    worker_input = getattr(config, "workerinput", None)
    if worker_input is not None:
        return worker_input["colobench_run_id"]
    if _RUN_ID not in config.stash:
        from harness.run import session

        config.stash[_RUN_ID] = os.environ.get("COLOBENCH_RUN_ID") or session.new_run_id()
    return config.stash[_RUN_ID]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist controller: every worker gets the controller's run id (one run, a folder per worker)."""
    node.workerinput["colobench_run_id"] = _run_id(node.config)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Open the run (folder, history, baselines) once scenarios are selected; bad options are usage errors."""
    if not any(isinstance(i, ScenarioItem) for i in session.items) or session.config.option.collectonly:
        return
    from harness.cli import interrupt_on_sigterm
    from harness.errors import ColobenchError
    from harness.run import session as sess

    config = session.config
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    run_id = _run_id(config) + (f"-{worker}" if worker else "")
    try:
        config.stash[_SESSION] = sess.open_session(
            Path(config.option.reports_dir),
            run_id,
            baseline=config.getoption("--baseline"),
            keep_history=not config.getoption("--no-history"),
            retries=config.option.retries,
            title=f"pytest {run_id}",
            ray_address=config.getoption("--ray-address"),
        )
    except ColobenchError as exc:
        raise pytest.UsageError(f"colobench: {exc}") from None
    interrupt_on_sigterm()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On the xdist controller, merge the workers' run folders into one."""
    config = session.config
    if getattr(config, "workerinput", None) is not None or _RUN_ID not in config.stash:
        return
    from harness.errors import ColobenchError
    from harness.report import summary

    runs = Path(config.option.reports_dir) / "runs"
    run_id = config.stash[_RUN_ID]
    parts = sorted(runs.glob(f"{run_id}-gw*"))
    if parts:
        try:
            summary.merge(parts, runs / run_id, f"pytest {run_id}")
        except ColobenchError:
            pass  # a worker that ran nothing has no results: nothing to merge


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    verdicts = config.stash.get(_VERDICTS, [])
    shown = [v for v in verdicts if v[1] != "pass"]
    if shown:
        terminalreporter.section("colobench verdicts")
        for sid, verdict, reason in shown:
            terminalreporter.write_line(f"{verdict}: {sid}: {reason[:300]}")
