"""Runs through the real launcher with the fake runner: crash, hang, missing events, malformed events, leaks."""

import json
import os
import shutil
import sys

import pytest

from harness.judge.verdict import Verdict
from harness.matrix import models, scenario
from harness.report import junit
from harness.run import execute, launch
from tests.conftest import FAKE_RUNNER


def one(path):
    return scenario.load(path, models.load()).scenarios[0]


def run(path, tmp_path, retries=0):
    return execute.run_scenario(one(path), tmp_path / "run", execute.Options(infra_retries=retries))


def test_external_pass_writes_the_run_folder(external, tmp_path):
    res = run(external("pass"), tmp_path)
    assert res.verdict == Verdict.PASS, res.reason
    folder = tmp_path / "run" / res.scenario_id
    assert {"scenario.json", "events.jsonl", "runner.log", "result.json"} <= {p.name for p in folder.iterdir()}
    assert res.metrics["weight_sync_s"] == [0.01, 0.02]
    assert oct(folder.stat().st_mode & 0o777) in ("0o750", "0o700")  # never world-writable


def test_crash_is_regressed_with_the_first_causal_error(external, tmp_path):
    res = run(external("crash"), tmp_path)
    assert res.verdict == Verdict.REGRESSED
    assert "runner exited with code 1" in res.reason
    assert res.diagnosis["signature"] == "custom-allreduce-capture-invalid-argument"
    assert any(">" in line for line in res.error_lines)


def test_hang_is_killed_at_the_timeout_with_the_whole_group(external, tmp_path):
    res = run(external("hang", timeout=3), tmp_path)
    assert res.verdict == Verdict.REGRESSED and "timed out after 3s" in res.reason
    assert res.duration_s < 10
    folder = tmp_path / "run" / res.scenario_id
    assert "colobench: runner timed out after 3s (process group killed)" in (folder / "runner.log").read_text()
    if launch._stack_dump.__module__ and shutil.which("py-spy", path=os.path.dirname(sys.executable)):
        dumps = list(folder.glob("py-spy-*.txt"))
        assert dumps and "fake_runner.py" in dumps[0].read_text()  # where it was stuck


def test_hang_before_the_engine_came_up_is_infra_and_retried_once(external, tmp_path):
    res = run(external("hang-early", timeout=2), tmp_path, retries=1)
    assert res.verdict == Verdict.INFRA_ERROR and "before the engine came up" in res.reason
    assert len(res.attempts) == 1


def test_missing_events_file_from_the_builtin_runner_is_infra_error(tmp_path, write_matrix):
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\necho bye\n")
    fake_python.chmod(0o755)
    s = one(write_matrix("schema: 1\ndefaults: {engine: reference, timeout_s: 10}\naxes: {model: [tiny-llama]}\n"))
    res = execute.run_scenario(s, tmp_path / "x", execute.Options(python=lambda _: str(fake_python), infra_retries=0))
    assert res.verdict == Verdict.INFRA_ERROR and "wrote no events.jsonl" in res.reason


def test_malformed_event_line_is_infra_error_and_retried_once(external, tmp_path):
    res = run(external("malformed"), tmp_path, retries=1)
    assert res.verdict == Verdict.INFRA_ERROR and "not a JSON event" in res.reason
    assert len(res.attempts) == 1 and (tmp_path / "run" / f"{res.scenario_id}.retry1").is_dir()
    xml = junit.build([res])
    (case,) = [case for suite in xml for case in suite]  # one testcase; the earlier attempt a Surefire rerun
    assert case.name == res.scenario_id and [e.tag for e in case._elem if e.tag.startswith("rerun")] == ["rerunError"]


def test_leaked_process_is_killed_and_named(external, tmp_path):
    res = run(external("leak"), tmp_path)
    assert res.verdict == Verdict.INFRA_ERROR
    assert "left behind: process" in res.reason and "time.sleep(600)" in res.reason


def test_argv_values_reach_the_program_as_one_argument(tmp_path, write_matrix):
    path = write_matrix(f"""
        schema: 1
        defaults: {{model: tiny-llama, timeout_s: 10}}
        include: [{{tag: argv, runner: {{command: ["{sys.executable}", "{FAKE_RUNNER}", "argv", "x; rm -rf ~", "$(id)"]}}}}]
        """)
    res = run(path, tmp_path)
    log = (tmp_path / "run" / res.scenario_id / "runner.log").read_text()
    assert 'argv: ["x; rm -rf ~", "$(id)"]' in log


def test_secrets_are_masked_in_the_run_folder(tmp_path, write_matrix, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_supersecretvalue123456789")
    path = write_matrix(f"""
        schema: 1
        defaults: {{model: tiny-llama, timeout_s: 10}}
        include: [{{tag: sec, runner: {{command: ["{sys.executable}", "{FAKE_RUNNER}", "secret"]}}}}]
        """)
    res = run(path, tmp_path)
    folder = tmp_path / "run" / res.scenario_id
    text = "".join(p.read_text() for p in folder.iterdir() if p.is_file())
    assert "supersecretvalue" not in text and "hf_abcdefghijklmnop" not in text
    assert "***" in (folder / "runner.log").read_text()


def test_secrets_are_masked_by_shape_and_by_name_however_short(tmp_path, write_matrix):
    token, url_pass = "ghp_" + "Zq8" * 12, "pg-pw-77x"
    path = write_matrix(f"""
        schema: 1
        defaults: {{model: tiny-llama, timeout_s: 10}}
        include:
          - tag: sec
            runner: {{command: ["{sys.executable}", "{FAKE_RUNNER}", "secret"]}}
            env: {{T_NOTE: {token}, T_DB: "postgres://app:{url_pass}@db:5432/x", T_SHORT_KEY: q7, T_BASIC_AUTH: zz9,
                   T_PLAIN: visible-value}}
        """)
    res = run(path, tmp_path)
    folder = tmp_path / "run" / res.scenario_id
    text = "".join(p.read_text() for p in folder.iterdir() if p.is_file())
    for secret in (token, url_pass, "=q7", "=zz9", '"q7"', '"zz9"'):
        assert secret not in text, secret
    assert "visible-value" in text and "postgres://app:***@db:5432/x" in (folder / "runner.log").read_text()
    assert json.loads((folder / "scenario.json").read_text())["settings"]["env"]["T_SHORT_KEY"] == "***"


@pytest.mark.parametrize(
    "mode,expect", [("crash", "custom-allreduce-capture-invalid-argument"), ("miss-milestone", "milestone:engine up")]
)
def test_expected_failures_pass_only_when_they_happen(mode, expect, tmp_path, write_matrix):
    def matrix(m):
        return write_matrix(f"""
            schema: 1
            defaults: {{model: tiny-llama, timeout_s: 10, milestones: [{{name: engine up, log: 'fired up'}}]}}
            include: [{{tag: t{m.replace("-", "")}, expect: {{fail: "{expect}"}},
                        runner: {{command: ["{sys.executable}", "{FAKE_RUNNER}", "{m}"]}}}}]
            """)

    assert run(matrix(mode), tmp_path / "a").verdict == Verdict.PASS
    res = run(matrix("pass"), tmp_path / "b")
    assert res.verdict == Verdict.REGRESSED and "did not occur" in res.reason


def test_result_json_round_trips(external, tmp_path):
    res = run(external("pass"), tmp_path)
    data = json.loads((tmp_path / "run" / res.scenario_id / "result.json").read_text())
    assert data["verdict"] == "pass" and data["schema"] == 1


def test_repeats_keep_each_runs_samples_and_pool_them_once(external, tmp_path, monkeypatch):
    import dataclasses

    from harness.judge.result import ScenarioResult

    s = one(external("pass"))
    s = dataclasses.replace(s, settings=s.settings.replace(repeat=2))
    reps = iter([{"weight_sync_s": [1.0, 2.0]}, {"weight_sync_s": [3.0]}])
    monkeypatch.setattr(
        execute,
        "_with_retries",
        lambda sc, root, opts, rep: ScenarioResult(sc.id, Verdict.PASS, "", duration_s=10.0, metrics=next(reps)),
    )
    res = execute.run_scenario(s, tmp_path / "run")
    assert res.duration_s == 20.0  # the time of both repetitions, not the last one
    assert res.metrics == {"weight_sync_s": [1.0, 2.0, 3.0]}
    assert res.runs() == [{"weight_sync_s": [1.0, 2.0]}, {"weight_sync_s": [3.0]}]


def test_a_runner_that_ignores_sigterm_is_killed_and_nothing_is_left(external, tmp_path):
    res = run(external("ignore-term", timeout=2), tmp_path)
    assert res.verdict == Verdict.INFRA_ERROR and "timed out after 2s" in res.reason  # before the engine came up
    assert res.duration_s < 15  # SIGKILL after the grace
    assert not any(str(tmp_path) in env for _, env in _processes_running("ignore-term"))  # by its run folder


def _processes_running(word: str) -> list[tuple[int, str]]:
    found = []
    for entry in __import__("pathlib").Path("/proc").iterdir():
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and word in cmd:
            found.append((int(entry.name), env))
    return found


def test_a_frameworks_own_log_lines_give_gateable_metrics(tmp_path, write_matrix):
    path = write_matrix(f"""
        schema: 1
        defaults: {{model: tiny-llama, timeout_s: 10, warmup_steps: 1}}
        include:
          - tag: fw
            runner: {{command: ["{sys.executable}", "{FAKE_RUNNER}", "framework-log"]}}
            milestones: [{{name: three steps, log: '^step:\\d+ - ', min: 3}}]
            log_metrics:
              line: '^step:\\d+ - '
              step: '^step:(\\d+)'
              values:
                rollout_s: 'timing_s/gen:([0-9.]+)'
                weight_sync_s: 'timing_s/update_weights:([0-9.]+)'
                throughput_tokens_per_s: 'perf/throughput:([0-9.]+)'
            metrics: {{weight_sync_s: {{max: 0.035}}}}
        """)
    res = run(path, tmp_path)
    assert res.metrics["rollout_s"] == [0.52, 0.53]  # step 1 is the warm-up: not sampled
    assert res.metrics["throughput_tokens_per_s"] == [1200.0, 1200.0]
    assert res.verdict == Verdict.REGRESSED and "weight_sync_s: 0.04 > max 0.035" in res.reason
