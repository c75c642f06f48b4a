"""The Megatron-core trainer: a GPTModel (megatron-core's local layer spec, no TransformerEngine) with tensor
parallelism, one Ray actor per rank, started from the same HF checkpoint the engine's config describes.

- ranks join one torch.distributed group (NCCL on GPU, Gloo on CPU) and megatron's model-parallel groups;
- log-probs come from the vocab-parallel logits (megatron's vocab_parallel_cross_entropy);
- the gradient norm counts TP-sharded parameters once over the TP group, replicated ones once;
- before a weight sync every rank all-gathers each parameter's TP shards and converts them to the HF names and
  layouts sglang loads (`mcore_convert.py`); memory between steps is handled as the base trainer does (model and
  optimizer state to host memory while the engine runs: Miles' offload order).

Context parallelism needs TransformerEngine's CP attention (the local spec has none); expert parallelism needs
the MoE conversion, not built here: scenario.py drops those rows with the reason.

megatron-core must not be importable by the engine (its training module sets torch_memory_saver's hook mode at
import, which breaks sglang's paused CUDA graphs): `COLOBENCH_TRAINER_SITE` names a folder only the trainer adds.
On CPU (tests, the smoke matrix) two CUDA-only calls of megatron's forward path are redirected (`_cpu_shims`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from harness.runner.trainers import mcore_convert
from harness.runner.trainers.base import Trainer

SITE_ENV = "COLOBENCH_TRAINER_SITE"


def _trainer_site() -> None:
    site = os.environ.get(SITE_ENV)
    if site and site not in sys.path:
        sys.path.insert(0, site)


def _cpu_shims() -> None:
    """megatron-core asks CUDA for the rotary table's device and forks the CUDA RNG around attention dropout."""
    from megatron.core import tensor_parallel
    torch.cuda.current_device = lambda: "cpu"
    tensor_parallel.get_cuda_rng_tracker().fork = lambda *a, **k: contextlib.nullcontext()   # dropout is 0


def transformer_config(hf: dict, tp: int, dtype: torch.dtype):
    import torch.nn.functional as F
    from megatron.core.transformer import TransformerConfig
    shape = mcore_convert.Shape.from_config(hf)
    return TransformerConfig(
        num_layers=shape.layers, hidden_size=int(hf["hidden_size"]), num_attention_heads=shape.heads,
        num_query_groups=shape.kv_heads, kv_channels=shape.head_dim, ffn_hidden_size=int(hf["intermediate_size"]),
        normalization="RMSNorm", layernorm_epsilon=float(hf.get("rms_norm_eps", 1e-6)), gated_linear_unit=True,
        activation_func=F.silu, add_bias_linear=False, add_qkv_bias=False, hidden_dropout=0.0, attention_dropout=0.0,
        attention_softmax_in_fp32=True, tensor_model_parallel_size=tp, use_cpu_initialization=True,
        params_dtype=dtype, bf16=dtype == torch.bfloat16, bias_dropout_fusion=False, apply_rope_fusion=False,
        masked_softmax_fusion=False, persist_layer_norm=False, gradient_accumulation_fusion=False)


class MegatronTrainer(Trainer):
    name = "megatron-core trainer"

    def __init__(self, model_path: str, device: str, lr: float, seed: int, engine_url: str, engine_kind: str,
                 engine_tp: int, colocate: bool, fault: dict | None, local_rank: int = 0, engine_base: int = 0,
                 rank: int = 0, world: int = 1, master_port: int = 0, tp: int = 1) -> None:
        _trainer_site()
        super().__init__(device, lr, seed, engine_url, engine_kind, engine_tp, colocate, fault, local_rank,
                         engine_base, rank, world)
        from megatron.core import parallel_state, tensor_parallel
        from megatron.core.models.gpt import GPTModel
        from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
        from safetensors.torch import load_file
        if self.device.type == "cpu":
            _cpu_shims()
        dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo", rank=rank, world_size=world,
                                init_method=f"tcp://127.0.0.1:{master_port}", timeout=timedelta(seconds=300))
        parallel_state.initialize_model_parallel(tensor_model_parallel_size=tp)
        if self.device.type == "cuda":
            tensor_parallel.model_parallel_cuda_manual_seed(seed)
        self.tp_group = parallel_state.get_tensor_model_parallel_group()
        self.tp, self.tp_rank = tp, parallel_state.get_tensor_model_parallel_rank()
        hf = json.loads((Path(model_path) / "config.json").read_text())
        self.shape = mcore_convert.Shape.from_config(hf)
        self.model = GPTModel(transformer_config(hf, tp, self.dtype),
                              get_gpt_layer_local_spec(normalization="RMSNorm"), vocab_size=int(hf["vocab_size"]),
                              max_sequence_length=int(hf["max_position_embeddings"]), position_embedding_type="rope",
                              rotary_base=int(hf.get("rope_theta") or hf.get("rope_parameters", {}).get("rope_theta", 10000)),
                              share_embeddings_and_output_weights=self.shape.tied)
        weights = {k: v.to(self.dtype) for k, v in load_file(str(Path(model_path) / "model.safetensors")).items()}
        state = mcore_convert.to_mcore(weights, self.shape, self.tp_rank, tp)
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("_extra_state")]
        if missing or unexpected:
            raise RuntimeError(f"megatron checkpoint conversion: missing {missing[:3]}, unexpected {unexpected[:3]}")
        for param in self.model.parameters():    # torch norms are built in fp32: one dtype, as Float16Module casts
            param.data = param.data.to(self.dtype)
        self.model.to(self.device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=0.0)

    def _logprobs(self, sequences: torch.Tensor, prompt_len: int) -> torch.Tensor:
        from megatron.core.tensor_parallel import vocab_parallel_cross_entropy
        batch, length = sequences.shape
        positions = torch.arange(length, device=self.device).expand(batch, length)
        causal = torch.triu(torch.ones(length, length, device=self.device, dtype=torch.bool), 1)[None, None]
        logits = self.model(input_ids=sequences, position_ids=positions, attention_mask=causal)   # [b, s, vocab/tp]
        picked = logits[:, prompt_len - 1:-1, :].float().contiguous()
        return -vocab_parallel_cross_entropy(picked, sequences[:, prompt_len:].contiguous())

    def _grad_norm(self) -> float:
        grads = [p for p in self.model.parameters() if p.grad is not None]
        sharded = torch.zeros((), device=self.device, dtype=torch.float32)
        replicated = torch.zeros((), device=self.device, dtype=torch.float32)
        for p in grads:
            sq = p.grad.detach().float().pow(2).sum()
            if getattr(p, "tensor_model_parallel", False):
                sharded += sq
            else:
                replicated += sq
        if self.tp > 1:
            dist.all_reduce(sharded, group=self.tp_group)
        norm = (sharded + replicated).sqrt()
        scale = torch.clamp(1.0 / (norm + 1e-6), max=1.0)
        for p in grads:
            p.grad.mul_(scale.to(p.grad.dtype))
        return float(norm)

    def hf_named_tensors(self) -> list[tuple[str, torch.Tensor]]:
        """Full HF-named weights on every rank, on its device (a collective: all TP ranks call it together)."""
        params = dict(self.model.named_parameters())
        out: list[tuple[str, torch.Tensor]] = []
        for name in mcore_convert.mcore_names(self.shape):
            local = params[name].detach().to(self.device)
            if self.tp == 1 or mcore_convert.partition_dim(name) is None:
                shards = [local]
            else:
                shards = [torch.empty_like(local) for _ in range(self.tp)]
                dist.all_gather(shards, local.contiguous(), group=self.tp_group)
            out += mcore_convert.to_hf(name, shards, self.shape)
        return out
