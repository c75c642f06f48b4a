"""Shared fixtures: in-memory history, matrix files in tmp_path, the fake runner, the CLI."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from harness import cli
from harness.matrix import models
from harness.store import history

REPO = Path(__file__).resolve().parent.parent
FAKE_RUNNER = REPO / "tests" / "fake_runner.py"
DATA = REPO / "tests" / "data"


@pytest.fixture(autouse=True)
def quiet_host(monkeypatch):
    """No host probe unless a test asks for one: a gate decision in a test must not hang on this box's CPU jitter
    (tests/test_hostprobe.py measures and simulates noise itself)."""
    monkeypatch.setenv("COLOBENCH_HOST_PROBE", "off")


@pytest.fixture
def store():
    s = history.HistoryStore(":memory:")
    yield s
    s.close()


@pytest.fixture
def known_models():
    return models.load()


@pytest.fixture
def write_matrix(tmp_path):
    """write_matrix(yaml_text) -> path of a matrix file in tmp_path."""
    counter = iter(range(1000))

    def write(text: str) -> Path:
        path = tmp_path / f"m{next(counter)}.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def external(write_matrix):
    """external(mode, **row) -> a matrix file with one fake-runner scenario."""

    def make(mode: str, extra: str = "", timeout: float = 20) -> Path:
        return write_matrix(f"""
            schema: 1
            defaults: {{model: tiny-llama, colocate: off, timeout_s: {timeout}}}
            include:
              - tag: {mode}
                runner: {{command: ["{sys.executable}", "{FAKE_RUNNER}", "{mode}"]}}
                {extra}
            """)

    return make


@pytest.fixture
def run_cli(capsys):
    """run_cli(*argv) -> (exit code, stdout, stderr)."""

    def run(*argv: str):
        code = cli.main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
