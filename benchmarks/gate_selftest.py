"""Gate self-test on the CPU reference engine: are a 10% sync slowdown and noise told apart?

Each decision is an A/B on this machine (`colobench run --ab A,B --repeat K`: A B A B ..., so host drift hits both):
1. N decisions `none,none` (the same code twice): any `regressed` is a false alarm;
2. M decisions `none,inject:sync_slowdown:0.1` (10% added to the sync path): `regressed` is a detection.
The gate is the scenario's (benchmarks/gate_selftest.yaml), judged on one value per run.
Writes reports/gate-selftest.md. Usage: python benchmarks/gate_selftest.py [--reruns 20] [--slow-runs 5] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path

from harness import cli
from harness.judge import metrics
from harness.matrix import yamlfile

MATRIX = str(Path(__file__).with_name("gate_selftest.yaml"))
METRIC = "weight_sync_s"
RUN_RESULT = "*.ab*[ab]/result.json"  # one run of either side (the decision itself is *.ab-A-vs-B)


def decision(reports: Path, run_id: str, variants: str, run: bool = True, repeat: int = 1) -> tuple[str, str]:
    """One A/B decision (or, with run=False, the one already in reports/runs/<run_id>)."""
    if run:
        cli.main(
            [
                "run",
                "--matrix",
                MATRIX,
                "--reports-dir",
                str(reports),
                "--run-id",
                run_id,
                "--ab",
                variants,
                "--repeat",
                str(repeat),
            ]
        )
    result = json.loads(next((reports / "runs" / run_id).glob("*.ab-*/result.json")).read_text())
    return result["verdict"], result["reason"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--reruns", type=int, default=20)
    p.add_argument("--slow-runs", type=int, default=5)
    p.add_argument("--reports", default=f"/tmp/colobench-selftest-{int(time.time())}")
    p.add_argument("--out", default="reports/gate-selftest.md")
    p.add_argument("--summarize-only", action="store_true", help="re-read the decisions already under --reports")
    p.add_argument("--repeat", type=int, default=5, help="runs per side of each decision (one value per run)")
    args = p.parse_args()
    reports = Path(args.reports)
    run = not args.summarize_only
    same = [decision(reports, f"same-{i}", "none,none", run, args.repeat) for i in range(args.reruns)]
    slow = [
        decision(reports, f"slow-{i}", "none,inject:sync_slowdown:0.1", run, args.repeat) for i in range(args.slow_runs)
    ]
    cs, cw = Counter(v for v, _ in same), Counter(v for v, _ in slow)
    unchanged = [
        json.loads(f.read_text())["metrics"][METRIC]
        for i in range(args.reruns)
        for f in (reports / "runs" / f"same-{i}").glob(RUN_RESULT)
    ]
    seconds = sum(json.loads(f.read_text())["duration_s"] for f in (reports / "runs").glob(f"*/{RUN_RESULT}"))
    gate = yamlfile.load(Path(MATRIX))["defaults"]["metrics"][METRIC]
    lines = [
        "# Gate self-test (CPU reference engine, 2 cores)",
        "",
        f"date: {time.strftime('%Y-%m-%d')}; {len(same) + len(slow)} decisions, {args.repeat} runs a side each "
        f"({seconds / 60:.0f} min of runs); scenario: tiny-llama colocated, 60 syncs per run; gate "
        f"`{METRIC}: {json.dumps(gate)}` (one value per run, one-sided Mann-Whitney U).",
        "",
        f"- unchanged (A/B of the same code): {len(same)} decisions; regressed (false alarms): {cs['regressed']}; "
        f"pass: {cs['pass']}; inconclusive: {cs['inconclusive']}",
        f"- 10% sync slowdown injected in B: {len(slow)} decisions; regressed (detected): {cw['regressed']}; "
        f"pass: {cw['pass']}; inconclusive: {cw['inconclusive']}",
        "",
        f"Run-to-run spread of {METRIC} over the {len(unchanged)} unchanged runs:",
    ]
    for stat, summarise in metrics.RUN_STATS.items():
        per_run = [summarise(v) for v in unchanged]
        mean, sd = statistics.mean(per_run), statistics.stdev(per_run)
        lines.append(f"- {stat} per run: mean {mean * 1e3:.2f} ms, sd {sd * 1e3:.2f} ms ({sd / mean:.1%})")
    lines += ["", "## Reasons", ""]
    lines += [f"- same-{i}: {v}: {r[:220]}" for i, (v, r) in enumerate(same)]
    lines += [f"- slow-{i}: {v}: {r[:220]}" for i, (v, r) in enumerate(slow)]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:6]))


if __name__ == "__main__":
    main()
