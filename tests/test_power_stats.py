"""benchmarks/power_stats.py: ABBA pairs, decisions as --ab makes them, the parametric check, pairs needed."""

import random
import sys

from harness import REPO_ROOT
from harness.judge.result import ScenarioResult
from harness.judge.verdict import Verdict

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import power_stats

GATE = {"max_drop": "2.5%"}


def run(number, side, value, probe="0.003"):
    return power_stats.Run(
        side,
        number,
        ScenarioResult(
            f"m.{side}-{number:03d}", Verdict.PASS, "", metrics={"tok": [value]}, properties={"host.probe_cv": probe}
        ),
    )


def test_pairs_are_neighbours_and_a_missing_run_takes_its_pairs_with_it():
    order = "abbaabba"
    made = [run(n, order[n], 100.0) for n in range(8) if n != 5]
    changed, unchanged = power_stats.pairs(made)
    assert [(a.number, b.number) for a, b in changed] == [(0, 1), (3, 2), (7, 6)]  # (A, B) whatever came first
    assert [(x.number, y.number) for x, y in unchanged] == [(1, 2), (4, 3)]  # 5 is gone: (5, 6) too
    # B is the later run in every other pair, for the unchanged pairs' stand-in B too: a drift cancels


def test_a_steady_drift_raises_no_false_alarm():
    made = [run(n, "abbaabbaabbaabba"[n], 100.0 * 0.97**n) for n in range(16)]  # 3% fewer tokens/s every run
    _, unchanged = power_stats.pairs(made)
    found = power_stats.rates(GATE, "tok", unchanged, 5, random.Random(0), draws=200)
    assert found["regressed"] < 0.05


def test_a_noisy_probe_decides_only_draws_too_small_to_show_their_spread():
    pool = [(run(2 * i, "a", 100.0, "0.2"), run(2 * i + 1, "b", 90.0)) for i in range(5)]
    found = power_stats.rates(GATE, "tok", pool, 2, random.Random(0), draws=50)
    assert found == {"regressed": 0.0, "inconclusive": 1.0, "distinct": 10}
    found = power_stats.rates(GATE, "tok", pool, 3, random.Random(0), draws=50)
    assert found == {"regressed": 1.0, "inconclusive": 0.0, "distinct": 10}
    assert power_stats.rates(GATE, "tok", pool, 6, random.Random(0), draws=50) is None  # five pairs only


def test_parametric_power_follows_the_spread():
    rng = random.Random(1)
    assert power_stats.parametric(GATE, 0.005, 5, rng, draws=300, shift=0.05) == 1.0
    assert power_stats.parametric(GATE, 0.005, 5, rng, draws=300) == 0.0
    assert power_stats.parametric(GATE, 0.08, 3, rng, draws=300, shift=0.05) < 0.5  # a 4-layer host's noise


def test_pairs_needed_grows_with_the_square_of_the_spread_and_never_below_three():
    assert power_stats.pairs_needed(0.001) == 3
    n = power_stats.pairs_needed(0.05)
    assert 10 <= n <= 14 and 3.5 * n <= power_stats.pairs_needed(0.10) <= 4.5 * n


def test_change_interval_pins_a_clear_shift():
    rng = random.Random(5)
    changed = [
        (run(2 * i, "a", 100 * rng.gauss(1, 0.01)), run(2 * i + 1, "b", 90 * rng.gauss(1, 0.01))) for i in range(8)
    ]
    mid, lo, hi = power_stats.change_interval(changed, "tok", random.Random(0), draws=300)
    assert -0.13 < lo <= mid <= hi < -0.07
