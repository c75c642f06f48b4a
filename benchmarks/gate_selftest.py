"""Gate self-test on the CPU reference engine: are a 10% sync slowdown and noise told apart?

1. B baseline runs of benchmarks/gate_selftest.yaml, each promoted into the trusted window;
2. N unchanged reruns judged against that window (any `regressed` is a false alarm);
3. K runs with `--inject sync_slowdown:0.1` (10% added to the sync path) judged the same way.
Writes reports/gate-selftest.md with the counts. Usage: python benchmarks/gate_selftest.py [--reruns 20]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from harness import cli, compare, history

MATRIX = str(Path(__file__).with_name("gate_selftest.yaml"))


def run(reports: Path, run_id: str, *extra: str) -> str:
    cli.main(["run", "--matrix", MATRIX, "--reports-dir", str(reports), "--run-id", run_id, *extra])
    result = json.loads(next((reports / "runs" / run_id).glob("*/result.json")).read_text())
    return result["verdict"], result["reason"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--baseline-runs", type=int, default=3)
    p.add_argument("--reruns", type=int, default=20)
    p.add_argument("--slow-runs", type=int, default=3)
    p.add_argument("--reports", default=f"/tmp/colobench-selftest-{int(time.time())}")
    p.add_argument("--out", default="reports/gate-selftest.md")
    args = p.parse_args()
    reports = Path(args.reports)
    store = history.HistoryStore(reports / "history.sqlite")
    started = time.time()
    for i in range(args.baseline_runs):
        run(reports, f"base-{i}", "--baseline", "none")
        store.promote(f"base-{i}")
    same = [run(reports, f"same-{i}") for i in range(args.reruns)]
    slow = [run(reports, f"slow-{i}", "--inject", "sync_slowdown:0.1") for i in range(args.slow_runs)]
    cs, cw = Counter(v for v, _ in same), Counter(v for v, _ in slow)
    lines = ["# Gate self-test (CPU reference engine, 2 cores)", "",
             f"date: {time.strftime('%Y-%m-%d %H:%M')}; wall: {time.time() - started:.0f}s; scenario: "
             f"tiny-llama colocated, 80 steps x repeat 1 = 80 weight_sync_s samples per run; gate weight_sync_s "
             f"max_rise 5%, Mann-Whitney p < 0.01; baseline: {args.baseline_runs} promoted runs.", "",
             f"- unchanged reruns: {len(same)}; regressed (false alarms): {cs['regressed']}; pass: {cs['pass']}; "
             f"inconclusive: {cs['inconclusive']}; other: {len(same) - cs['regressed'] - cs['pass'] - cs['inconclusive']}",
             f"- 10% sync slowdown injected: {len(slow)}; regressed (detected): {cw['regressed']}; pass: {cw['pass']}; "
             f"inconclusive: {cw['inconclusive']}", "", "## Reasons", ""]
    lines += [f"- same-{i}: {v}: {r[:220]}" for i, (v, r) in enumerate(same)]
    lines += [f"- slow-{i}: {v}: {r[:220]}" for i, (v, r) in enumerate(slow)]
    la, da, fa = compare.side(store, "base-0")
    lb, db, fb = compare.side(store, "slow-0")
    lines += ["", "## colobench compare base-0 slow-0 (two real runs from this history)", "",
              compare.markdown(la, lb, compare.rows(da, db), fa, fb)]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:8]))


if __name__ == "__main__":
    main()
