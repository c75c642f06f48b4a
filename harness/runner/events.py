"""The runner's side of the event stream: JSON lines `{"t": ..., "event": ...}` appended to events.jsonl.

Every process of a run (driver, Ray actors, engine server) may write; each line is one write() on a file opened
in append mode, so lines never interleave. `t` is seconds since the run's start (COLOBENCH_T0, wall clock).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

_T0_ENV = "COLOBENCH_T0"


def t0() -> float:
    value = os.environ.get(_T0_ENV)
    if value is None:
        value = str(time.time())
        os.environ[_T0_ENV] = value  # children (Ray workers, servers) inherit the same origin
    return float(value)


def emit(event: str, **fields: Any) -> dict:
    record = {"t": round(time.time() - t0(), 4), "event": event, **fields}
    path = os.environ.get("COLOBENCH_EVENTS")
    if path:
        line = (json.dumps(record, default=str) + "\n").encode()
        os.makedirs(os.path.dirname(path), exist_ok=True)  # on another node the run folder's path may not exist yet
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    return record


def metric(name: str, value: float, unit: str, step: int | None = None, **extra: Any) -> dict:
    return emit("metric", name=name, value=value, unit=unit, step=step, **extra)


def log(message: str) -> None:
    """A line on the process's own log (stdout), flushed."""
    print(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {message}", flush=True)
