"""Start an engine server process, standalone or from a Ray actor, and wait until it is healthy; and what a process
of the run sees (its launch context, library versions, a free port).

- `EngineProcess`: argv + env -> a child whose stdout/stderr go to `<run dir>/engine-<i>.log`; `wait_healthy`
  polls /health_generate and notices the process dying (`Server process terminated unexpectedly.`).
- `EngineActor`: the Ray actor that shares the trainer's bundle and spawns the same process from inside Ray,
  with RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES, as Miles does.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from harness.runner import events
from harness.runner.engines.client import EngineClient


class EngineDied(RuntimeError):
    pass


class EngineProcess:
    def __init__(self, argv: list[str], env: dict[str, str], log_path: str, url: str) -> None:
        self.argv, self.env, self.log_path, self.url = argv, env, log_path, url
        self.proc: subprocess.Popen | None = None

    def start(self) -> int:
        log = open(self.log_path, "ab", buffering=0)
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        return self.proc.pid

    def wait_healthy(self, timeout_s: float) -> float:
        """Seconds until healthy; raises EngineDied when the process exits, TimeoutError past the budget."""
        client = EngineClient(self.url)
        start = time.monotonic()
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise EngineDied(f"Server process terminated unexpectedly. (exit code {self.proc.returncode}; "
                                 f"see {Path(self.log_path).name})")
            if client.healthy():
                return time.monotonic() - start
            if time.monotonic() - start > timeout_s:
                raise TimeoutError(f"colobench: engine did not become healthy within {timeout_s:.0f}s")
            time.sleep(0.5)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Used by fault injection: the engine dies abruptly."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self, grace_s: float = 10.0) -> int | None:
        if not self.alive():
            return self.proc.returncode if self.proc else None
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=grace_s)
                break
            except subprocess.TimeoutExpired:
                continue
        return self.proc.returncode


def free_port(low: int = 20000, high: int = 34000) -> int:
    """A free 127.0.0.1 port below 34000: sglang derives other ports from its own (e.g. its gRPC port, +30000)."""
    for _ in range(200):
        port = random.randrange(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("Address already in use: no free port in 20000-34000")


VERSIONED = ("torch", "transformers", "ray", "sglang", "sglang-kernel", "sgl-kernel", "flashinfer-python",
             "megatron-core", "torch-memory-saver", "safetensors")


def versions() -> dict[str, str]:
    """Library versions as this process sees them (the trainer reports them: it imports torch anyway)."""
    out = {"python": sys.version.split()[0]}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    try:
        import torch
        out["cuda"] = str(torch.version.cuda)
        if torch.cuda.is_available():
            out["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
            out["gpu"] = torch.cuda.get_device_name(0)
    except Exception as exc:  # noqa: BLE001 - reported, never fatal
        out["torch_error"] = str(exc)
    return out


def context(role: str, base_gpu_id: int | None = None, extra: dict | None = None) -> dict:
    """What this process sees: the launch context the report compares between launch modes."""
    ctx = {"role": role, "pid": os.getpid(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
           "base_gpu_id": base_gpu_id,
           "env": {k: v for k, v in sorted(os.environ.items())
                   if k.startswith(("RAY_EXPERIMENTAL_NOSET", "SGLANG_", "NCCL_", "CUDA_", "TORCH_", "LD_PRELOAD", "TMS_"))}}
    try:
        if not os.environ.get("CUDA_VISIBLE_DEVICES"):
            return {**ctx, **(extra or {})}        # CPU scenario: no device to probe (and no torch import)
        import torch
        if torch.cuda.is_available():
            ctx["devices"] = [{"index": i, "name": torch.cuda.get_device_name(i),
                               "uuid": str(getattr(torch.cuda.get_device_properties(i), "uuid", ""))}
                              for i in range(torch.cuda.device_count())]
    except Exception as exc:  # noqa: BLE001 - a context probe must never break a run
        ctx["devices_error"] = str(exc)
    ctx.update(extra or {})
    return ctx


def make_engine_actor():
    """The Ray actor class (built lazily so that importing this module does not need ray)."""
    import ray

    @ray.remote
    class EngineActor:
        def __init__(self) -> None:
            self.engine: EngineProcess | None = None

        def start(self, argv: list[str], env_overrides: dict[str, str], log_path: str, url: str, base_gpu_id: int) -> dict:
            env = {**os.environ, **env_overrides}
            self.engine = EngineProcess(argv, env, log_path, url)
            pid = self.engine.start()
            ctx = context("engine-launcher (ray actor)", base_gpu_id, {"server_pid": pid})
            ctx["server_env"] = {k: v for k, v in sorted(env.items()) if k in ctx["env"] or k in env_overrides}
            events.emit("launch_context", **ctx)
            return ctx

        def wait_healthy(self, timeout_s: float) -> float:
            return self.engine.wait_healthy(timeout_s)

        def alive(self) -> bool:
            return self.engine.alive()

        def kill(self) -> None:
            self.engine.kill()

        def stop(self) -> int | None:
            return self.engine.stop()

    return EngineActor
