"""The megatron-core trainer on CPU (real megatron-core, Gloo) matches the torch trainer on the same model: dense at
TP2, MoE at EP1 and EP2 (experts spread over two ranks, tokens through megatron's dispatcher)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness.runner.host import free_port
from tests.conftest import REPO

RANK = REPO / "tests" / "mcore_rank.py"


@pytest.mark.parametrize(
    "model, world, tp, ep", [("tiny-llama", 2, 2, 1), ("tiny-moe", 1, 1, 1), ("tiny-moe", 2, 1, 2)]
)
def test_logprobs_weights_and_step_match_the_hf_model(tmp_path, model, world, tp, ep):
    env = {**os.environ, "COLOBENCH_MODEL_CACHE": str(tmp_path / "models"), "PYTHONPATH": str(REPO)}
    port = str(free_port())
    args = [str(world), port, model, str(tp), str(ep)]
    others = [
        subprocess.Popen(
            [sys.executable, str(RANK), str(r), *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(1, world)
    ]
    first = subprocess.run(
        [sys.executable, str(RANK), "0", *args], env=env, capture_output=True, text=True, timeout=300
    )
    for other in others:
        other.wait(timeout=60)
    assert first.returncode == 0 and all(o.returncode == 0 for o in others), first.stderr[-2000:]
    out = json.loads(first.stdout.strip().splitlines()[-1])
    assert out["logprob_gap"] < 1e-5  # vocab-parallel log-probs == HF log-probs
    assert out["weights_exact"]  # shards gathered and converted back == the checkpoint
    assert abs(out["loss"][0] - out["loss"][1]) < 1e-6
    assert abs(out["grad_norm"][0] - out["grad_norm"][1]) < 1e-4 * out["grad_norm"][1]  # TP-aware norm
    assert out["weight_drift_after_step"] < 1e-3  # one AdamW step (lr 1e-2) lands in the same place
