"""Gate self-test on the CPU reference engine: are a 10% sync slowdown and noise told apart?

Each decision is an A/B on this machine (`colobench run --ab A,B`: A then B, back to back, so host drift hits both):
1. N decisions `none,none` (the same code twice): any `regressed` is a false alarm;
2. K decisions `none,inject:sync_slowdown:0.1` (10% added to the sync path): `regressed` is a detection.
The gate is the scenario's: weight_sync_s max_rise 5%, Mann-Whitney p < 0.01 (benchmarks/gate_selftest.yaml).
Writes reports/gate-selftest.md. Usage: python benchmarks/gate_selftest.py [--reruns 20] [--slow-runs 3]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from harness import cli, compare, history

MATRIX = str(Path(__file__).with_name("gate_selftest.yaml"))


def decision(reports: Path, run_id: str, variants: str, run: bool = True, repeat: int = 1) -> tuple[str, str]:
    """One A/B decision (or, with run=False, the one already in reports/runs/<run_id>)."""
    if run:
        cli.main(["run", "--matrix", MATRIX, "--reports-dir", str(reports), "--run-id", run_id, "--ab", variants,
                  "--repeat", str(repeat)])
    result = json.loads(next((reports / "runs" / run_id).glob("*.ab-*/result.json")).read_text())
    return result["verdict"], result["reason"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--reruns", type=int, default=20)
    p.add_argument("--slow-runs", type=int, default=3)
    p.add_argument("--reports", default=f"/tmp/colobench-selftest-{int(time.time())}")
    p.add_argument("--out", default="reports/gate-selftest.md")
    p.add_argument("--summarize-only", action="store_true", help="re-read the decisions already under --reports")
    p.add_argument("--repeat", type=int, default=5, help="runs per side of each decision (one value per run)")
    args = p.parse_args()
    reports = Path(args.reports)
    started = time.time()
    run = not args.summarize_only
    same = [decision(reports, f"same-{i}", "none,none", run, args.repeat) for i in range(args.reruns)]
    slow = [decision(reports, f"slow-{i}", "none,inject:sync_slowdown:0.1", run, args.repeat) for i in range(args.slow_runs)]
    cs, cw = Counter(v for v, _ in same), Counter(v for v, _ in slow)
    lines = ["# Gate self-test (CPU reference engine, 2 cores)", "",
             f"date: {time.strftime('%Y-%m-%d %H:%M')}; wall: {time.time() - started:.0f}s; scenario: tiny-llama "
             "colocated, 60 steps = 60 weight_sync_s samples per run; each decision is an A/B of two runs back to back; "
             "gate weight_sync_s max_rise 5%, Mann-Whitney p < 0.01.", "",
             f"- unchanged (A/B of the same code): {len(same)} decisions; regressed (false alarms): {cs['regressed']}; "
             f"pass: {cs['pass']}; inconclusive: {cs['inconclusive']}",
             f"- 10% sync slowdown injected in B: {len(slow)} decisions; regressed (detected): {cw['regressed']}; "
             f"pass: {cw['pass']}; inconclusive: {cw['inconclusive']}", "", "## Reasons", ""]
    lines += [f"- same-{i}: {v}: {r[:220]}" for i, (v, r) in enumerate(same)]
    lines += [f"- slow-{i}: {v}: {r[:220]}" for i, (v, r) in enumerate(slow)]
    store = history.HistoryStore(reports / "history.sqlite")
    la, da, fa = compare.side(store, "same-0")
    lb, db, fb = compare.side(store, "slow-0")
    lines += ["", "## colobench compare same-0 slow-0 (two real runs from this history)", "",
              compare.markdown(la, lb, compare.rows(da, db), fa, fb)]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:6]))


if __name__ == "__main__":
    main()
