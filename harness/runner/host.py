"""What every process of a run asks of its host: its node's address, a free port there, the library versions it
sees, its launch context.

Used by the driver (loop.py), the engine launchers (engines/process.py), the trainers and the weight sync; imports
nothing of the runner, and torch only inside the functions that need it.
"""

from __future__ import annotations

import os
import random
import socket
import sys
from importlib.metadata import PackageNotFoundError, version

LOOPBACK_ENV = "COLOBENCH_LOOPBACK"  # set in a cluster the run owns: one machine, so every address is 127.0.0.1


def node_ip() -> str:
    """This node's address: 127.0.0.1 in the cluster a run owns (Ray would pick the machine's own IP even when told
    127.0.0.1), the node IP as Ray knows it in an attached cluster."""
    if os.environ.get(LOOPBACK_ENV):
        return "127.0.0.1"
    try:
        import ray

        if ray.is_initialized():
            return ray.util.get_node_ip_address()
    except ImportError:
        pass
    return "127.0.0.1"


def free_port(low: int = 20000, high: int = 34000, host: str = "127.0.0.1") -> int:
    """A free port on `host` below 34000: sglang derives other ports from its own (e.g. its gRPC port, +30000)."""
    for _ in range(200):
        port = random.randrange(low, high)
        with socket.socket() as s:
            try:
                s.bind((host, port))
                return port
            except OSError:
                continue
    raise RuntimeError("Address already in use: no free port in 20000-34000")


VERSIONED = (
    "torch",
    "transformers",
    "ray",
    "sglang",
    "sglang-kernel",
    "sgl-kernel",
    "flashinfer-python",
    "megatron-core",
    "torch-memory-saver",
    "safetensors",
)


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
    ctx = {
        "role": role,
        "pid": os.getpid(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "base_gpu_id": base_gpu_id,
        "env": {
            k: v
            for k, v in sorted(os.environ.items())
            if k.startswith(("RAY_EXPERIMENTAL_NOSET", "SGLANG_", "NCCL_", "CUDA_", "TORCH_", "LD_PRELOAD", "TMS_"))
        },
    }
    try:
        if not os.environ.get("CUDA_VISIBLE_DEVICES"):
            return {**ctx, **(extra or {})}  # CPU scenario: no device to probe (and no torch import)
        import torch

        if torch.cuda.is_available():
            ctx["devices"] = [
                {
                    "index": i,
                    "name": torch.cuda.get_device_name(i),
                    "uuid": str(getattr(torch.cuda.get_device_properties(i), "uuid", "")),
                }
                for i in range(torch.cuda.device_count())
            ]
    except Exception as exc:  # noqa: BLE001 - a context probe must never break a run
        ctx["devices_error"] = str(exc)
    ctx.update(extra or {})
    return ctx
