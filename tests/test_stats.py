import random

import pytest

from harness.judge import stats

scipy_stats = pytest.importorskip("scipy.stats")


def test_mann_whitney_matches_scipy_on_seeded_samples():
    rng = random.Random(7)
    a = [rng.gauss(1.0, 0.1) for _ in range(15)]
    b = [rng.gauss(1.2, 0.1) for _ in range(12)]
    u, p = stats.mann_whitney_u(a, b)
    ref = scipy_stats.mannwhitneyu(a, b, alternative="two-sided")
    assert u == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    assert stats.is_different(a, b) and not stats.is_different(a, a)


def test_constant_equal_samples_are_not_different():
    assert stats.mann_whitney_u([1.0, 1.0], [1.0, 1.0])[1] == 1.0


def test_band_has_an_absolute_floor_near_zero():
    assert stats.band(100.0, 0.05) == (95.0, 105.0)
    assert stats.band(0.0, 0.05, abs_floor=0.01) == (-0.01, 0.01)


def test_relative_change_and_centre():
    assert stats.relative_change(110, 100) == pytest.approx(0.10)
    assert stats.centre([3, 1, 2, 100]) == 2.5


def test_detect_step_finds_the_shift():
    assert stats.detect_step([1.0] * 6 + [2.0] * 4) == 6
    assert stats.detect_step([1.0]) is None


def test_one_sided_mann_whitney_halves_p_in_its_direction_only():
    a, b = [2.0, 2.1, 2.2, 2.3], [1.0, 1.1, 1.2, 1.3]
    two = stats.mann_whitney_u(a, b)[1]
    assert stats.mann_whitney_u(a, b, "greater")[1] == pytest.approx(two / 2)
    assert stats.mann_whitney_u(a, b, "less")[1] == pytest.approx(1.0)
