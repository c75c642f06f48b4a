"""Questions across runs: A/B on one machine (ab), two runs or versions from history (compare), bisection over
versions or commits (bisect)."""

__all__ = ["ab", "bisect", "compare"]
