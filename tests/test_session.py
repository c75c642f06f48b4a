"""run/session.py: one wiring of baselines and history, and what an interrupt leaves behind."""

import pytest
from junitparser import JUnitXml

from harness.judge.result import ScenarioResult
from harness.judge.verdict import Verdict
from harness.matrix import models, scenario
from harness.run import execute, session
from harness.store import history


def three(write_matrix):
    path = write_matrix(
        "schema: 1\ndefaults: {engine: reference}\ninclude: [{model: tiny-llama, tag: a}, "
        "{model: tiny-llama, tag: b}, {model: tiny-llama, tag: c}]\n"
    )
    return scenario.load(path, models.load()).scenarios


def test_an_interrupt_lists_every_scenario_and_marks_the_history(tmp_path, write_matrix, monkeypatch, run_cli):
    scenarios = three(write_matrix)
    calls = iter(["pass", "interrupt"])

    def fake(s, root, options):
        if next(calls) == "interrupt":
            raise KeyboardInterrupt
        res = ScenarioResult(s.id, Verdict.PASS, "", run_dir=str(root / s.id), properties={"python": "python3"})
        res.save(root / s.id)
        return res

    monkeypatch.setattr(execute, "run_scenario", fake)
    sess = session.open_session(tmp_path, "int", baseline="none")
    with pytest.raises(KeyboardInterrupt):
        sess.run(scenarios)
    verdicts = [(r.scenario_id.rsplit(".", 1)[1], r.verdict.value, r.reason) for r in sess.results]
    assert verdicts == [
        ("a", "pass", ""),
        ("b", "interrupted", "interrupted while running"),
        ("c", "skipped", "not run: interrupted"),
    ]
    cases = [c for s in JUnitXml.fromfile(str(tmp_path / "runs" / "int" / "junit.xml")) for c in s]
    assert len(cases) == 3 and cases[1].result[0].type == "interrupted"
    assert "interrupted (1 of 3 scenarios finished)" in (tmp_path / "runs" / "int" / "summary.md").read_text()
    assert history.HistoryStore(tmp_path / "history.sqlite").interrupted_runs() == ["int"]
    code, out, _ = run_cli("report", tmp_path / "runs" / "int", "--no-write")
    assert code == 0 and "interrupted (1 of 3 scenarios finished)" in out  # the folder renders as it ended


def test_a_skipped_row_never_builds_an_environment(tmp_path, write_matrix, monkeypatch):
    monkeypatch.setenv("COLOBENCH_GPUS", "")
    path = write_matrix(
        'schema: 1\ndefaults: {engine: sglang, sglang: "0.5.12"}\naxes: {model: [tiny-llama], tp: [2]}\n'
    )
    (s,) = scenario.load(path, models.load()).scenarios
    asked = []
    sess = session.open_session(tmp_path, "skip", python=lambda sc: asked.append(sc) or "python3")
    res = sess.run_one(s)
    assert res.verdict == Verdict.SKIPPED and "needs 2 GPUs" in res.reason and asked == []
    assert history.HistoryStore(tmp_path / "history.sqlite").runs() == []  # nothing ran, nothing recorded


def test_bad_run_id_and_corrupted_history_are_one_line_errors_before_anything_runs(tmp_path):
    with pytest.raises(Exception, match="--run-id '../../etc': expected letters"):
        session.open_session(tmp_path, "../../etc")
    assert not (tmp_path / "history.sqlite").exists() and not (tmp_path / "runs").exists()
    (tmp_path / "history.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(Exception, match="cannot open the history database"):
        session.open_session(tmp_path, "ok")
    assert not (tmp_path / "runs").exists()
