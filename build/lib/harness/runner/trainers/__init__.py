"""Trainers, one Ray actor per rank: `torch_trainer.py` (HF model + AdamW, one rank, CPU or GPU) and
`megatron_trainer.py` (megatron-core GPTModel with TP, HF weight conversion in `mcore_convert.py`); what both do
the same way (the step, sleep/wake, faults, the weight sync) is in `base.py`.

The surface loop.py uses: ping, context, versions, train_step, sleep, wake, sync."""

__all__: list[str] = []
