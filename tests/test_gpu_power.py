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
from harness.study import ab

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import gpu_power
import power_stats


def pool(folder, runs, rng, b_scale=1.0, sync_b=1.0, noise=0.01, drift=0.0):
    """`runs` results in ABBA order, each a run's steps; the host drifts by `drift` a run (both sides alike)."""
    for number in range(runs):
        side = ab.abba_side(number)
        host = 1 - drift * number
        scale, sync = (b_scale, sync_b) if side == "b" else (1.0, 1.0)
        samples = {
            "rollout_tokens_per_s": [1000 * host * scale * rng.gauss(1, noise) for _ in range(5)],
            "weight_sync_s": [0.5 * sync / host * rng.gauss(1, noise) for _ in range(5)],
            "train_step_s": [0.3 * rng.gauss(1, noise) for _ in range(5)],
            "engine_gpu_busy": [0.9] * 5,
        }
        rid = f"s.{side}-{number:03d}"
        ScenarioResult(
            rid,
            Verdict.PASS,
            "",
            metrics=samples,
            properties={"version.gpu": "X", "axis.model": "m3.1-8b", "host.probe_cv": "0.004"},
            timings={"engine_start_s": 40.0, "first_step_s": 50.0, "total_s": 70.0},
        ).save(folder / side / rid)


def analyzed(tmp_path):
    (tmp_path / "pools.json").write_text(
        json.dumps({"scenario": "m.tp1", "b_args": None, "b_inject": "slowdown:0.05", "steps": 5, "order": "ABBA"})
    )
    assert gpu_power.main(["analyze", str(tmp_path), "--out", str(tmp_path / "out"), "--draws", "200"]) == 0
    rows = json.loads((tmp_path / "out" / "power.json").read_text())
    return {(r["metric"], r["runs_per_side"]): r for r in rows}, (tmp_path / "out" / "power.md").read_text()


def test_abba_order_pairs_neighbours():
    assert "".join(ab.abba_side(n) for n in range(8)) == "abbaabba"


def test_analysis_detects_a_clear_regression_and_keeps_quiet_on_none(tmp_path):
    pool(tmp_path, 22, random.Random(1), b_scale=0.9)  # tokens/s 10% down in B, sync unchanged
    ScenarioResult("s.b-022", Verdict.REGRESSED, "x", metrics={}).save(tmp_path / "b" / "s.b-022")
    (tmp_path / "a" / "s.a-023").mkdir()  # killed before it wrote a result
    by, text = analyzed(tmp_path)
    row = by["rollout_tokens_per_s", 5]
    assert set(row) >= {
        "metric",
        "effect",
        "runs_per_side",
        "decisions",
        "detected",
        "false_alarms",
        "per_run_cv",
        "pair_spread",
        "device",
        "sglang",
        "model",
        "exact_shift_detected",
    }
    assert row["effect"] == 0.05 and row["b"] == "inject:slowdown:0.05" and row["model"] == "m3.1-8b"
    assert row["detected"] == 1.0 and by["rollout_tokens_per_s", 3]["detected"] == 1.0  # paired: 3 pairs suffice
    assert by["weight_sync_s", 5]["detected"] == 0.0  # unchanged in B
    assert all(r["false_alarms"] == 0.0 for r in by.values())
    assert by["weight_sync_s", 5]["exact_shift_detected"] == 1.0  # 1% noise: an exact 5% rise is always seen
    assert row["pairs"] == 11 and row["unchanged_pairs"] == 10
    assert "11 A/B pairs and 10 unchanged pairs" in text and "{'a': 1, 'b': 1}" in text
    assert "engine busy 0.9 of the rollout" in text and "engine_start_s" in text


def test_pairs_cancel_a_drifting_host_that_pooled_runs_cannot(tmp_path):
    # the host slows 1% a run over 20 runs: more than B's 5%, the same for both sides of a pair
    pool(tmp_path, 20, random.Random(2), b_scale=0.95, noise=0.003, drift=0.01)
    by, _ = analyzed(tmp_path)
    assert by["rollout_tokens_per_s", 5]["detected"] > 0.95 and by["rollout_tokens_per_s", 5]["false_alarms"] == 0.0


def pools(out, *options) -> int:
    """gpu_power.py pools on perf.yaml's GPU-bound torch row."""
    matrix = str(REPO_ROOT / "matrix" / "perf.yaml")
    return gpu_power.main(
        ["pools", "--matrix", matrix, "-k", "llama3.1-8b-l10 and not mcore", "--out", str(out), *options]
    )


def test_bad_input_is_one_line_not_a_traceback(tmp_path, capsys):
    assert gpu_power.main(["analyze", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert pools(str(tmp_path / "p"), "--runs", "1", "--b-args", "nope") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "pools.json" in err and "expected KEY=VALUE" in err


def test_pools_never_mix_two_b_sides_in_one_folder(tmp_path, capsys):
    out = tmp_path / "p"
    out.mkdir()
    earlier = {
        "scenario": "llama3.1-8b-l10.tp1.colocate.sglang-current",
        "b_args": "chunked_prefill_size=768",
        "b_inject": None,
        "steps": 8,
        "order": "ABBA",
    }
    (out / "pools.json").write_text(json.dumps(earlier))
    assert pools(str(out), "--runs", "1", "--b-args", "chunked_prefill_size=512") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "chunked_prefill_size=768" in err and "one A/B pair" in err
    assert json.loads((out / "pools.json").read_text()) == earlier and not (out / "a").exists()


def test_drift_and_run_order_figures_follow_the_order_the_runs_were_made(tmp_path):
    def made(number, value):
        side = ab.abba_side(number)
        return power_stats.Run(
            side,
            number,
            ScenarioResult(f"m.tp1.{side}-{number:03d}", Verdict.PASS, "", metrics={"rollout_tokens_per_s": [value]}),
        )

    # the host slows down through the session; B 10 % below its neighbouring A
    runs = [made(n, (1000 - 20 * n) * (0.9 if ab.abba_side(n) == "b" else 1)) for n in range(12)]
    found = power_stats.drift(runs, "rollout_tokens_per_s")
    assert found["a"]["rho"] == -1.0 and found["b"]["rho"] == -1.0 and found["a"]["p"] < 0.01
    assert power_stats.drift(runs, "weight_sync_s") == {}  # a metric no run has
    drawn = gpu_power.draw_run_order(runs, tmp_path)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert drawn == []
    else:
        assert drawn == [tmp_path / "run-order-rollout_tokens_per_s.png"] and drawn[0].stat().st_size > 1000


def test_a_pool_run_cut_by_the_deadline_is_recorded_interrupted_and_left_out(tmp_path, monkeypatch, capsys):
    def cut(scenario, run_root, options):
        (run_root / scenario.id).mkdir(parents=True)
        raise KeyboardInterrupt  # what SIGTERM from `timeout` becomes

    monkeypatch.setattr(gpu_power.execute, "run_scenario", cut)
    out = tmp_path / "p"
    assert pools(str(out), "--runs", "2") == 130
    (folder,) = (out / "a").iterdir()
    assert ScenarioResult.load(folder / "result.json").verdict == Verdict.INTERRUPTED
    assert "interrupted" in capsys.readouterr().err


@pytest.mark.parametrize("steps, why", [(1, "expected an int >= 2"), (-3, "expected an int >= 2")])
def test_pools_steps_out_of_range_is_one_line(tmp_path, capsys, steps, why):
    assert pools(str(tmp_path / "p"), "--runs", "1", "--steps", str(steps)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--steps" in err and why in err and not (tmp_path / "p").exists()


def test_pools_at_other_steps_never_join_a_folder_of_the_scenario_steps(tmp_path, capsys):
    out = tmp_path / "p"
    out.mkdir()
    earlier = {
        "scenario": "llama3.1-8b-l10.tp1.colocate.sglang-current",
        "b_args": None,
        "b_inject": None,
        "steps": 16,
        "order": "ABBA",
    }
    (out / "pools.json").write_text(json.dumps(earlier))
    assert pools(str(out), "--runs", "1", "--steps", "8") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and '"steps": 8' in err and '"steps": 16' in err and not (out / "a").exists()


def test_with_steps_keeps_the_warmup_and_refuses_a_run_of_warmup_only():
    matrix = scenario.load(REPO_ROOT / "matrix" / "perf.yaml")
    s = next(x for x in matrix.scenarios if x.id.startswith("llama3.1-8b-l10.tp1.colocate.sglang"))
    shorter = gpu_power.with_steps(s, 4)
    assert shorter.settings.steps == 4 and shorter.settings.warmup_steps == s.settings.warmup_steps == 1
    assert s.settings.steps == 8
    with pytest.raises(ColobenchError, match="no steady step"):
        gpu_power.with_steps(dataclasses.replace(s, settings=s.settings.replace(warmup_steps=3)), 3)
