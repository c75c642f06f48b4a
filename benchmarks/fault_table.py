"""The fault table (issue 18): every fault a CI job meets, through the real `colobench run` on the CPU reference
engine -> verdict, exit code, JUnit intact, processes and Ray temp folders left. Writes reports/faults.md.

    python benchmarks/fault_table.py [--out reports/faults.md]

Each row runs in its own reports folder; "left" counts processes still carrying a colobench run token and
/tmp/cb-ray-* folders that were not there before the row.
"""

from __future__ import annotations

import argparse
import glob
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from junitparser import JUnitXml
from tabulate import tabulate

REPO = Path(__file__).resolve().parent.parent
NOTE = (
    "The sync_delay, sync_slowdown and slowdown rows pass by design: this scenario gates no timing (those faults "
    "exist for the relative gates' self-test and power study, `benchmarks/gate_selftest.py`, `gpu_power.py`). "
    "The noisy-host row is an A/B with defaults.yaml's `ab:` gates whose B runs' host probe is jittered, in 2 "
    "pairs (too few to measure their own spread, so the probe decides): `inconclusive: noisy host`, never pass or "
    "regressed. A Ray that cannot start is an infra-error "
    "(triage `ray-start-failed`), never a regression. The signal rows wait until the 2nd scenario's runner is up."
)
SCENARIO = """schema: 1
name: faults
defaults: {engine: reference, model: tiny-llama, timeout_s: 60, steps: 2}
include:
  - {tag: one}
  - {tag: two}
"""


def leftovers(before: set[str]) -> tuple[int, int]:
    procs = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                procs += b"COLOBENCH_TOKEN=" in (entry / "environ").read_bytes()
            except OSError:
                pass
    return procs, len(set(glob.glob("/tmp/cb-ray-*")) - before)


def junit_state(run_dir: Path) -> str:
    path = run_dir / "junit.xml"
    if not path.exists():
        return "none written"
    try:
        cases = [c for s in JUnitXml.fromfile(str(path)) for c in s]
    except Exception as exc:  # noqa: BLE001 - the table reports it
        return f"BROKEN ({exc})"
    kinds = [
        c.result[0].type if c.result and getattr(c.result[0], "type", None) else ("skipped" if c.result else "pass")
        for c in cases
    ]
    return f"valid, {len(cases)} cases: {', '.join(kinds)}"


def headline(run_dir: Path) -> str:
    path = run_dir / "summary.md"
    return path.read_text().splitlines()[0].split(": ", 1)[-1] if path.exists() else "-"


def run(args: list[str], env: dict | None = None, signals: tuple = (), wait_for: str = "") -> tuple[int, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    if signals:
        deadline = time.monotonic() + 300
        while not glob.glob(wait_for) and time.monotonic() < deadline:  # the 2nd scenario's runner has started
            time.sleep(0.2)
        time.sleep(3.0)
        for sig in signals:
            os.killpg(proc.pid, sig)
            time.sleep(0.3)
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out


def row(name: str, work: Path, args: list[str], **kw) -> list[str]:
    before = set(glob.glob("/tmp/cb-ray-*"))
    start = time.monotonic()
    if "signals" in kw:
        kw["wait_for"] = str(work / "runs" / "r" / "*.two" / "runner.log")
    code, out = run(["--reports-dir", str(work), "--run-id", "r", *args], **kw)
    time.sleep(1.0)
    procs, temps = leftovers(before)
    run_dir = work / "runs" / "r"
    last = [ln for ln in out.strip().splitlines() if ln.startswith("colobench:")][-1:] or [out.strip()[-200:]]
    return [
        name,
        headline(run_dir),
        str(code),
        junit_state(run_dir),
        f"{procs} processes, {temps} ray temp",
        f"{time.monotonic() - start:.0f}",
        last[0][:160],
    ]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=str(REPO / "reports" / "faults.md"))
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cb-faults-"))
    matrix = root / "faults.yaml"
    matrix.write_text(SCENARIO)
    one = ["--matrix", str(matrix), "-k", "one", "--retries", "0", "--no-history"]
    both = ["--matrix", str(matrix), "--retries", "0"]
    rows = []
    for inject in (
        "skip_tensor",
        "corrupt_tensor",
        "sync_delay:0.5",
        "sync_slowdown:0.1",
        "crash_engine_in_sync",
        "kill_runner_mid_step",
        "hang",
    ):
        rows.append(row(f"--inject {inject}", root / inject.split(":")[0], one + ["--inject", inject]))
    rows.append(row("--inject slowdown:0.05", root / "slowdown", one + ["--inject", "slowdown:0.05"]))
    rows.append(
        row(
            "--ab none,inject:noisy_host:0.5 (repeat 2)",
            root / "noisy",
            one + ["--ab", "none,inject:noisy_host:0.5", "--repeat", "2"],
        )
    )
    rows.append(row("SIGINT during the 2nd scenario", root / "sigint", both, signals=(signal.SIGINT,)))
    rows.append(row("SIGTERM during the 2nd scenario", root / "sigterm", both, signals=(signal.SIGTERM,)))
    rows.append(row("SIGINT twice", root / "sigint2", both, signals=(signal.SIGINT, signal.SIGINT)))
    port = root / "port.yaml"
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port.write_text(
            SCENARIO.replace(
                "{tag: one}", f"{{tag: one, network: host, engine_args: {{port: {sock.getsockname()[1]}}}}}"
            )
        )
        rows.append(
            row(
                "engine port already bound (network: host)",
                root / "port",
                ["--matrix", str(port), "-k", "one", "--retries", "0", "--no-history"],
            )
        )
    stale = root / "stale-ray"
    (stale / "session_2020-01-01_00-00-00_000000_1").mkdir(parents=True)
    (stale / "session_latest").symlink_to(stale / "session_2020-01-01_00-00-00_000000_1")
    rows.append(
        row(
            "stale Ray session + RAY_ADDRESS of a dead cluster",
            root / "stale",
            one,
            env={"RAY_ADDRESS": "127.0.0.1:1", "RAY_TMPDIR": str(stale)},
        )
    )
    deep = root / ("d" * 120)
    deep.mkdir()
    rows.append(
        row(
            "Ray cannot start (socket path too long)",
            root / "raystart",
            one,
            env={"COLOBENCH_RAY_TEMP_ROOT": str(deep)},
        )
    )
    shared = root / "shared"
    before = set(glob.glob("/tmp/cb-ray-*"))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness",
                "run",
                "--reports-dir",
                str(shared),
                "--run-id",
                rid,
                "--matrix",
                str(matrix),
                "-k",
                "one",
                "--retries",
                "0",
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rid in ("c1", "c2")
    ]
    codes = [pr.wait(timeout=600) for pr in procs]
    recorded = (
        sqlite3.connect(shared / "history.sqlite").execute("SELECT count(*) FROM runs").fetchone()[0]
        if (shared / "history.sqlite").exists()
        else 0
    )
    rows.append(
        [
            "two concurrent runs, one reports dir",
            f"{headline(shared / 'runs' / 'c1')} / {headline(shared / 'runs' / 'c2')}",
            "/".join(map(str, codes)),
            f"{junit_state(shared / 'runs' / 'c1')} / {junit_state(shared / 'runs' / 'c2')}",
            "%d processes, %d ray temp" % leftovers(before),
            "-",
            f"history rows: {recorded}",
        ]
    )
    corrupt = root / "corrupt"
    corrupt.mkdir()
    (corrupt / "history.sqlite").write_bytes(b"not a database" * 64)
    rows.append(row("corrupted history file", corrupt, ["--matrix", str(matrix), "-k", "one"]))
    text = [
        "# Fault table",
        "",
        f"`python benchmarks/fault_table.py` on {time.strftime('%Y-%m-%d')}, CPU reference "
        "engine, one scenario per row (two for the signal rows). Exit codes: 0 pass, 1 regressed, 2 bad input, "
        "3 infra-error, 130 interrupted.",
        "",
        tabulate(
            rows,
            headers=["fault", "verdict (summary headline)", "exit", "JUnit", "left running", "s", "last line"],
            tablefmt="github",
        ),
        "",
        NOTE,
        "",
    ]
    Path(args.out).write_text("\n".join(text))
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
