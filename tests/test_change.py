"""judge/change.py: the one comparison rule of gates, compare and bisect."""

import pytest

from harness.judge import change
from harness.judge.change import Outcome
from harness.matrix.axes import version_key


def test_inside_the_band_is_the_same_whatever_the_test():
    found = change.decide([100.0, 101.0, 99.0], [98.0, 97.5, 98.5], "higher", 0.05)
    assert found.outcome == Outcome.SAME and found.p is None and not found.toward_worse


def test_beyond_the_band_needs_the_test_too():
    a, b = [100.0, 101.0, 99.0, 100.5, 99.5], [90.0, 91.0, 89.0, 90.5, 89.5]
    assert change.decide(a, b, "higher", 0.05).outcome == Outcome.WORSE
    assert change.decide(a, b, "lower", 0.05).outcome == Outcome.BETTER  # the same numbers, a timing
    one = change.decide([100.0], [80.0], "higher", 0.05)
    assert one.outcome == Outcome.INCONCLUSIVE and one.p is None and one.toward_worse


def test_paired_runs_cancel_a_drift_that_unpaired_runs_cannot():
    drift = [100.0, 96.0, 92.0, 88.0, 84.0]  # the host slows 4% a pair
    a, b = drift, [x * 0.95 for x in drift]  # B 5% below its neighbour every time
    assert change.decide(a, b, "higher", 0.025, paired=True).outcome == Outcome.WORSE
    assert change.decide(a, b, "higher", 0.025).outcome == Outcome.INCONCLUSIVE


def test_the_floor_keeps_tiny_absolute_changes_the_same():
    assert (
        change.decide([0.0010, 0.0011, 0.0010], [0.0020, 0.0021, 0.0022], "lower", 0.1, abs_floor=0.01).outcome
        == Outcome.SAME
    )


@pytest.mark.parametrize(
    "lo,hi", [("0.5.9", "0.5.10"), ("0.5.12", "0.5.12.post1"), ("0.5.12rc1", "0.5.12"), ("0.5.17", "abc123def")]
)
def test_one_version_order(lo, hi):
    assert version_key(lo) < version_key(hi)
