"""Pure statistics: robust centres, bands, Mann-Whitney U, relative change, step detection. No I/O.

- Owns: the numbers behind a gate decision.
- Does not own: which metric or baseline to use (metrics.py), storage (history.py).
Missing values are filtered once, by `finite`; every other function takes finite floats only.
"""

from __future__ import annotations

import math
from statistics import fmean, median, stdev


def centre(values: list[float]) -> float:
    """Robust centre of a sample (the median)."""
    if not values:
        raise ValueError("centre of an empty sample")
    return float(median(values))


def mean(values: list[float]) -> float:
    return fmean(values)


def sd(values: list[float]) -> float:
    """Sample standard deviation (n - 1)."""
    return stdev(values)


def cv(values: list[float]) -> float | None:
    """Coefficient of variation sd / |mean| (None below two values or at a zero mean)."""
    if len(values) < 2 or not mean(values):
        return None
    return sd(values) / abs(mean(values))


def band(ref: float, rel: float, abs_floor: float = 0.0) -> tuple[float, float]:
    """[ref - w, ref + w] with w = max(rel * |ref|, abs_floor): values near zero do not trip on a percentage."""
    width = max(rel * abs(ref), abs_floor)
    return ref - width, ref + width


def finite(values) -> list[float]:
    """The finite numbers of a sample (NaN, inf and non-numbers left out): the one filter for missing values."""
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def side_of_band(cur: float, ref: float, rel: float, abs_floor: float = 0.0) -> int:
    """-1 below, +1 above, 0 inside `band(ref, rel, abs_floor)`: a change counts only beyond both the relative
    threshold and the absolute floor (the one rule behind gates, compare and bisect)."""
    lo, hi = band(ref, rel, abs_floor)
    return -1 if cur < lo else 1 if cur > hi else 0


def relative_change(cur: float, ref: float) -> float:
    """(cur - ref) / |ref|; infinite when ref is 0 and cur is not."""
    if ref == 0:
        return 0.0 if cur == 0 else math.copysign(math.inf, cur)
    return (cur - ref) / abs(ref)


def mann_whitney_u(a: list[float], b: list[float], alternative: str = "two-sided") -> tuple[float, float]:
    """(U statistic, p-value) from scipy.stats; p = 1.0 when both samples hold one and the same value.

    `alternative` "greater" tests whether `a` tends to exceed `b`, "less" the reverse (a one-sided gate)."""
    from scipy.stats import (
        mannwhitneyu,  # scipy is a harness dependency; imported here to keep `list` fast
    )

    if len(a) == 0 or len(b) == 0:
        raise ValueError("Mann-Whitney U needs two non-empty samples")
    if len(set(a) | set(b)) == 1:
        return float(len(a) * len(b) / 2), 1.0
    res = mannwhitneyu(a, b, alternative=alternative, method="auto")
    return float(res.statistic), float(res.pvalue)


def log_ratios(b: list[float], a: list[float]) -> list[float]:
    """log(b[i] / a[i]) of paired positive values: a pair's relative change, symmetric and additive."""
    if len(a) != len(b) or not a or min(a + b) <= 0:
        raise ValueError("paired runs need equal, non-empty lists of positive values")
    return [math.log(x / y) for x, y in zip(b, a)]


def paired_log_ratio_test(b: list[float], a: list[float], alternative: str) -> tuple[float, float]:
    """Neighbouring runs of B and A paired (ABBA order: the host's drift hits both of a pair alike): (the mean
    relative change of B over A, as exp(mean log ratio) - 1; the one-sided p of a one-sample t-test on the log ratios
    in the direction `alternative`, "greater" or "less"). Positive values only; p = 1 with fewer than two pairs."""
    from scipy.stats import ttest_1samp

    logs = log_ratios(b, a)
    change = math.expm1(fmean(logs))
    if len(logs) < 2:
        return change, 1.0
    if max(logs) - min(logs) <= 1e-12:  # no spread at all (to rounding): the sign alone decides
        moved = logs[0] > 0 if alternative == "greater" else logs[0] < 0
        return change, 0.0 if moved else 1.0
    return change, float(ttest_1samp(logs, 0.0, alternative=alternative).pvalue)


def detectable_change(spread: float, n_a: int, n_b: int | None = None) -> float:
    """The smallest relative change runs of this spread reliably show: 95% power against a one-sided 5% test
    (z = 1.645 + 1.645). Unpaired (`n_b` given): `spread` is the per-run CV, n_a and n_b runs a side; paired: `spread`
    is the sd of the pairs' log ratios over n_a pairs."""
    z = 2 * 1.645
    return z * spread * (math.sqrt(1 / n_a + 1 / n_b) if n_b else 1 / math.sqrt(n_a))


def runs_for_significance(alpha: float) -> int:
    """The fewest runs a side at which a one-sided Mann-Whitney U test can reach p < alpha at all: fully separated
    samples of k and k give p = 1 / C(2k, k) (3 + 3: exactly 0.05)."""
    k = 1
    while 1 / math.comb(2 * k, k) >= alpha:
        k += 1
    return k


def is_different(a: list[float], b: list[float], p_threshold: float = 0.05) -> bool:
    """True when the two samples differ at the given two-sided significance."""
    return mann_whitney_u(a, b)[1] < p_threshold


def detect_step(series: list[float], min_size: int = 1) -> int | None:
    """Index where the mean of a series shifts most (the first index of the second segment), or None.

    Chooses the split that minimises the summed squared error of two constant segments.
    """
    n = len(series)
    if n < 2 * min_size:
        return None
    best, best_cost = None, sum((x - sum(series) / n) ** 2 for x in series)
    for k in range(min_size, n - min_size + 1):
        left, right = series[:k], series[k:]
        ml, mr = sum(left) / len(left), sum(right) / len(right)
        cost = sum((x - ml) ** 2 for x in left) + sum((x - mr) ** 2 for x in right)
        if cost < best_cost - 1e-12:
            best, best_cost = k, cost
    return best
