"""One rank of a CPU megatron-core trainer next to the torch trainer on the same model and batch (used by
test_megatron_trainer.py): prints what the test compares as one JSON line on rank 0.
Usage: mcore_rank.py RANK WORLD PORT MODEL TP EP"""

from __future__ import annotations

import dataclasses
import json
import random
import sys

import torch

from harness.matrix import models
from harness.runner import tiny_model
from harness.runner.trainers.base import TrainerSpec
from harness.runner.trainers.megatron_trainer import MegatronTrainer
from harness.runner.trainers.torch_trainer import TorchTrainer

NO_ENGINE = "http://127.0.0.1:9"


def main(rank: int, world: int, port: int, model: str, tp: int, ep: int) -> None:
    path = str(tiny_model.ensure(models.load()[model].to_json(), "float32"))
    common = TrainerSpec(path, "cpu", 1e-2, 0, NO_ENGINE, "reference", 1, True)
    mcore = MegatronTrainer(
        dataclasses.replace(common, local_rank=rank, rank=rank, world=world, master_port=port, tp=tp, ep=ep)
    )
    torch_ = TorchTrainer(common)
    rng = random.Random(5)
    prompts = [[rng.randrange(3, 1024) for _ in range(6)] for _ in range(4)]
    completions = [[rng.randrange(3, 1024) for _ in range(5)] for _ in range(4)]
    seq = torch.tensor([p + c for p, c in zip(prompts, completions)])
    with torch.no_grad():
        gap = float((mcore._logprobs(seq, 6) - torch_._logprobs(seq, 6)).abs().max())
    before = dict(mcore.hf_named_tensors())
    reference = dict(torch_.hf_named_tensors())
    exact = sorted(before) == sorted(reference) and all(torch.equal(before[n], reference[n]) for n in before)
    rollout = [[-1.0] * 5 for _ in range(4)]
    a = mcore.train_step(prompts, completions, rollout, 2, 1024)
    b = torch_.train_step(prompts, completions, rollout, 2, 1024)
    after = dict(mcore.hf_named_tensors())
    drift = max(float((after[n] - t).abs().max()) for n, t in torch_.hf_named_tensors())
    if rank == 0:
        print(
            json.dumps(
                {
                    "logprob_gap": gap,
                    "weights_exact": exact,
                    "tensors": len(before),
                    "loss": [a["loss"], b["loss"]],
                    "grad_norm": [a["grad_norm"], b["grad_norm"]],
                    "weight_drift_after_step": drift,
                }
            )
        )


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
