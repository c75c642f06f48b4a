"""The one rule for "is B a change from A?", used by relative gates (metrics.py), `compare` and `bisect`.

- Owns: `decide(a, b, better, threshold, ...)` -> Change: one value per run a side (a run's steps share its offset);
  B counts as moved only beyond the band max(threshold * |A|, abs_floor) around A's centre AND by a one-sided test in
  the direction it moved (Mann-Whitney U on the runs; a t-test on the log ratios of neighbouring pairs when `paired`);
  the vocabulary `same | better | worse | inconclusive`.
- Does not own: which values, thresholds or baselines (the callers), the arithmetic (stats.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from harness.judge import stats

DEFAULT_ALPHA = 0.05


class Outcome(str, Enum):
    SAME = "same"  # inside the band
    BETTER = "better"  # beyond the band on the good side, and the test agrees
    WORSE = "worse"  # beyond the band on the bad side, and the test agrees
    INCONCLUSIVE = "inconclusive"  # beyond the band, but the runs cannot tell it from noise


@dataclass(frozen=True)
class Change:
    outcome: Outcome
    ref: float  # A's centre
    cur: float  # B's centre (paired: A's centre moved by the pairs' mean ratio)
    relative: float  # (cur - ref) / |ref|
    p: float | None  # the test's p (None inside the band, or with too few runs)
    paired: bool
    toward_worse: bool  # B moved (beyond the band) in the bad direction, whatever the test said


def decide(
    a: list[float],
    b: list[float],
    better: str,
    threshold: float,
    abs_floor: float = 0.0,
    alpha: float = DEFAULT_ALPHA,
    paired: bool = False,
) -> Change:
    """B against A, one value per run each (paired: b[i] ran next to a[i]). `better` is "higher" or "lower"."""
    if not a or not b:
        raise ValueError("a change needs runs on both sides")
    ref = stats.centre(a)
    paired = paired and len(a) == len(b) and min(a + b) > 0
    if paired:
        moved, p_up = stats.paired_log_ratio_test(b, a, "greater")
        cur = ref * (1 + moved)
    else:
        cur = stats.centre(b)
    side = stats.side_of_band(cur, ref, threshold, abs_floor)
    relative = stats.relative_change(cur, ref)
    if side == 0:
        return Change(Outcome.SAME, ref, cur, relative, None, paired, False)
    worse = (side < 0) == (better == "higher")
    direction = "greater" if side > 0 else "less"
    if paired:
        p = p_up if direction == "greater" else stats.paired_log_ratio_test(b, a, "less")[1]
    elif min(len(a), len(b)) < 2 and max(len(a), len(b)) < 2:
        p = None  # one run a side: steps of a run share its offset, so no test
    else:
        p = stats.mann_whitney_u(b, a, direction)[1]
    if p is None or math.isnan(p) or p >= alpha:
        return Change(Outcome.INCONCLUSIVE, ref, cur, relative, p, paired, worse)
    return Change(Outcome.WORSE if worse else Outcome.BETTER, ref, cur, relative, p, paired, worse)
