"""GPU leases across parallel workers (file locks), and CUDA_VISIBLE_DEVICES built from a lease and an offset.

- Owns: which physical GPUs this host shows, leasing disjoint sets of them across processes (pytest-xdist
  workers, parallel `colobench run`s), and the CUDA_VISIBLE_DEVICES string a scenario gets.
- Does not own: what a runner does with the devices (harness/runner/placement.py maps them to engines).

Offsets: a scenario with `cvd_offset: k` wants the host's GPUs rotated by k, e.g. on 2 GPUs offset 1 gives "1"
for one GPU and "1,0" for two. Such a lease waits for exactly those GPUs. An offset-0 scenario takes any free GPUs,
lowest first, so that 1-, 2- and 4-GPU scenarios pack onto one host.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import LaunchError, NotEnoughGpus

LOCK_DIR_ENV = "COLOBENCH_GPU_LOCK_DIR"
GPUS_ENV = "COLOBENCH_GPUS"  # overrides discovery, e.g. "0,1" (tests; hosts without nvidia-smi)


def visible_gpus() -> list[int]:
    """Physical GPU indices this process may use: COLOBENCH_GPUS, else CUDA_VISIBLE_DEVICES, else nvidia-smi."""
    for name in (GPUS_ENV, "CUDA_VISIBLE_DEVICES"):
        value = os.environ.get(name)
        if value is not None:
            return [int(x) for x in value.split(",") if x.strip().isdigit()]
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [int(x) for x in out.split() if x.isdigit()]


def _smi(query: str, kind: str = "--query-gpu") -> list[list[str]]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", f"{kind}={query}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [[x.strip() for x in line.split(",")] for line in out.splitlines() if line.strip()]


def memory_used_mib(gpus: list[int]) -> dict[int, int]:
    """MiB in use per physical GPU (NVML through nvidia-smi); empty where there is no driver."""
    return {int(i): int(m) for i, m in _smi("index,memory.used") if i.isdigit() and m.isdigit() and int(i) in gpus}


TOLERANCE_MIB = 256


def grown(before: dict[int, int], after: dict[int, int]) -> list[int]:
    """GPUs holding more than TOLERANCE_MIB above `before`."""
    return [g for g, mib in after.items() if mib > before.get(g, mib) + TOLERANCE_MIB]


def memory_after(
    before: dict[int, int], gpus: list[int], settle_s: float = 30.0, poll_s: float = 0.5
) -> dict[int, int]:
    """GPU memory after a scenario, read again until it is back near `before` or `settle_s` has passed. A process
    that is exiting frees its memory a little later (on an H200 a killed Ray actor's 1.5 GB came back ~0.2 s after
    `ray.kill`: benchmarks/gpu_release_after_kill.py); read at once, an attached run's trainer still held 1 GB."""
    deadline = time.monotonic() + settle_s
    while True:
        after = memory_used_mib(gpus)
        if not grown(before, after) or time.monotonic() >= deadline:
            return after
        time.sleep(poll_s)


def memory_leaks(before: dict[int, int], after: dict[int, int]) -> list[str]:
    """GPUs whose memory did not come back after a scenario, with the processes still holding memory."""
    held = grown(before, after)
    if not held:
        return []
    apps = _smi("pid,process_name,used_memory", "--query-compute-apps")
    holders = ", ".join(f"pid {p} {n} ({m} MiB)" for p, n, m in apps) or "no process listed"
    return [f"GPU {g}: {before.get(g)} -> {after[g]} MiB after the scenario; held by {holders}" for g in held]


def rotated(gpus: list[int], offset: int) -> list[int]:
    """The host's GPUs starting at position `offset` (wrapping)."""
    if not gpus:
        return []
    k = offset % len(gpus)
    return gpus[k:] + gpus[:k]


def cuda_visible_devices(lease: list[int]) -> str:
    return ",".join(str(g) for g in lease)


@dataclass
class Lease:
    """Held GPUs; release() (or leaving the `with` block) frees them."""

    gpus: list[int]
    _handles: list = field(default_factory=list, repr=False)

    @property
    def cuda_visible_devices(self) -> str:
        return cuda_visible_devices(self.gpus)

    def release(self) -> None:
        for fh in self._handles:
            try:
                fcntl.flock(fh, fcntl.LOCK_UN)
            finally:
                fh.close()
        self._handles.clear()

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _lock_dir() -> Path:
    path = Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "colobench-gpu-locks")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _try(gpus: list[int], folder: Path) -> list | None:
    handles = []
    for g in gpus:
        fh = open(folder / f"gpu{g}.lock", "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            for h in handles:
                fcntl.flock(h, fcntl.LOCK_UN)
                h.close()
            return None
        handles.append(fh)
    return handles


def candidates(host: list[int], count: int, offset: int) -> list[list[int]]:
    """The GPU sets a lease may take, in preference order."""
    if count > len(host):
        return []
    order = rotated(host, offset)
    if offset:
        return [order[:count]]
    from itertools import combinations

    return [list(c) for c in combinations(order, count)]


def acquire(
    count: int, offset: int = 0, timeout_s: float = 3600.0, host: list[int] | None = None, poll_s: float = 0.5
) -> Lease:
    """Lease `count` GPUs (0 gives an empty lease); waits for free ones up to `timeout_s`."""
    if count == 0:
        return Lease([])
    host = visible_gpus() if host is None else host
    options = candidates(host, count, offset)
    if not options:
        raise NotEnoughGpus(
            f"gpus: needs {count} GPUs, this host shows {len(host)} ({cuda_visible_devices(host) or 'none'})"
        )
    folder = _lock_dir()
    deadline = time.monotonic() + timeout_s
    while True:
        for gpus in options:
            handles = _try(gpus, folder)
            if handles is not None:
                return Lease(gpus, handles)
        if time.monotonic() > deadline:
            raise LaunchError(
                f"gpus: no {count} free GPUs (offset {offset}) after {timeout_s:.0f}s; held by other workers"
            )
        time.sleep(poll_s)
