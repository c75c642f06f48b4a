"""Start a runner as a subprocess in its own process group; capture its logs and events live; enforce timeouts.

- Owns: the subprocess (argv lists only, never a shell), its environment, the hard timeout that kills the whole
  process group, live reading of events.jsonl and of every *.log in the run folder (with arrival times), py-spy
  dumps of stuck processes, and the sweep for processes a run left behind.
- Does not own: judging logs (milestones.py), naming causes (triage.py), verdicts (execute.py).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness import REPO_ROOT, redact
from harness.errors import LaunchError
from harness.judge.logs import LogLine

TOKEN_ENV = "COLOBENCH_TOKEN"
RAY_TEMP_ENV = "COLOBENCH_RAY_TEMP"  # the runner's Ray temp folder: removed by the harness too (a killed runner)
TIMEOUT_LINE = "colobench: runner timed out after {t:.0f}s (process group killed)"


@dataclass
class LaunchResult:
    returncode: int | None
    timed_out: bool
    duration_s: float
    events: list[dict] = field(default_factory=list)
    lines: list[LogLine] = field(default_factory=list)
    malformed_events: list[int] = field(default_factory=list)
    events_file_found: bool = False
    leaks: list[str] = field(default_factory=list)
    stack_dumps: list[str] = field(default_factory=list)


class _Tail:
    """Incremental reader of one text file: complete lines only, with the time they were first seen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.count = 0
        self.partial = b""

    def read(self, now: float | None, final: bool = False) -> list[tuple[int, str, float | None]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return []
        self.offset += len(data)
        data = self.partial + data
        parts = data.split(b"\n")
        self.partial = b"" if final else parts.pop()
        out = []
        for raw in parts:
            if not raw and final:
                continue
            self.count += 1
            out.append((self.count, raw.decode("utf-8", errors="replace"), now))
        return out


class Capture:
    """Live capture of a run folder: events.jsonl and every log file, with arrival times relative to start."""

    def __init__(
        self, run_dir: Path, on_event: Callable[[dict], None] | None = None, secrets: list[str] | None = None
    ) -> None:
        self.run_dir = run_dir
        self.on_event = on_event
        self.secrets = secrets or []
        self.start = time.monotonic()
        self.events: list[dict] = []
        self.malformed: list[int] = []
        self.lines: list[LogLine] = []
        self._tails: dict[Path, _Tail] = {}
        self._events_tail = _Tail(run_dir / "events.jsonl")

    def poll(self, final: bool = False) -> None:
        now = time.monotonic() - self.start
        for number, text, _ in self._events_tail.read(now, final):
            self._event(number, redact.scrub_text(text, self.secrets))  # masked where text enters the harness
        for path in sorted(self.run_dir.glob("*.log")):
            tail = self._tails.setdefault(path, _Tail(path))
            for number, text, t in tail.read(now, final):
                self.lines.append(LogLine(path.stem, number, redact.scrub_text(text, self.secrets), t))

    def _event(self, number: int, text: str) -> None:
        if not text.strip():
            return
        try:
            event = json.loads(text)
            if not isinstance(event, dict) or "event" not in event:
                raise ValueError("no event name")
        except ValueError:
            self.malformed.append(number)
            return
        self.events.append(event)
        if self.on_event:
            self.on_event(event)


def runner_argv(python: str, scenario_json: Path) -> list[str]:
    return [python, "-m", "harness.runner", str(scenario_json)]


def runner_env(extra: dict[str, str], cuda_visible_devices: str | None, run_dir: Path, token: str) -> dict[str, str]:
    """The runner's environment: ours, plus the scenario's, plus where to write events."""
    env = dict(os.environ)
    env.update({k: str(v) for k, v in extra.items()})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env["COLOBENCH_RUN_DIR"] = str(run_dir)
    env["COLOBENCH_EVENTS"] = str(run_dir / "events.jsonl")
    env[TOKEN_ENV] = token
    env[RAY_TEMP_ENV] = ray_temp(token)
    if cuda_visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible_devices
    return env


def ray_temp(token: str) -> str:
    """A short path (Ray's socket paths must stay short) the runner's Ray cluster uses and the harness removes;
    under COLOBENCH_RAY_TEMP_ROOT where /tmp will not do."""
    return os.path.join(os.environ.get("COLOBENCH_RAY_TEMP_ROOT") or "/tmp", f"cb-ray-{token[:12]}")


@functools.cache
def can_isolate_network() -> bool:
    """Whether this host lets a runner start in a network namespace of its own (root, unshare and ip present)."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    try:
        return (
            subprocess.run(
                ["unshare", "--net", "--", "ip", "link", "set", "lo", "up"], capture_output=True, timeout=20
            ).returncode
            == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


def isolated(argv: list[str]) -> list[str]:
    """argv run in a network namespace whose only interface is loopback: whatever Ray's servers bind (its GCS,
    raylet and workers listen on 0.0.0.0 whatever the node IP), nothing of the run is reachable from outside."""
    return ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "colobench-net", *argv]


def _stack_dump(pid: int, run_dir: Path) -> str | None:
    """py-spy dump of a process into the run folder, where py-spy is available."""
    spy = shutil.which("py-spy", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    if not spy:
        return None
    out = run_dir / f"py-spy-{pid}.txt"
    try:
        res = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=20)
        out.write_text(res.stdout + res.stderr)
        return out.name
    except (subprocess.SubprocessError, OSError):
        return None


def processes_with_token(token: str) -> list[tuple[int, str]]:
    """(pid, command line) of every process whose environment carries this run's token."""
    found = []
    needle = f"{TOKEN_ENV}={token}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                found.append((int(entry.name), cmd[:160]))
        except OSError:
            continue
    return found


def _kill_group(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, to the runner's whole process group; reaps the leader so a zombie does not count."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            proc.poll()
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def sweep(token: str) -> list[str]:
    """Kill what a finished run left behind; return 'process PID COMMAND (killed)' for each (a leak)."""
    leaks = processes_with_token(token)
    for pid, _ in leaks:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return [f"process {pid} {cmd} (killed)" for pid, cmd in leaks]


class _Shielded:
    """SIGINT/SIGTERM held back while a run is cleaned up (a second Ctrl-C must not stop the sweep); re-raised after."""

    def __enter__(self) -> "_Shielded":
        self.pending: list[int] = []
        self.saved = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, lambda s, f: self.pending.append(s))
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
        if self.pending and exc[0] is None:
            raise KeyboardInterrupt


def run(
    argv: list[str],
    env: dict[str, str],
    run_dir: Path,
    timeout_s: float,
    cwd: Path | None = None,
    on_event: Callable[[dict], None] | None = None,
    poll_s: float = 0.2,
    secrets: list[str] | None = None,
) -> LaunchResult:
    """Run one runner to completion or timeout. Never raises for the runner's own failures; on an interrupt the
    process group, its leftovers and its Ray temp folder are gone before KeyboardInterrupt goes on up."""
    token = env.get(TOKEN_ENV) or uuid.uuid4().hex
    env = {**env, TOKEN_ENV: token}
    log_path = run_dir / "runner.log"
    capture = Capture(run_dir, on_event, secrets)
    try:
        log = open(log_path, "ab", buffering=0)
    except OSError as exc:
        raise LaunchError(f"{log_path}: cannot write the runner log: {exc.strerror}") from None
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
        )
    except OSError as exc:
        log.close()
        raise LaunchError(f"runner: cannot start {argv[0]!r}: {exc.strerror or exc}") from None
    timed_out = False
    dumps: list[str] = []
    leaks: list[str] = []
    try:
        while proc.poll() is None:
            capture.poll()
            if time.monotonic() - capture.start > timeout_s:
                timed_out = True
                for pid in dict.fromkeys([proc.pid] + [p for p, _ in processes_with_token(token)]):
                    name = _stack_dump(pid, run_dir)
                    if name:
                        dumps.append(name)
                log.write((TIMEOUT_LINE.format(t=timeout_s) + "\n").encode())
                _kill_group(proc)
                break
            time.sleep(poll_s)
    finally:
        with _Shielded():
            if proc.poll() is None:
                _kill_group(proc, grace_s=2.0)
            proc.wait()
            log.close()
            leaks = sweep(token)
            shutil.rmtree(env.get(RAY_TEMP_ENV) or ray_temp(token), ignore_errors=True)
            redact.scrub_folder(run_dir, secrets or [])
    duration = time.monotonic() - capture.start
    capture.poll(final=True)
    return LaunchResult(
        returncode=proc.returncode,
        timed_out=timed_out,
        duration_s=duration,
        events=capture.events,
        lines=capture.lines,
        malformed_events=capture.malformed,
        events_file_found=(run_dir / "events.jsonl").exists(),
        leaks=leaks,
        stack_dumps=dumps,
    )
