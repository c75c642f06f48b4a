"""benchmarks/gpu_power.py's analysis on pools made here: a clear shift is detected, no shift raises no alarm."""

import dataclasses
import json
import random
import sys

import pytest

from harness import REPO_ROOT
from harness.errors import ColobenchError
from harness.judge.result import ScenarioResult
from harness.judge.verdict import Verdict
from harness.matrix import scenario

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import gpu_power
import power_stats


def pool(folder, side, n, scale, rng, sync_scale=1.0):
    for i in range(n):
        samples = {"rollout_tokens_per_s": [1000 * scale * rng.gauss(1, 0.01) for _ in range(5)],
                   "weight_sync_s": [0.5 * sync_scale * rng.gauss(1, 0.01) for _ in range(5)],
                   "train_step_s": [0.3 * rng.gauss(1, 0.01) for _ in range(5)]}
        ScenarioResult(f"s.{side}{i}", Verdict.PASS, "", metrics=samples,
                       properties={"version.gpu": "X", "axis.model": "m3.1-8b"},
                       timings={"engine_start_s": 40.0, "first_step_s": 50.0, "total_s": 70.0},
                       ).save(folder / side / f"s.{side}{i}")


def test_analysis_detects_a_clear_regression_and_keeps_quiet_on_none(tmp_path):
    rng = random.Random(1)
    pool(tmp_path, "a", 10, 1.0, rng)
    pool(tmp_path, "b", 10, 0.8, rng, sync_scale=1.0)            # tokens/s 20 % down, sync unchanged
    ScenarioResult("s.bad", Verdict.REGRESSED, "x", metrics={}).save(tmp_path / "b" / "s.bad")
    (tmp_path / "a" / "s.killed").mkdir()                          # killed before it wrote a result
    (tmp_path / "pools.json").write_text(json.dumps({"scenario": "m.tp1", "b_args": "chunked_prefill_size=512",
                                                      "b_inject": None}))
    assert gpu_power.main(["analyze", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    rows = json.loads((tmp_path / "out" / "power.json").read_text())
    by = {(r["metric"], r["runs_per_side"]): r for r in rows}
    assert set(rows[0]) >= {"metric", "effect", "runs_per_side", "decisions", "detected", "unchanged_decisions",
                            "false_alarms", "device", "sglang", "model"}
    assert by["rollout_tokens_per_s", 5]["detected"] == by["rollout_tokens_per_s", 5]["decisions"]
    assert by["rollout_tokens_per_s", 3]["detected"] == 0          # Mann-Whitney cannot reach p < 0.05 with 3 + 3
    assert by["weight_sync_s", 8]["detected"] < by["weight_sync_s", 8]["decisions"] * 0.05
    assert all(r["false_alarms"] < r["unchanged_decisions"] * 0.05 for r in rows if r["runs_per_side"] <= 5)
    assert by["rollout_tokens_per_s", 8]["false_alarms"] is None              # 16 disjoint unchanged runs needed
    assert rows[0]["effect"] == "args:chunked_prefill_size=512" and rows[0]["pool_b"] == 10
    assert rows[0]["model"] == "m3.1-8b"                                     # a dot in the model's name stays
    shifted = {(x["metric"], x["runs_per_side"], x["threshold"]): x
               for x in json.loads((tmp_path / "out" / "power-extra.json").read_text())["shifted"]}
    assert shifted["weight_sync_s", 5, "2%"]["detected"] == 2000            # 1% noise: a 5% rise is always seen
    assert shifted["weight_sync_s", 5, "10%"]["detected"] == 0              # beyond the default 10% threshold
    assert shifted["weight_sync_s", 8, "2%"]["detected"] is None            # 16 disjoint runs needed
    text = (tmp_path / "out" / "power.md").read_text()
    assert "10 A runs, 10 B runs (runs left out, failed or without a result: {'a': 1, 'b': 1})" in text
    assert "engine_start_s" in text
    extra = json.loads((tmp_path / "out" / "power-extra.json").read_text())
    assert extra["runs_needed"]["train_step_s"] == 4 and "Runs a side for 95% detection" in text


def test_bad_input_is_one_line_not_a_traceback(tmp_path, capsys):
    assert gpu_power.main(["analyze", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert gpu_power.main(["pools", "--matrix", str(REPO_ROOT / "matrix" / "perf.yaml"), "-k",
                           "llama3.1-8b-shape and not mcore", "--pairs", "1", "--out", str(tmp_path / "p"),
                           "--b-args", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "pools.json" in err and "expected KEY=VALUE" in err


def test_pools_never_mix_two_b_sides_in_one_folder(tmp_path, capsys):
    out = tmp_path / "p"
    out.mkdir()
    earlier = {"scenario": "llama3.1-8b-shape.tp1.colocate.sglang-current", "b_args": "chunked_prefill_size=768",
               "b_inject": None}
    (out / "pools.json").write_text(json.dumps(earlier))
    assert gpu_power.main(["pools", "--matrix", str(REPO_ROOT / "matrix" / "perf.yaml"), "-k",
                           "llama3.1-8b-shape and not mcore", "--pairs", "1", "--sides", "a", "--out", str(out),
                           "--b-args", "chunked_prefill_size=512"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "chunked_prefill_size=768" in err and "one A/B pair" in err
    assert json.loads((out / "pools.json").read_text()) == earlier and not (out / "a").exists()


def test_drift_and_run_order_figures_follow_the_order_the_runs_were_made(tmp_path):
    def made(side, stamp, value):
        return ScenarioResult(f"m.tp1.{side}{stamp}-0", Verdict.PASS, "", metrics={"rollout_tokens_per_s": [value]})
    stamps = [f"14{m:02d}00" for m in range(10, 22)]
    # the host slows down through the session; A and B alternate, B 10 % below its neighbouring A
    sides = {"a": [made("a", st, 1000 - 20 * i) for i, st in enumerate(stamps[::2])],
             "b": [made("b", st, 900 - 20 * i) for i, st in enumerate(stamps[1::2])]}
    found = power_stats.drift({"a": list(reversed(sides["a"])), "b": sides["b"]}, "rollout_tokens_per_s")
    assert found["a"]["rho"] == -1.0 and found["b"]["rho"] == -1.0 and found["a"]["p"] < 0.01
    assert power_stats.drift(sides, "weight_sync_s") is None                 # a metric no run has
    drawn = gpu_power.draw_run_order(sides, tmp_path)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert drawn == []
    else:
        assert drawn == [tmp_path / "run-order-rollout_tokens_per_s.png"] and drawn[0].stat().st_size > 1000


def test_a_pool_run_cut_by_the_deadline_is_recorded_interrupted_and_left_out(tmp_path, monkeypatch, capsys):
    def cut(scenario, run_root, options):
        (run_root / scenario.id).mkdir(parents=True)
        raise KeyboardInterrupt                                          # what SIGTERM from `timeout` becomes
    monkeypatch.setattr(gpu_power.execute, "run_scenario", cut)
    out = tmp_path / "p"
    assert gpu_power.main(["pools", "--matrix", str(REPO_ROOT / "matrix" / "perf.yaml"), "-k",
                           "llama3.1-8b-shape and not mcore", "--pairs", "2", "--sides", "a", "--out", str(out)]) == 130
    (folder,) = (out / "a").iterdir()
    assert ScenarioResult.load(folder / "result.json").verdict == Verdict.INTERRUPTED
    assert "interrupted" in capsys.readouterr().err


@pytest.mark.parametrize("steps, why", [(1, "expected an int >= 2"), (-3, "expected an int >= 2")])
def test_pools_steps_out_of_range_is_one_line(tmp_path, capsys, steps, why):
    assert gpu_power.main(["pools", "--matrix", str(REPO_ROOT / "matrix" / "perf.yaml"), "-k",
                           "llama3.1-8b-shape and not mcore", "--pairs", "1", "--out", str(tmp_path / "p"),
                           "--steps", str(steps)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--steps" in err and why in err and not (tmp_path / "p").exists()


def test_pools_at_other_steps_never_join_a_folder_of_the_scenario_steps(tmp_path, capsys):
    out = tmp_path / "p"
    out.mkdir()
    earlier = {"scenario": "llama3.1-8b-shape.tp1.colocate.sglang-current", "b_args": None, "b_inject": None,
               "steps": 16}
    (out / "pools.json").write_text(json.dumps(earlier))
    assert gpu_power.main(["pools", "--matrix", str(REPO_ROOT / "matrix" / "perf.yaml"), "-k",
                           "llama3.1-8b-shape and not mcore", "--pairs", "1", "--sides", "a", "--out", str(out),
                           "--steps", "8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and '"steps": 8' in err and '"steps": 16' in err and not (out / "a").exists()


def test_with_steps_keeps_the_warmup_and_refuses_a_run_of_warmup_only():
    matrix = scenario.load(REPO_ROOT / "matrix" / "perf.yaml")
    s = next(x for x in matrix.scenarios if x.id.startswith("llama3.1-8b-shape.tp1.colocate.sglang"))
    shorter = gpu_power.with_steps(s, 8)
    assert shorter.settings["steps"] == 8 and shorter.settings["warmup_steps"] == s.settings["warmup_steps"] == 1
    assert s.settings["steps"] == 16
    with pytest.raises(ColobenchError, match="no steady step"):
        gpu_power.with_steps(dataclasses.replace(s, settings={**s.settings, "warmup_steps": 3}), 3)
