"""Split a selection of scenarios into N disjoint shards for N CI runners (`--shard I/N`), balanced by past durations.

- Owns: parsing `I/N`, and `pick`: longest-first greedy assignment of scenarios to the shard with the least total
  time so far (ties to the lower shard), using each scenario's recent median duration from the history and the
  median of the known ones for the rest (every scenario counts 1 when nothing is known). Pure and stable: the same
  selection and durations give the same shards on every runner.
- Does not own: storing durations (store/history.py) or merging the shards' reports (report/summary.merge).
"""

from __future__ import annotations

from pathlib import Path
from statistics import median

from harness.errors import ColobenchError
from harness.matrix.scenario import Scenario
from harness.store import history


def parse(spec: str) -> tuple[int, int]:
    """'2/4' -> (2, 4), 1-based; a one-line error otherwise."""
    i, sep, n = spec.partition("/")
    if not sep or not i.isdigit() or not n.isdigit() or not 1 <= int(i) <= int(n):
        raise ColobenchError(f"--shard {spec!r}: expected I/N with 1 <= I <= N, e.g. 1/4")
    return int(i), int(n)


def assign(ids: list[str], n: int, durations: dict[str, float]) -> dict[str, int]:
    """{scenario id: shard index 0..n-1}."""
    known = [d for d in durations.values() if d > 0]
    default = median(known) if known else 1.0
    cost = {sid: durations.get(sid, default) or default for sid in ids}
    totals = [0.0] * n
    out = {}
    for sid in sorted(ids, key=lambda s: (-cost[s], s)):
        k = min(range(n), key=lambda j: (totals[j], j))
        out[sid] = k
        totals[k] += cost[sid]
    return out


def pick(scenarios: list[Scenario], spec: str, durations: dict[str, float]) -> list[Scenario]:
    """The scenarios of shard I of N, in their selection order."""
    i, n = parse(spec)
    where = assign([s.id for s in scenarios], n, durations)
    return [s for s in scenarios if where[s.id] == i - 1]


def past_durations(reports_dir: Path, scenarios: list[Scenario]) -> dict[str, float]:
    """{scenario id: its recent median duration} from the history in `reports_dir`, where there is one."""
    path = reports_dir / "history.sqlite"
    if not path.exists():
        return {}
    known = history.HistoryStore(path).durations()
    return {s.id: known[history.identity(s.id)] for s in scenarios if history.identity(s.id) in known}
