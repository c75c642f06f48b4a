"""benchmarks/power_stats.py: the variance split, the runs a 5% change needs, B's change with its interval."""

import random
import sys

from harness import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import power_stats


def test_steps_needed_splits_step_noise_from_run_noise():
    rng = random.Random(3)
    steps_only = [[100 * rng.gauss(1, 0.10) for _ in range(40)] for _ in range(30)]       # 10% step CV, runs alike
    found = power_stats.steps_needed(steps_only)
    assert 0.08 < found["step_cv"] < 0.12 and found["run_cv"] < 0.02
    assert 15 <= found["steps_for_target"] <= 60                     # (0.10 / 0.02)^2 = 25, less run noise
    offsets = [rng.gauss(1, 0.05) for _ in range(30)]                 # each run 5% off the next: no steps help
    run_level = [[100 * o * rng.gauss(1, 0.01) for _ in range(40)] for o in offsets]
    found = power_stats.steps_needed(run_level)
    assert found["run_cv"] > 0.03 and found["steps_for_target"] is None
    assert found["projected_cv"][40] > 0.03


def test_runs_needed_grows_with_the_square_of_the_noise_and_never_below_the_test_floor():
    assert power_stats.runs_needed(None) is None and power_stats.runs_needed(0.0) is None
    assert power_stats.runs_needed(0.001) == 4                         # Mann-Whitney needs 4 + 4 to reach p < 0.05
    n = power_stats.runs_needed(0.0876)                                 # the H200 pools' rollout CV
    assert 60 <= n <= 80
    assert 3.5 * n <= power_stats.runs_needed(2 * 0.0876) <= 4.5 * n


def test_change_interval_pins_a_clear_shift_and_straddles_zero_on_noise():
    rng = random.Random(5)
    a = [[100 * rng.gauss(1, 0.01)] for _ in range(8)]
    shifted = [[90 * rng.gauss(1, 0.01)] for _ in range(8)]
    lo, hi = power_stats.change_interval(a, shifted, random.Random(0), draws=500)
    assert -0.13 < lo <= power_stats.centre_change(a, shifted) <= hi < -0.07
    noisy_a = [[100 * rng.gauss(1, 0.15)] for _ in range(7)]
    noisy_b = [[95 * rng.gauss(1, 0.15)] for _ in range(8)]
    lo, hi = power_stats.change_interval(noisy_a, noisy_b, random.Random(0), draws=500)
    assert lo < 0 < hi and hi - lo > 0.1
