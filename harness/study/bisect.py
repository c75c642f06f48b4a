"""Bisection across SGLang versions or git commits: binary search over real runs, skipping what cannot be judged.

- Owns: the search (`search`: bad end first, then halving; a skipped probe tries the nearest untried neighbour,
  as `git bisect skip` does), candidate lists (`versions_between`, `commits_between`), probe classification for a
  failure or a metric drop, and the result with the diffs between last good and first bad.
- Does not own: running a probe (a callback: execute.py in the environment envs.py gives) or rendering (report).
With nothing skipped a search over n candidates makes at most ceil(log2(n - 1)) + 1 <= ceil(log2 n) + 1 probes.
"""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness.errors import ColobenchError
from harness.judge import change, metrics, stats
from harness.judge.result import ScenarioResult
from harness.judge.verdict import Verdict
from harness.matrix import defaults
from harness.matrix.axes import version_key
from harness.store import fingerprint

GOOD, BAD, SKIP = "good", "bad", "skip"


@dataclass
class Probe:
    candidate: str
    outcome: str  # good | bad | skip
    result: ScenarioResult | None
    note: str = ""


@dataclass
class BisectResult:
    candidates: list[str]
    probes: list[Probe] = field(default_factory=list)
    first_bad: str | None = None
    last_good: str | None = None
    ambiguous: list[str] = field(default_factory=list)  # first bad is one of these (skips in the way)

    def probe_of(self, candidate: str | None) -> Probe | None:
        return next((p for p in self.probes if p.candidate == candidate and p.outcome != SKIP), None)


def max_probes(n: int) -> int:
    """The promised bound when nothing is skipped."""
    return math.ceil(math.log2(n)) + 1 if n > 1 else 1


def search(candidates: list[str], probe: Callable[[str], Probe], confirm_bad: bool = True) -> BisectResult:
    """candidates[0] is known good, candidates[-1] known bad; find the first bad."""
    if len(candidates) < 2:
        raise ColobenchError("bisect: need at least a good and a bad candidate")
    result = BisectResult(list(candidates))
    outcome: dict[int, str] = {0: GOOD}

    def run(i: int) -> str:
        p = probe(candidates[i])
        result.probes.append(p)
        outcome[i] = p.outcome
        return p.outcome

    hi = len(candidates) - 1
    if confirm_bad:
        first = run(hi)
        if first == GOOD:
            raise ColobenchError(f"bisect: the bad end {candidates[hi]} passed; nothing to bisect")
        if first == SKIP:
            raise ColobenchError(f"bisect: the bad end {candidates[hi]} could not be judged (infra or inconclusive)")
    else:
        outcome[hi] = BAD
    lo = 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        order = sorted((i for i in range(lo + 1, hi) if outcome.get(i) != SKIP), key=lambda i: (abs(i - mid), i))
        if not order:
            result.ambiguous = candidates[lo + 1 : hi + 1]
            break
        i = order[0]
        verdict = run(i)
        if verdict == GOOD:
            lo = i
        elif verdict == BAD:
            hi = i
    if not result.ambiguous:
        result.first_bad, result.last_good = candidates[hi], candidates[lo]
    return result


def classify_failure(result: ScenarioResult) -> str:
    return {Verdict.PASS: GOOD, Verdict.REGRESSED: BAD}.get(result.verdict, SKIP)


def per_run(result: ScenarioResult, metric: str) -> list[float]:
    """One median per run of a probe (its repetitions, or the one run)."""
    return metrics.per_run_values(result.repetitions or [result.metrics], {metric: {}}).get(metric, [])


def classify_metric(
    result: ScenarioResult, metric: str, reference: list[float], max_drop: float | None, max_rise: float | None
) -> tuple[str, str]:
    """good/bad by the one comparison rule (change.decide) of the probe's runs against the good end's (`reference`,
    one value per run); skip when it did not run, or when its runs cannot tell a change from noise."""
    if result.verdict in (Verdict.INFRA_ERROR, Verdict.SKIPPED):
        return SKIP, result.reason
    values = per_run(result, metric)
    if not values or not reference:
        return SKIP, f"{metric}: no samples"
    found = change.decide(
        reference,
        values,
        "higher" if max_drop is not None else "lower",
        max_drop if max_drop is not None else max_rise,
        defaults.metric(metric).abs_floor,
    )
    note = f"{metric} {found.relative:+.1%} vs good end" + (f" (p={found.p:.3g})" if found.p is not None else "")
    if found.outcome == change.Outcome.INCONCLUSIVE:
        return SKIP, f"{note}: beyond the threshold but not beyond the runs' noise (raise repeat)"
    return (BAD if found.outcome == change.Outcome.WORSE else GOOD), note


def versions_between(good: str, bad: str, available: list[str]) -> list[str]:
    """Released versions from good to bad inclusive, in order."""
    lo, hi = version_key(good), version_key(bad)
    inside = sorted(
        {v for v in available if lo <= version_key(v) <= hi and not re.search(r"(rc|a|b|dev)\d*$", v)}, key=version_key
    )
    for end in (good, bad):
        if end not in inside:
            raise ColobenchError(f"bisect: version {end} is not among the available versions")
    return inside


def index_versions(package: str = "sglang") -> list[str]:
    """Versions the package index offers (pip index versions)."""
    out = subprocess.run(
        ["python3", "-m", "pip", "index", "versions", package], capture_output=True, text=True, timeout=120
    )
    m = re.search(r"Available versions:\s*(.+)", out.stdout)
    if not m:
        raise ColobenchError(f"bisect: cannot list {package} versions from the package index; pass --versions a,b,c")
    return [v.strip() for v in m.group(1).split(",")]


def commits_between(repo: Path, good: str, bad: str) -> list[str]:
    """good, then every commit on the ancestry path to bad (oldest first)."""
    out = subprocess.run(
        ["git", "-C", str(repo), "rev-list", "--reverse", "--ancestry-path", f"{good}..{bad}"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise ColobenchError(f"bisect: {repo}: cannot list commits {good}..{bad}: {out.stderr.strip()[:200]}")
    full_good = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", good], capture_output=True, text=True
    ).stdout.strip()
    return [full_good] + out.stdout.split()


def diffs(last_good: ScenarioResult | None, first_bad: ScenarioResult | None) -> dict[str, list[tuple[str, str, str]]]:
    """Milestone, metric and version/fingerprint differences between the two runs either side of the boundary."""
    if last_good is None or first_bad is None:
        return {}
    ms_a = {m["name"]: "ok" if m["ok"] else m["reason"][:80] for m in last_good.milestones}
    ms_b = {m["name"]: "ok" if m["ok"] else m["reason"][:80] for m in first_bad.milestones}
    milestones = fingerprint.changed(ms_a, ms_b)
    metrics = []
    for k in sorted(set(last_good.metrics) | set(first_bad.metrics)):
        a = stats.finite(last_good.metrics.get(k, []))
        b = stats.finite(first_bad.metrics.get(k, []))
        if a and b:
            metrics.append(
                (
                    k,
                    f"{stats.centre(a):.4g}",
                    f"{stats.centre(b):.4g} ({stats.relative_change(stats.centre(b), stats.centre(a)):+.1%})",
                )
            )
        elif a or b:
            metrics.append((k, f"{stats.centre(a):.4g}" if a else "-", f"{stats.centre(b):.4g}" if b else "-"))
    pa = {k: v for k, v in last_good.properties.items() if k.startswith(("version.", "axis.sglang", "env."))}
    pb = {k: v for k, v in first_bad.properties.items() if k.startswith(("version.", "axis.sglang", "env."))}
    finger = fingerprint.changed(pa, pb)
    return {"milestones": milestones, "metrics": metrics, "fingerprint": finger}
