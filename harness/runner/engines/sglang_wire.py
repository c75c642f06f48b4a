"""The colocated weight payload for a real sglang: its FlattenedTensorBucket and MultiprocessingSerializer.

sglang's unpickler allows only its own bucket classes and torch rebuild functions (sglang-contract.md 5.4-5.5),
so the payload is built with its classes. monkey_patch_torch_reductions maps CUDA devices by UUID, so the engine
may see the GPUs under another CUDA_VISIBLE_DEVICES order than the trainer.
"""

from __future__ import annotations

from typing import Any

import torch


def sglang_codec(named: list[tuple[str, torch.Tensor]], devices: list[torch.device]) -> list[tuple[list[str], Any]]:
    """One payload per engine TP rank, each bucket on that rank's own GPU (a rank cannot load from another
    GPU's IPC buffer: seen on 2xH200 as `CUDA error: invalid argument` in the weight loader)."""
    from sglang.srt.utils import MultiprocessingSerializer
    from sglang.srt.utils.patch_torch import monkey_patch_torch_reductions

    try:
        from sglang.srt.weight_sync.tensor_bucket import FlattenedTensorBucket
    except ImportError:  # older layout (slime PR 553)
        from sglang.srt.model_executor.model_runner import FlattenedTensorBucket
    monkey_patch_torch_reductions()
    from harness.runner.weight_sync import by_dtype

    out = []
    for items in by_dtype(named).values():
        bucket = FlattenedTensorBucket(named_tensors=items)
        flat = bucket.get_flattened_tensor()
        copies = [flat if flat.device == d else flat.to(d) for d in devices]
        payloads = [
            MultiprocessingSerializer.serialize(
                {"flattened_tensor": c, "metadata": bucket.get_metadata()}, output_str=True
            )
            for c in copies
        ]
        out.append((payloads, (bucket, copies)))
    return out
