"""Trainers: `torch_trainer.py` (HF model + AdamW, CPU or GPU). A Megatron-core trainer (TP/EP, HF weight
conversion) is not built yet; scenarios asking for it are dropped with that reason.

The surface loop.py uses: ping, context, versions, train_step, sleep, wake, sync."""

__all__: list[str] = []
