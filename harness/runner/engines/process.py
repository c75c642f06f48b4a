"""Start an engine server process, standalone or from a Ray actor, and wait until it is healthy.

- `EngineProcess`: argv + env -> a child whose stdout/stderr go to `<run dir>/engine-<i>.log`; `wait_healthy`
  polls /health_generate and notices the process dying (`Server process terminated unexpectedly.`).
- `EngineActor`: the Ray actor that shares the trainer's bundle and spawns the same process from inside Ray,
  with RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES, as Miles does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from harness.runner import events
from harness.runner.engines.client import EngineClient
from harness.runner.host import context


class EngineDied(RuntimeError):
    pass


class EngineProcess:
    def __init__(self, argv: list[str], env: dict[str, str], log_path: str, url: str) -> None:
        self.argv, self.env, self.log_path, self.url = argv, env, log_path, url
        self.proc: subprocess.Popen | None = None

    def start(self) -> int:
        log = open(self.log_path, "ab", buffering=0)
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return self.proc.pid

    def wait_healthy(self, timeout_s: float) -> float:
        """Seconds until healthy; raises EngineDied when the process exits, TimeoutError past the budget."""
        client = EngineClient(self.url)
        start = time.monotonic()
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise EngineDied(
                    f"Server process terminated unexpectedly. (exit code {self.proc.returncode}; "
                    f"see {Path(self.log_path).name})"
                )
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


def make_engine_actor():
    """The Ray actor class (built lazily so that importing this module does not need ray)."""
    import ray

    @ray.remote
    class EngineActor:
        def __init__(self) -> None:
            self.engine: EngineProcess | None = None

        def start(
            self, argv: list[str], env_overrides: dict[str, str], log_path: str, url: str, base_gpu_id: int
        ) -> dict:
            os.makedirs(os.path.dirname(log_path), exist_ok=True)  # the run folder's path on this actor's node
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
