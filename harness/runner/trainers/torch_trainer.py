"""The torch trainer: the HF model (a tiny one, or a shape with seeded weights) with AdamW, one rank (CPU or one GPU).

On GPU, sleep moves model and optimizer state to host memory and empties the cache (Miles' FSDP backend); on CPU
the same calls are timed no-ops. The step, sleep/wake and the weight sync are in `base.py`.
"""

from __future__ import annotations

import torch

from harness.runner import hf_layout, tiny_model
from harness.runner.trainers.base import Trainer, TrainerSpec


class TorchTrainer(Trainer):
    name = "torch trainer"

    def __init__(self, spec: TrainerSpec) -> None:
        super().__init__(spec)
        self.model = tiny_model.load(spec.model_path, self.dtype, self.device, spec.seed)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=spec.lr, weight_decay=0.0)

    def _logprobs(self, sequences: torch.Tensor, prompt_len: int) -> torch.Tensor:
        logits = self.model(input_ids=sequences).logits[:, prompt_len - 1 : -1, :].float()
        return torch.log_softmax(logits, -1).gather(-1, sequences[:, prompt_len:, None]).squeeze(-1)

    def hf_named_tensors(self) -> list[tuple[str, torch.Tensor]]:
        views = hf_layout.checkpoint_views({n: p.detach() for n, p in self.model.named_parameters()})
        return [(n, t.to(self.device, non_blocking=True)) for n, t in views.items()]
