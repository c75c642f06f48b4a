"""The Megatron-core trainer: a GPTModel (megatron-core's local layer spec, no TransformerEngine) with tensor
parallelism for dense models and expert parallelism for MoE models, one Ray actor per rank, started from the same
HF checkpoint the engine's config describes (a shape model: megatron's seeded init; the initial sync carries it).

- ranks join one torch.distributed group (NCCL on GPU, Gloo on CPU) and megatron's model-parallel groups;
- log-probs come from the vocab-parallel logits (megatron's vocab_parallel_cross_entropy);
- the gradient norm counts TP-sharded parameters once over the TP group, experts once over the EP group,
  replicated ones once;
- MoE: experts are spread over the EP group (expert TP 1) and tokens reach them through megatron's token
  dispatcher (all-to-all on GPU; all-gather on CPU, where the all-to-all dispatcher needs CUDA streams). Attention
  stays at TP 1: megatron trains MoE with TP > 1 only under sequence parallelism, which its torch norms (the local
  spec without TransformerEngine or Apex) do not support. Every rank trains on the whole batch, so dense gradients
  are averaged over the data-parallel replicas and expert gradients divided by the EP size (each expert saw each
  token once per EP rank), as megatron's DDP averages them;
- before a weight sync every rank gathers each parameter's TP shards and every expert (broadcast from its owner)
  and converts them to the HF names and layouts sglang loads (`mcore_convert.py`); memory between steps is handled
  as the base trainer does (model and optimizer state to host memory while the engine runs: Miles' offload order).

Context parallelism needs TransformerEngine's CP attention (the local spec has none): scenario.py drops those rows.

megatron-core must not be importable by the engine (its training module sets torch_memory_saver's hook mode at
import, which breaks sglang's paused CUDA graphs): `COLOBENCH_TRAINER_SITE` names a folder only the trainer adds.
On CPU (tests, the smoke matrix) a few CUDA-only calls of megatron's forward path are redirected (`_cpu_shims`).
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

from harness.runner import tiny_model
from harness.runner.trainers import mcore_convert
from harness.runner.trainers.base import Trainer, TrainerSpec

SITE_ENV = "COLOBENCH_TRAINER_SITE"


def _trainer_site() -> None:
    site = os.environ.get(SITE_ENV)
    if site and site not in sys.path:
        sys.path.insert(0, site)


def _cpu_shims() -> None:
    """megatron-core asks CUDA for the rotary table's device and forks the CUDA RNG around attention dropout;
    0.16's MoE router leaves TransformerEngine's GEMM undefined (not None) when TE is missing."""
    from megatron.core import tensor_parallel
    from megatron.core.transformer.moe import moe_utils

    torch.cuda.current_device = lambda: "cpu"
    tensor_parallel.get_cuda_rng_tracker().fork = lambda *a, **k: contextlib.nullcontext()  # dropout is 0
    if not hasattr(moe_utils, "te_general_gemm"):
        moe_utils.te_general_gemm = None


def moe_settings(hf: dict, ep: int, cuda: bool) -> dict:
    """TransformerConfig fields of a MoE model (Qwen3-MoE routing: softmax over the top k, fp32 router)."""
    shape = mcore_convert.Shape.from_config(hf)
    if not shape.experts:
        return {}
    return dict(
        num_moe_experts=shape.experts,
        moe_router_topk=int(hf["num_experts_per_tok"]),
        moe_ffn_hidden_size=int(hf["moe_intermediate_size"]),
        expert_model_parallel_size=ep,
        expert_tensor_parallel_size=1,
        moe_token_dispatcher_type="alltoall" if cuda else "allgather",
        moe_router_load_balancing_type="none",
        moe_aux_loss_coeff=0.0,
        moe_grouped_gemm=False,
        moe_router_dtype="fp32",
        moe_router_pre_softmax=not hf.get("norm_topk_prob", True),
    )


def transformer_config(hf: dict, tp: int, dtype: torch.dtype, ep: int = 1, cuda: bool = False):
    import torch.nn.functional as F
    from megatron.core.transformer import TransformerConfig

    shape = mcore_convert.Shape.from_config(hf)
    return TransformerConfig(
        num_layers=shape.layers,
        hidden_size=int(hf["hidden_size"]),
        num_attention_heads=shape.heads,
        num_query_groups=shape.kv_heads,
        kv_channels=shape.head_dim,
        ffn_hidden_size=int(hf["intermediate_size"]),
        normalization="RMSNorm",
        layernorm_epsilon=float(hf.get("rms_norm_eps", 1e-6)),
        gated_linear_unit=True,
        activation_func=F.silu,
        add_bias_linear=False,
        add_qkv_bias=False,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        attention_softmax_in_fp32=True,
        tensor_model_parallel_size=tp,
        use_cpu_initialization=True,
        params_dtype=dtype,
        bf16=dtype == torch.bfloat16,
        bias_dropout_fusion=False,
        apply_rope_fusion=False,
        masked_softmax_fusion=False,
        persist_layer_norm=False,
        gradient_accumulation_fusion=False,
        qk_layernorm=shape.qk_norm,
        **moe_settings(hf, ep, cuda),
    )


class MegatronTrainer(Trainer):
    name = "megatron-core trainer"

    def __init__(self, spec: TrainerSpec) -> None:
        _trainer_site()
        super().__init__(spec)
        model_path, rank, world, tp, ep, seed = spec.model_path, spec.rank, spec.world, spec.tp, spec.ep, spec.seed
        from megatron.core import parallel_state, tensor_parallel
        from megatron.core.models.gpt import GPTModel
        from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
        from safetensors.torch import load_file

        if self.device.type == "cpu":
            _cpu_shims()
        hf = json.loads((Path(model_path) / "config.json").read_text())
        self.shape = mcore_convert.Shape.from_config(hf)
        if self.shape.experts:
            tp = 1  # MoE with TP > 1 needs sequence parallelism (see the module docstring)
        dist.init_process_group(
            "nccl" if self.device.type == "cuda" else "gloo",
            rank=rank,
            world_size=world,
            init_method=f"tcp://{spec.master_addr}:{spec.master_port}",
            timeout=timedelta(seconds=300),
        )
        parallel_state.initialize_model_parallel(
            tensor_model_parallel_size=tp, expert_model_parallel_size=ep, expert_tensor_parallel_size=1
        )
        if self.device.type == "cuda":
            tensor_parallel.model_parallel_cuda_manual_seed(seed)
        self.tp_group = parallel_state.get_tensor_model_parallel_group()
        self.tp, self.tp_rank = tp, parallel_state.get_tensor_model_parallel_rank()
        self.ep, self.ep_rank = ep, parallel_state.get_expert_model_parallel_rank()
        self.ep_group = parallel_state.get_expert_model_parallel_group()
        self.dp_group, self.dp = parallel_state.get_data_parallel_group(), world // tp
        self.edp_group, self.edp = parallel_state.get_expert_data_parallel_group(), world // ep
        self.model = GPTModel(
            transformer_config(hf, tp, self.dtype, ep, self.device.type == "cuda"),
            get_gpt_layer_local_spec(
                num_experts=self.shape.experts or None, qk_layernorm=self.shape.qk_norm, normalization="RMSNorm"
            ),
            vocab_size=int(hf["vocab_size"]),
            max_sequence_length=int(hf["max_position_embeddings"]),
            position_embedding_type="rope",
            rotary_base=int(hf.get("rope_theta") or hf.get("rope_parameters", {}).get("rope_theta", 10000)),
            share_embeddings_and_output_weights=self.shape.tied,
        )
        if tiny_model.has_weights(model_path):  # a shape model keeps megatron's own seeded init
            weights = {k: v.to(self.dtype) for k, v in load_file(str(Path(model_path) / tiny_model.WEIGHTS)).items()}
            state = mcore_convert.to_mcore(weights, self.shape, self.tp_rank, tp, self.ep_rank, ep)
            missing, unexpected = self.model.load_state_dict(state, strict=False)
            missing = [k for k in missing if not k.endswith("_extra_state")]
            if missing or unexpected:
                raise RuntimeError(
                    f"megatron checkpoint conversion: missing {missing[:3]}, unexpected {unexpected[:3]}"
                )
        for param in self.model.parameters():  # torch norms are built in fp32: one dtype, as Float16Module casts
            param.data = param.data.to(self.dtype)
        self.model.to(self.device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=spec.lr, weight_decay=0.0)

    def _logprobs(self, sequences: torch.Tensor, prompt_len: int) -> torch.Tensor:
        from megatron.core.tensor_parallel import vocab_parallel_cross_entropy

        batch, length = sequences.shape
        positions = torch.arange(length, device=self.device).expand(batch, length)
        causal = torch.triu(torch.ones(length, length, device=self.device, dtype=torch.bool), 1)[None, None]
        logits = self.model(input_ids=sequences, position_ids=positions, attention_mask=causal)  # [b, s, vocab/tp]
        picked = logits[:, prompt_len - 1 : -1, :].float().contiguous()
        return -vocab_parallel_cross_entropy(picked, sequences[:, prompt_len:].contiguous())

    def _reduce_grads(self) -> None:
        """Every rank trained on the whole batch: average dense gradients over the data-parallel replicas; an
        expert's gradient holds each token once per EP rank, so divide by the EP size, then average its replicas."""
        for name, p in self.model.named_parameters():
            if p.grad is None:
                continue
            expert = mcore_convert.expert_of(name) is not None
            if expert:
                p.grad.div_(self.ep)
            group, size = (self.edp_group, self.edp) if expert else (self.dp_group, self.dp)
            if size > 1:
                dist.all_reduce(p.grad, group=group)
                p.grad.div_(size)

    def _grad_norm(self) -> float:
        grads = [(n, p) for n, p in self.model.named_parameters() if p.grad is not None]
        sharded, experts, replicated = (torch.zeros((), device=self.device, dtype=torch.float32) for _ in range(3))
        for name, p in grads:
            sq = p.grad.detach().float().pow(2).sum()
            if mcore_convert.expert_of(name) is not None:
                experts += sq
            elif getattr(p, "tensor_model_parallel", False):
                sharded += sq
            else:
                replicated += sq
        if self.tp > 1:
            dist.all_reduce(sharded, group=self.tp_group)
        if self.ep > 1:
            dist.all_reduce(experts, group=self.ep_group)
        norm = (sharded + experts + replicated).sqrt()
        scale = torch.clamp(1.0 / (norm + 1e-6), max=1.0)
        for _, p in grads:
            p.grad.mul_(scale.to(p.grad.dtype))
        return float(norm)

    def _expert(self, name: str, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """One expert's parameter on every rank: broadcast over the EP group from the rank that owns it."""
        mine = mcore_convert.local_name(name, self.ep_rank, self.ep, self.shape.experts)
        if self.ep == 1:
            return params[mine].detach().to(self.device)
        owner = mcore_convert.expert_owner(name, self.ep, self.shape.experts)
        like = params[mcore_convert.local_name(name, owner, self.ep, self.shape.experts)]  # same shape, index local
        out = params[mine].detach().to(self.device).contiguous() if mine else torch.empty_like(like, device=self.device)
        dist.broadcast(out, src=dist.get_global_rank(self.ep_group, owner), group=self.ep_group)
        return out

    def hf_named_tensors(self) -> list[tuple[str, torch.Tensor]]:
        """Full HF-named weights on every rank, on its device (a collective: all ranks call it together)."""
        params = dict(self.model.named_parameters())
        out: list[tuple[str, torch.Tensor]] = []
        for name in mcore_convert.mcore_names(self.shape):
            if mcore_convert.expert_of(name) is not None:
                shards = [self._expert(name, params)]
            elif self.tp == 1 or mcore_convert.partition_dim(name) is None:
                shards = [params[name].detach().to(self.device)]
            else:
                local = params[name].detach().to(self.device)
                shards = [torch.empty_like(local) for _ in range(self.tp)]
                dist.all_gather(shards, local.contiguous(), group=self.tp_group)
            out += mcore_convert.to_hf(name, shards, self.shape)
        return out
