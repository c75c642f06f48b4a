"""How long a killed Ray actor's GPU memory takes to come back: why the harness reads GPU memory again for a while
(harness/run/gpus.memory_after) before it calls memory left behind after a scenario on an attached cluster.

    PYTHONPATH=$PWD python benchmarks/gpu_release_after_kill.py [--address HOST:PORT] [--trials 5] [--mib 1024]

Per trial: an actor (num_gpus=1) allocates `--mib` on GPU 0, `ray.kill`s it, then reads GPU memory the way the harness
does (gpus.memory_used_mib, every 50 ms) and /proc until the memory is back (gpus.grown: none above the tolerance) and
the process is gone. One JSON line per trial on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import ray

from harness.run import gpus


@ray.remote(num_gpus=1)
class Holder:
    def hold(self, mib: int) -> int:
        import torch

        self.block = torch.empty(mib * 2**20, dtype=torch.uint8, device="cuda")
        torch.cuda.synchronize()
        return os.getpid()


def trial(mib: int, limit_s: float = 60.0) -> dict:
    base = gpus.memory_used_mib([0])
    holder = Holder.remote()
    pid = ray.get(holder.hold.remote(mib))
    held = gpus.memory_used_mib([0])
    start = time.monotonic()
    ray.kill(holder)
    returned_s = gone_s = None
    while time.monotonic() - start < limit_s and (returned_s is None or gone_s is None):
        now = time.monotonic() - start
        if gone_s is None and not os.path.exists(f"/proc/{pid}"):
            gone_s = now
        if returned_s is None and not gpus.grown(base, gpus.memory_used_mib([0])):
            returned_s = now
        time.sleep(0.05)
    return {"base_mib": base[0], "held_mib": held[0], "pid": pid, "process_gone_s": gone_s, "memory_back_s": returned_s}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--address", help="an existing cluster (default: a local one started here)")
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--mib", type=int, default=1024)
    ns = p.parse_args(argv)
    if not gpus.memory_used_mib([0]):
        print("gpu_release_after_kill: nvidia-smi reports no GPU 0 here", file=sys.stderr)
        return 2
    ray.init(address=ns.address, log_to_driver=False, logging_level="WARNING")
    try:
        for _ in range(ns.trials):
            print(json.dumps({"cluster": "attached" if ns.address else "own", **trial(ns.mib)}), flush=True)
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
