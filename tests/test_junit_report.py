import os

from junitparser import Error, Failure, JUnitXml, Properties, Skipped

from harness.judge.result import ScenarioResult
from harness.judge.verdict import Verdict
from harness.report import junit, summary


def results():
    return [
        ScenarioResult(
            "a.tp1.colocate.ref",
            Verdict.PASS,
            "",
            1.5,
            "/r/a",
            {"weight_sync_s": [0.1, 0.3]},
            properties={"version.torch": "2.13.0", "scenario.source": "matrix/smoke.yaml"},
        ),
        ScenarioResult(
            "b.tp1.colocate.ref",
            Verdict.REGRESSED,
            "weights mismatch",
            2.0,
            "/r/b",
            diagnosis={
                "signature": "weights-mismatch-after-sync",
                "layer": "trainer",
                "where": "runner:3",
                "cause": "c",
                "fix": "f",
            },
            error_lines=["runner:3> boom"],
        ),
        ScenarioResult("c.tp2.colocate.sglang-0.5.12", Verdict.INFRA_ERROR, "port in use", 0.5, "/r/c"),
        ScenarioResult("d.tp4.colocate.sglang-0.5.12", Verdict.SKIPPED, "needs 4 GPUs, 2 visible"),
        ScenarioResult("e.tp1.colocate.ref", Verdict.INCONCLUSIVE, "p=0.3"),
    ]


def test_junit_parses_back_with_verdicts_properties_and_output(tmp_path):
    path = junit.write(results(), tmp_path / "junit.xml")
    xml = JUnitXml.fromfile(str(path))
    cases = {c.name: c for suite in xml for c in suite}
    assert isinstance(cases["b.tp1.colocate.ref"].result[0], Failure)
    assert cases["b.tp1.colocate.ref"].result[0].message == "weights mismatch"
    assert isinstance(cases["c.tp2.colocate.sglang-0.5.12"].result[0], Error)
    assert isinstance(cases["d.tp4.colocate.sglang-0.5.12"].result[0], Skipped)
    assert "inconclusive" in cases["e.tp1.colocate.ref"].result[0].message
    assert cases["a.tp1.colocate.ref"].is_passed
    props = {p.name: p.value for p in cases["a.tp1.colocate.ref"].child(Properties)}
    assert props["metric.weight_sync_s"] == "0.2" and props["version.torch"] == "2.13.0" and props["run_dir"] == "/r/a"
    assert "runner:3> boom" in cases["b.tp1.colocate.ref"].system_out
    assert not (tmp_path / "junit.xml.tmp").exists()


def test_summary_has_table_details_and_stays_under_1_mib(monkeypatch, tmp_path):
    many = results() + [
        ScenarioResult(f"x{i}", Verdict.REGRESSED, "y" * 2000, error_lines=["z" * 300] * 12) for i in range(600)
    ]
    text = summary.summary_markdown(many)
    assert len(text.encode()) <= summary.MAX_SUMMARY_BYTES
    assert "## colobench run: regressed" in text
    step = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    summary.append_step_summary(summary.summary_markdown(results()))
    body = step.read_text()
    assert "weights-mismatch-after-sync" in body and "| a.tp1.colocate.ref" in body


def test_context_diff_shows_what_differs():
    a = {"engine-launcher": {"env": {"RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES": "1"}, "base_gpu_id": 0}}
    b = {"engine-launcher": {"env": {}, "base_gpu_id": 0}}
    assert summary.context_diff(a, b) == [
        ("engine-launcher.env.RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES", "1", "(unset)")
    ]


def test_load_run_reads_results_back(tmp_path):
    for r in results()[:2]:
        folder = tmp_path / r.scenario_id
        folder.mkdir()
        r.save(folder)
    assert [r.scenario_id for r in summary.load_run(tmp_path)] == ["a.tp1.colocate.ref", "b.tp1.colocate.ref"]
    assert os.path.exists(tmp_path / "a.tp1.colocate.ref" / "result.json")
