"""`pytest suites/` over matrix/: collection, selection, markers, skips, xdist."""

import os
import subprocess
import sys

from junitparser import JUnitXml, Properties

from harness import cli
from harness.matrix import models, scenario
from harness.store import history
from tests.conftest import REPO


def pytest_run(*args, env=None):
    full = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=full,
        timeout=600,
    )


def all_scenarios():
    return scenario.load_many(scenario.matrix_files(REPO / "matrix"), models.load()).scenarios


def collected(out: str) -> set[str]:
    return {line.rsplit("::", 1)[1] for line in out.splitlines() if "::" in line}


def test_k_colocate_collects_exactly_the_colocate_scenarios():
    res = pytest_run("-k", "colocate", "--collect-only", "-q")
    assert res.returncode == 0, res.stdout + res.stderr
    assert collected(res.stdout) == {s.id for s in all_scenarios() if s.axes["colocate"]}


def test_k_expression_and_markers_select():
    res = pytest_run("-k", "tp2 and arv2", "-m", "gpu", "--collect-only", "-q")
    ids = collected(res.stdout)
    assert ids and all("tp2" in i and "arv2" in i for i in ids)
    cpu = collected(pytest_run("-m", "cpu and fault", "--collect-only", "-q").stdout)
    assert cpu == {s.id for s in all_scenarios() if "fault" in s.markers}


def test_gpu_scenarios_are_skipped_with_the_reason_when_gpus_are_missing():
    res = pytest_run(
        "-k",
        "tp2 and arv2 and cvd1 and sglang-0.5.12 and not standalone and colocate",
        "-rs",
        env={"COLOBENCH_GPUS": ""},
    )
    assert "needs 2 GPUs, 0 visible" in res.stdout and res.returncode == 0


def test_external_scenarios_run_under_xdist_with_report_folders_per_worker(tmp_path):
    res = pytest_run(
        "--matrix",
        str(REPO / "matrix" / "external.yaml"),
        "-n",
        "2",
        "--reports-dir",
        str(tmp_path),
        "-k",
        "ext-pass or ext-crash or ext-miss or ext-forbid",
        env={"COLOBENCH_RUN_ID": "xd"},
    )
    assert res.returncode == 0, res.stdout[-2000:]
    assert "4 passed" in res.stdout
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert folders == ["xd", "xd-gw0", "xd-gw1"]  # the workers' folders, and their merge
    assert all((tmp_path / "runs" / f / "junit.xml").exists() for f in folders)
    merged = JUnitXml.fromfile(str(tmp_path / "runs" / "xd" / "junit.xml"))
    assert len([c for s in merged for c in s]) == 4


def test_bad_matrix_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: 1\naxes: {model: [nope]}\n")
    res = pytest_run("--matrix", str(bad), "--collect-only", "-q")
    assert res.returncode == 4 and "unknown model 'nope'" in res.stderr


def test_k_matches_the_matrix_name_and_pytest_dot_works_from_the_root():
    smoke = collected(pytest_run("-k", "smoke", "--collect-only", "-q").stdout)
    assert smoke == {s.id for s in all_scenarios() if s.matrix == "smoke"}
    res = subprocess.run(
        [sys.executable, "-m", "pytest", ".", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    ids = [line for line in res.stdout.splitlines() if "::" in line]
    assert any(line.startswith("tests/") for line in ids) and any("suites/test_scenarios.py::smoke::" in x for x in ids)
    assert len(ids) == len(set(ids))  # matrix/ is not collected a second time


def _case_props(run_dir):
    (case,) = [c for s in JUnitXml.fromfile(str(run_dir / "junit.xml")) for c in s]
    props = {p.name: p.value for p in case.child(Properties)}
    drop = ("run_dir", "python")  # where it ran, not what it showed
    return case.result[0].type if case.result else "pass", {
        k: v for k, v in props.items() if k not in drop and not k.startswith("metric.")
    }


def test_cli_and_pytest_give_the_same_verdict_history_rows_and_junit_properties(tmp_path):
    matrix = REPO / "matrix" / "external.yaml"
    code = cli.main(
        [
            "run",
            "--matrix",
            str(matrix),
            "-k",
            "ext-crash",
            "--reports-dir",
            str(tmp_path / "a"),
            "--run-id",
            "cli",
            "--retries",
            "0",
        ]
    )
    res = pytest_run(
        "--matrix",
        str(matrix),
        "-k",
        "ext-crash",
        "--reports-dir",
        str(tmp_path / "b"),
        "--retries",
        "0",
        env={"COLOBENCH_RUN_ID": "pt"},
    )
    assert code == 0 and res.returncode == 0, res.stdout[-2000:]  # the expected failure was caught both ways
    rows = [history.HistoryStore(tmp_path / side / "history.sqlite").runs() for side in ("a", "b")]
    assert [(r["scenario_id"], r["verdict"]) for r in rows[0]] == [(r["scenario_id"], r["verdict"]) for r in rows[1]]
    assert len(rows[0]) == 1
    assert _case_props(tmp_path / "a" / "runs" / "cli") == _case_props(tmp_path / "b" / "runs" / "pt")


def test_the_old_option_spellings_still_work_with_a_deprecation_line(tmp_path):
    res = pytest_run(
        "--matrix",
        str(REPO / "matrix" / "external.yaml"),
        "-k",
        "ext-pass",
        "--report-dir",
        str(tmp_path),
        "--colobench-retries",
        "0",
        env={"COLOBENCH_RUN_ID": "old"},
    )
    assert res.returncode == 0, res.stdout[-2000:]
    said = res.stdout + res.stderr
    assert "--report-dir is deprecated; use --reports-dir" in said and "--colobench-retries is deprecated" in said
    assert (tmp_path / "runs" / "old" / "junit.xml").is_file()
