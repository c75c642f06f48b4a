"""The colobench command end to end: one-line errors, exit codes, run/report/list/triage, interrupts."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from junitparser import JUnitXml

from harness.cli import VERBS, build_parser
from tests.conftest import DATA, REPO


def test_list_shows_the_table_and_dropped_combinations(run_cli, write_matrix):
    path = write_matrix("schema: 1\naxes: {model: [tiny-llama], ep: [1, 2]}\n")
    code, out, _ = run_cli("list", "--matrix", path, "--all")
    assert code == 0 and "tiny-llama.tp1.colocate.ref" in out
    assert "expert parallelism needs a MoE model" in out


def test_list_ids_with_k_filter(run_cli):
    code, out, _ = run_cli(
        "list", "--matrix", REPO / "matrix" / "bump.yaml", "-k", "tp2 and arv2 and cvd1 and colocate", "--ids"
    )
    ids = out.split()
    assert code == 0 and ids and all("tp2" in i and "arv2" in i and "cvd1" in i and ".colocate." in i for i in ids)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["list", "--matrix", "nope.yaml"], "nope.yaml: no such matrix file or folder"),
        (["run", "--matrix", "{bad}", "--no-history"], ":1: schema: expected 1"),
        (["run", "--matrix", "{ext}", "-k", "zzz", "--no-history"], "no scenario selected"),
        (["run", "--matrix", "{ext}", "--baseline", "banana", "--no-history"], "--baseline 'banana'"),
        (["run", "--matrix", "{ext}", "--inject", "sync_slowdown:fast", "--no-history"], "is not a number"),
        (["report", "/nonexistent/run"], "no such run folder"),
        (["triage", "/nonexistent/logs"], "no such folder or file"),
        (["baseline", "promote", "nope"], "no run 'nope' in the history"),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_exit_2(argv, needle, run_cli, tmp_path, external):
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: 9\n")
    ext = external("pass")
    argv = [a.replace("{bad}", str(bad)).replace("{ext}", str(ext)) for a in argv]
    if argv[0] in ("run", "baseline"):
        argv += ["--reports-dir", str(tmp_path / "reports")]
    code, _, err = run_cli(*argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("colobench: ") and needle in err, err


def test_run_writes_junit_and_summary_and_exits_by_verdict(run_cli, tmp_path):
    reports = tmp_path / "reports"
    code, _, err = run_cli(
        "run", "--matrix", REPO / "matrix" / "external.yaml", "--reports-dir", reports, "--run-id", "ext"
    )
    assert code == 0, err  # every expected failure was caught
    run_dir = reports / "runs" / "ext"
    xml = JUnitXml.fromfile(str(run_dir / "junit.xml"))
    assert len([c for s in xml for c in s]) == 5
    assert "failed as expected" in (run_dir / "summary.md").read_text()
    code, out, _ = run_cli("report", run_dir, "--no-write")
    assert code == 0 and "ext-crash" in out
    assert (reports / "history.sqlite").exists()


def test_regression_exits_1_and_bisect_codes_map(run_cli, tmp_path, external):
    ext = external("crash")
    code, _, _ = run_cli("run", "--matrix", ext, "--no-history", "--reports-dir", tmp_path, "--retries", "0")
    assert code == 1
    code, _, _ = run_cli(
        "run",
        "--matrix",
        external("malformed"),
        "--no-history",
        "--reports-dir",
        tmp_path,
        "--retries",
        "0",
        "--bisect-exit-codes",
    )
    assert code == 125


def test_triage_verb_on_a_foreign_log_folder(run_cli, tmp_path):
    (tmp_path / "miles").mkdir()
    (tmp_path / "miles" / "sglang.log").write_text((DATA / "ref002_failure.log").read_text())
    code, out, _ = run_cli("triage", tmp_path)
    assert code == 1 and out.startswith("custom-allreduce-capture-invalid-argument [sglang")


def _spawn(argv, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not path.exists() and time.time() < deadline:
        time.sleep(0.2)


def pass_then_hang(write_matrix, first: str, second: str) -> tuple:
    """(matrix, the pgrep pattern of its hanging runner: unique, as xdist runs the other such test alongside)."""
    marker = f"hang {uuid.uuid4().hex}"
    return write_matrix(f"""
        schema: 1
        defaults: {{model: tiny-llama, colocate: off, timeout_s: 60}}
        include:
          - {{tag: {first}, runner: {{command: ["{sys.executable}", "{REPO}/tests/fake_runner.py", "pass"]}}}}
          - {{tag: {second}, runner: {{command: ["{sys.executable}", "{REPO}/tests/fake_runner.py", "{marker.replace(" ", '", "')}"]}}}}
        """), f"fake_runner.py {marker}"


def test_sigint_to_run_keeps_valid_reports_and_kills_the_runner(tmp_path, write_matrix):
    m, hanging = pass_then_hang(write_matrix, "first", "second")
    proc = _spawn(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--matrix",
            str(m),
            "--reports-dir",
            str(tmp_path),
            "--run-id",
            "int",
            "--no-history",
        ],
        tmp_path,
    )
    _wait_for(tmp_path / "runs" / "int" / "tiny-llama.tp1.split.ref.second" / "runner.log")
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    xml = JUnitXml.fromfile(str(tmp_path / "runs" / "int" / "junit.xml"))
    cases = {c.name: c for s in xml for c in s}
    assert list(cases) == ["tiny-llama.tp1.split.ref.first", "tiny-llama.tp1.split.ref.second"]  # every selected one
    assert cases["tiny-llama.tp1.split.ref.first"].is_passed
    assert cases["tiny-llama.tp1.split.ref.second"].result[0].type == "interrupted"
    assert "interrupted (1 of 2 scenarios finished)" in (tmp_path / "runs" / "int" / "summary.md").read_text()
    leftover = subprocess.run(["pgrep", "-f", hanging], capture_output=True, text=True).stdout
    assert leftover.strip() == ""


def test_sigint_to_pytest_suites_under_xdist(tmp_path, write_matrix):
    m, hanging = pass_then_hang(write_matrix, "a", "b")
    proc = _spawn(
        [
            sys.executable,
            "-m",
            "pytest",
            str(REPO / "suites"),
            "-p",
            "no:cacheprovider",
            "-n",
            "2",
            "--matrix",
            str(m),
            "--reports-dir",
            str(tmp_path),
            "--junitxml",
            str(tmp_path / "pytest.xml"),
            "-q",
        ],
        tmp_path,
    )
    deadline = time.time() + 90
    while time.time() < deadline and not list(tmp_path.glob("runs/*/*.ref.b/runner.log")):
        time.sleep(0.3)
    time.sleep(1.5)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    JUnitXml.fromfile(str(tmp_path / "pytest.xml"))  # still valid XML
    leftover = subprocess.run(["pgrep", "-f", hanging], capture_output=True, text=True).stdout
    assert leftover.strip() == "", out


def test_unwritable_report_folder_is_a_one_line_error(run_cli, tmp_path, external):
    if os.geteuid() == 0:
        target = "/proc/colobench-cannot-write"
    else:
        target = tmp_path / "ro"
        target.mkdir(mode=0o500)
    code, _, err = run_cli("run", "--matrix", external("pass"), "--reports-dir", target, "--no-history")
    assert code == 2 and err.count("\n") == 1 and "cannot create the run folder" in err


@pytest.mark.parametrize("verb", [[]] + [[v.NAME] for v in VERBS])
def test_help_renders_for_every_verb(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(verb + ["--help"])
    assert exc.value.code == 0 and "usage: colobench" in capsys.readouterr().out
