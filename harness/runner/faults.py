"""Injected faults (a scenario's `fault:`), every hook in one place: the gates' self-tests and the power study's B.

- Owns: what each kind does and where (`Faults`): skip_tensor / corrupt_tensor change a sync's payload;
  sync_delay adds delay_s to every weight transfer, sync_slowdown lengthens it by factor; slowdown lengthens the timed
  rollout, train step and every transfer by factor (a known change on the host's real noise); kill_runner_mid_step and
  hang stop the loop after a rollout; crash_engine_in_sync kills the engine before a sync. Each acts from `step` on
  (default 1). noisy_host acts in the harness (run/hostprobe.py), not here.
- Does not own: the loop or the trainer (loop.py, trainers/base.py call these hooks).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from harness.runner import events

SKIP_DEFAULT = "model.layers.0.mlp.down_proj.weight"


class Faults:
    def __init__(self, spec: dict | None) -> None:
        self.spec = spec or {}
        self.kind = self.spec.get("kind")

    def active(self, step: int) -> bool:
        return self.kind is not None and step >= int(self.spec.get("step", 1))

    def stretch(self, started: float, phase: str, step: int) -> None:
        """At the end of a timed phase (rollout, train, transfer) begun at `started`: lengthen it as the fault says."""
        if not self.active(step):
            return
        if phase == "transfer" and self.kind == "sync_delay":
            time.sleep(float(self.spec.get("delay_s", 1.0)))
        if self.kind == "slowdown" or (phase == "transfer" and self.kind == "sync_slowdown"):
            time.sleep((time.perf_counter() - started) * float(self.spec.get("factor", 0.1)))

    def payload(self, named: list[tuple[str, Any]], step: int) -> list[tuple[str, Any]]:
        """The tensors a sync sends: one left out (skip_tensor) or changed (corrupt_tensor)."""
        if not self.active(step) or self.kind not in ("skip_tensor", "corrupt_tensor"):
            return named
        target = self.spec.get("tensor", SKIP_DEFAULT)
        if self.kind == "skip_tensor":
            return [(n, t) for n, t in named if n != target]
        return [(n, t + 0.5 if n == target else t) for n, t in named]

    def after_rollout(self, step: int) -> None:
        """The runner dies (kill_runner_mid_step) or hangs (hang) between a rollout and the train step."""
        if self.active(step) and self.kind == "kill_runner_mid_step":
            events.log("fault: runner kills itself mid-step")
            os.kill(os.getpid(), signal.SIGKILL)
        if self.active(step) and self.kind == "hang":
            events.log("fault: runner hangs mid-step")
            time.sleep(10**6)

    def crashes_engine(self, step: int) -> bool:
        """Whether the engine is to be killed before this step's weight sync (crash_engine_in_sync)."""
        if self.active(step) and self.kind == "crash_engine_in_sync":
            events.log("fault: engine killed during the weight sync")
            return True
        return False
