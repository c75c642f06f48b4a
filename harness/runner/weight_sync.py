"""Weight sync from trainer to engine after every step.

- colocated: tensors flattened into one bucket per dtype (the FlattenedTensorBucket shape), serialized with torch's
  ForkingPickler (CUDA IPC handles on GPU; shared-memory files on CPU, the CPU analogue) and sent to
  POST /update_weights_from_tensor with load_format "flattened_bucket", one payload per engine TP rank;
- split: POST /init_weights_update_group + a process group (NCCL on GPU, Gloo on CPU) with the trainer as rank 0,
  then POST /update_weights_from_distributed while broadcasting each tensor in order.
The receiving half for the CPU reference engine (`unflatten`, `SafeUnpickler`, `custom_group`) lives here too,
so both ends of the wire format are in one file. With a real sglang the sender uses sglang's own serializer and
bucket classes (its unpickler allows only those).
"""

from __future__ import annotations

import base64
import inspect
import io
import pickle
import threading
import time
from datetime import timedelta
from multiprocessing.reduction import ForkingPickler
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.multiprocessing  # noqa: F401 - registers torch's reductions with ForkingPickler

from harness.runner import events
from harness.runner.host import free_port, node_ip

_SAFE_MODULES = {
    "torch",
    "torch.multiprocessing.reductions",
    "torch.storage",
    "torch._utils",
    "collections",
    "torch._tensor",
}
_SAFE_BUILTINS = {
    "list",
    "dict",
    "tuple",
    "set",
    "frozenset",
    "int",
    "float",
    "str",
    "bytes",
    "bool",
    "slice",
    "complex",
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickles tensors, storages and builtins only (payloads arrive over HTTP)."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _SAFE_BUILTINS or module in _SAFE_MODULES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"blocked unsafe global {module}.{name} in weight payload")


def serialize(obj: Any) -> str:
    """ForkingPickler -> base64 text (the wire format sglang's MultiprocessingSerializer(output_str=True) uses)."""
    if not any(t.is_cuda for t in _tensors(obj)):
        torch.multiprocessing.set_sharing_strategy("file_system")
    buf = io.BytesIO()
    ForkingPickler(buf).dump(obj)
    return base64.b64encode(buf.getvalue()).decode()


def deserialize(text: str) -> Any:
    import torch.multiprocessing.reductions  # noqa: F401 - registers the rebuild functions

    return SafeUnpickler(io.BytesIO(base64.b64decode(text, validate=True))).load()


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _tensors(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _tensors(v)]
    return []


def by_dtype(named: list[tuple[str, torch.Tensor]]) -> dict[torch.dtype, list[tuple[str, torch.Tensor]]]:
    """Tensors grouped by dtype, in order: one bucket each."""
    out: dict[torch.dtype, list[tuple[str, torch.Tensor]]] = {}
    for name, t in named:
        out.setdefault(t.dtype, []).append((name, t))
    return out


def flatten(named: list[tuple[str, torch.Tensor]]) -> list[dict]:
    """One bucket per dtype: {"flattened_tensor": uint8 1-D, "metadata": [{name, shape, dtype, start, end}]}."""
    buckets = []
    for dtype, items in by_dtype(named).items():
        parts, meta, offset = [], [], 0
        for name, t in items:
            flat = t.detach().contiguous().reshape(-1).view(torch.uint8)
            parts.append(flat)
            meta.append(
                {
                    "name": name,
                    "shape": list(t.shape),
                    "dtype": str(dtype).removeprefix("torch."),
                    "start": offset,
                    "end": offset + flat.numel(),
                }
            )
            offset += flat.numel()
        buckets.append({"flattened_tensor": torch.cat(parts), "metadata": meta})  # a fresh buffer, as sglang's bucket
    return buckets


def unflatten(bucket: dict) -> list[tuple[str, torch.Tensor]]:
    flat = bucket["flattened_tensor"]
    return [
        (m["name"], flat[m["start"] : m["end"]].view(getattr(torch, m["dtype"])).view(m["shape"]))
        for m in bucket["metadata"]
    ]


def chunks(named: list[tuple[str, torch.Tensor]], limit_bytes: int) -> list[list[tuple[str, torch.Tensor]]]:
    """Consecutive groups of tensors of at most `limit_bytes` each (a larger single tensor is a group alone)."""
    out: list[list[tuple[str, torch.Tensor]]] = [[]]
    size = 0
    for name, t in named:
        n = t.numel() * t.element_size()
        if out[-1] and size + n > limit_bytes:
            out.append([])
            size = 0
        out[-1].append((name, t))
        size += n
    return [c for c in out if c]


Codec = Callable[[list[tuple[str, torch.Tensor]]], list[tuple[list[str], Any]]]


def reference_codec(named: list[tuple[str, torch.Tensor]]) -> list[tuple[list[str], Any]]:
    """([payload for the one rank], keep-alive) per dtype bucket for the reference engine (TP1)."""
    return [([serialize(b)], b) for b in flatten(named)]


def no_payload_codec(named: list[tuple[str, torch.Tensor]]) -> list[tuple[list[str], Any]]:
    """A trainer rank with no engine rank of its own: no payload, but the same buckets (the gather is a collective)."""
    return [([], None) for _ in by_dtype(named)]


class RankGather:
    """Several trainer ranks, one engine: each rank encodes its engine rank's payload, rank 0 posts them all.

    Payloads travel over a Gloo group (text, never NCCL); the barrier keeps every rank's buffer alive until the
    engine has answered rank 0's POST."""

    def __init__(self) -> None:
        self.group = dist.new_group(backend="gloo")
        self.rank, self.world = dist.get_rank(), dist.get_world_size()

    def gather(self, payloads: list[str]) -> list[str] | None:
        """Every rank's payloads in rank order on rank 0; None elsewhere."""
        out: list | None = [None] * self.world if self.rank == 0 else None
        dist.gather_object(payloads, out, dst=0, group=self.group)
        return [p for per_rank in out for p in per_rank] if out is not None else None

    def barrier(self) -> None:
        dist.barrier(group=self.group)


def sync_colocated(
    client,
    named: list[tuple[str, torch.Tensor]],
    weight_version: str,
    codec: Codec = reference_codec,
    bucket_bytes: int = 512 * 2**20,
    ranks: RankGather | None = None,
) -> dict:
    """Send all tensors through update_weights_from_tensor in chunks; returns bytes, seconds and POST count.

    The codec gives one payload per engine TP rank (each rank maps a buffer on its own GPU, as Miles' per-rank
    gather does); with `ranks`, each trainer rank encodes its own and rank 0 posts. The buffers are kept alive
    until the engine has answered.
    """
    start = time.perf_counter()
    posts = 0
    groups = chunks(named, bucket_bytes)
    for i, chunk in enumerate(groups):
        encoded = codec(chunk)
        for j, (per_rank, keep_alive) in enumerate(encoded):
            if ranks is not None:
                per_rank = ranks.gather(per_rank)
            if per_rank is not None:  # the last POST flushes the cache (no extra round trip)
                last = i == len(groups) - 1 and j == len(encoded) - 1
                client.update_weights_from_tensor(
                    per_rank, load_format="flattened_bucket", flush_cache=last, weight_version=weight_version
                )
                posts += 1
            if ranks is not None:
                ranks.barrier()
            del keep_alive
    total = sum(t.numel() * t.element_size() for _, t in named)
    return {"bytes": total, "seconds": time.perf_counter() - start, "buckets": posts}


def custom_group(
    backend: str, master: str, port: int, rank: int, world: int, group_name: str, timeout_s: float = 120.0
):
    """A process group outside the default one, built as sglang's init_custom_process_group builds it: the store's
    keys prefixed with the group name (without the prefix, NCCL's unique id is never found by the engine's side and
    both ends wait forever in the first broadcast: seen on 2xH200 with sglang 0.5.12)."""
    from torch.distributed import distributed_c10d as c10d

    store, rank, world = next(
        c10d.rendezvous(f"tcp://{master}:{port}", rank, world, timeout=timedelta(seconds=timeout_s))
    )
    store.set_timeout(timedelta(seconds=timeout_s))
    store = c10d.PrefixStore(group_name, store)
    params = inspect.signature(c10d._new_process_group_helper).parameters
    kwargs: dict[str, Any] = {"group_name": group_name, "timeout": timedelta(seconds=timeout_s)}
    for name in ("backend_options", "pg_options"):
        if name in params:
            kwargs[name] = None
    pg, _ = c10d._new_process_group_helper(world, rank, [], c10d.Backend(backend), store, **kwargs)
    c10d._world.pg_group_ranks[pg] = {i: i for i in range(world)}
    return pg


class BroadcastSync:
    """The split path: a weight-update group with the trainer as rank 0, then per-step broadcasts."""

    def __init__(self, client, engine_tp: int, backend: str, group_name: str = "weight_update_group") -> None:
        self.client = client
        self.group_name = group_name
        master = node_ip()  # the trainer's node: the engine may run on another one
        port = free_port(host=master)
        reply: dict = {}
        thread = threading.Thread(
            target=lambda: reply.update(
                client.init_weights_update_group(master, port, 1, engine_tp + 1, group_name, backend)
            )
        )
        thread.start()
        self.group = custom_group(backend, master, port, 0, engine_tp + 1, group_name)
        thread.join()
        if not reply.get("success", False):
            raise RuntimeError(f"init_weights_update_group failed: {reply.get('message')}")
        events.log(f"weight update group {group_name} ready ({backend}, world {engine_tp + 1})")

    def sync(self, named: list[tuple[str, torch.Tensor]], weight_version: str) -> dict:
        start = time.perf_counter()
        reply: dict = {}
        names = [n for n, _ in named]
        dtypes = [str(t.dtype).removeprefix("torch.") for _, t in named]
        shapes = [list(t.shape) for _, t in named]
        thread = threading.Thread(
            target=lambda: reply.update(
                self.client.update_weights_from_distributed(
                    names, dtypes, shapes, self.group_name, weight_version=weight_version
                )
            )
        )
        thread.start()
        for _, t in named:
            dist.broadcast(t.detach().contiguous(), src=0, group=self.group)
        thread.join()
        if not reply.get("success", False):
            raise RuntimeError(f"update_weights_from_distributed failed: {reply.get('message')}")
        total = sum(t.numel() * t.element_size() for _, t in named)
        return {"bytes": total, "seconds": time.perf_counter() - start, "buckets": len(named)}
