"""Time the CPU smoke matrix and the harness's own overhead per scenario (a benchmark, not a test).

overhead = wall time of execute.run_scenario - the runner process's lifetime (launch, lease, judging, reports);
ray_start = the runner's `placement` event - its `runner_start` event (Ray's own start, inside the runner).
Usage: python benchmarks/smoke_timing.py [--out reports/smoke-timing.md]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

from harness.matrix import models, scenario
from harness.run import execute, session

SMOKE = Path(__file__).resolve().parent.parent / "matrix" / "smoke.yaml"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="reports/smoke-timing.md")
    args = p.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="smoke-timing-"))
    scenarios = scenario.load(SMOKE, models.load()).scenarios
    sess = session.Session(run_dir, execute.Options(infra_retries=0))
    rows, start = [], time.monotonic()
    for s in scenarios:
        t = time.monotonic()
        res = execute.run_scenario(s, run_dir, sess.options)
        sess.results.append(res)
        sess.write_reports()
        wall = time.monotonic() - t
        events = {
            e["event"]: e["t"]
            for e in map(json.loads, (run_dir / s.id / "events.jsonl").open())
            if e["event"] in ("runner_start", "placement")
        }
        rows.append(
            [
                s.id,
                res.verdict.value,
                f"{wall:.1f}",
                f"{res.duration_s:.1f}",
                f"{events.get('placement', 0) - events.get('runner_start', 0):.1f}",
                f"{wall - res.duration_s:.2f}",
            ]
        )
    total = time.monotonic() - start
    text = "\n".join(
        [
            "# CPU smoke matrix timing",
            "",
            f"date: {time.strftime('%Y-%m-%d %H:%M')}; host: {os.cpu_count()} cores; total wall: {total:.0f}s for "
            f"{len(scenarios)} scenarios (target: 180 s on 2 cores)",
            "",
            tabulate(
                rows,
                headers=["scenario", "verdict", "wall s", "runner s", "ray start s", "harness overhead s"],
                tablefmt="github",
            ),
            "",
        ]
    )
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
