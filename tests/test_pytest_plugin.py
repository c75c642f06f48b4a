"""`pytest suites/` over matrix/: collection, selection, markers, skips, xdist."""

import os
import subprocess
import sys

from harness import models, scenario
from tests.conftest import REPO


def pytest_run(*args, env=None):
    full = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", *args], cwd=REPO,
                          capture_output=True, text=True, env=full, timeout=600)


def all_scenarios():
    return scenario.load_many(scenario.matrix_files(REPO / "matrix"), models.load()).scenarios


def collected(out: str) -> set[str]:
    return {line.split("::", 1)[1] for line in out.splitlines() if "::" in line}


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
    res = pytest_run("-k", "tp2 and arv2 and cvd1 and sglang-0.5.12 and not standalone and colocate", "-rs",
                     env={"COLOBENCH_GPUS": ""})
    assert "needs 2 GPUs, 0 visible" in res.stdout and res.returncode == 0


def test_external_scenarios_run_under_xdist_with_report_folders_per_worker(tmp_path):
    res = pytest_run("--matrix", str(REPO / "matrix" / "external.yaml"), "-n", "2", "--report-dir", str(tmp_path),
                     "-k", "ext-pass or ext-crash or ext-miss or ext-forbid", env={"COLOBENCH_RUN_ID": "xd"})
    assert res.returncode == 0, res.stdout[-2000:]
    assert "4 passed" in res.stdout
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert folders == ["xd-gw0", "xd-gw1"]
    assert all((tmp_path / "runs" / f / "junit.xml").exists() for f in folders)


def test_bad_matrix_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: 1\naxes: {model: [nope]}\n")
    res = pytest_run("--matrix", str(bad), "--collect-only", "-q")
    assert res.returncode == 4 and "unknown model 'nope'" in res.stderr
