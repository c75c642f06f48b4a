"""Trainers: `torch_trainer.py` (HF model + AdamW, CPU or GPU) and `megatron.py` (Megatron-core, GPU: TP/EP).

Both expose the same surface to loop.py: logprobs, train_step, sleep, wake, hf_named_tensors, sync, checksums."""

__all__: list[str] = []
