"""Megatron-core <-> Hugging Face weights for Llama-family and Qwen3(-MoE) models (megatron-core's local layer spec).

- `to_mcore(hf, shape, tp_rank, tp_size, ep_rank, ep_size)`: this rank's megatron state dict from HF tensors (the
  trainer starts from the same generated HF checkpoint the engine's config describes);
- `to_hf(name, shards, shape)`: the HF (name, tensor) pairs sglang loads, from one megatron parameter's shards of
  every TP rank (rank order), i.e. what the trainer gathers before a weight sync.

Layouts: linear_qkv interleaves per KV group [q of the group's heads, k, v]; linear_fc1 is [gate; up] per TP
shard; column-parallel weights (qkv, fc1, embedding, output layer) split dim 0 and row-parallel ones (linear_proj,
linear_fc2) split dim 1; norms (q/k norms too) and the MoE router are replicated. Experts are whole on the rank that
owns them (expert parallelism, expert TP 1): `mcore_names` numbers them globally, a rank's own parameters number
them from 0 (`local_name`). Pure torch: no megatron import, so CPU tests run it anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Shape:
    """What the conversion needs from an HF config."""

    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    tied: bool
    experts: int = 0  # routed experts per layer (0: dense MLP)
    qk_norm: bool = False  # per-head RMSNorm of q and k before RoPE (Qwen3)

    @classmethod
    def from_config(cls, config: dict) -> "Shape":
        heads = int(config["num_attention_heads"])
        experts = int(config.get("num_experts") or config.get("num_local_experts") or 0)
        return cls(
            int(config["num_hidden_layers"]),
            heads,
            int(config.get("num_key_value_heads", heads)),
            int(config.get("head_dim") or config["hidden_size"] // heads),
            bool(config.get("tie_word_embeddings", False)),
            experts,
            str(config.get("model_type", "")).startswith("qwen3"),
        )


# megatron name pattern -> (HF name template, TP partition dim or None when replicated)
_PLAIN = [
    (r"embedding\.word_embeddings\.weight", "model.embed_tokens.weight", 0),
    (r"output_layer\.weight", "lm_head.weight", 0),
    (r"decoder\.final_layernorm\.weight", "model.norm.weight", None),
    (r"decoder\.layers\.(\d+)\.input_layernorm\.weight", "model.layers.{}.input_layernorm.weight", None),
    (r"decoder\.layers\.(\d+)\.pre_mlp_layernorm\.weight", "model.layers.{}.post_attention_layernorm.weight", None),
    (r"decoder\.layers\.(\d+)\.self_attention\.linear_proj\.weight", "model.layers.{}.self_attn.o_proj.weight", 1),
    (r"decoder\.layers\.(\d+)\.mlp\.linear_fc2\.weight", "model.layers.{}.mlp.down_proj.weight", 1),
    (r"decoder\.layers\.(\d+)\.self_attention\.q_layernorm\.weight", "model.layers.{}.self_attn.q_norm.weight", None),
    (r"decoder\.layers\.(\d+)\.self_attention\.k_layernorm\.weight", "model.layers.{}.self_attn.k_norm.weight", None),
    (r"decoder\.layers\.(\d+)\.mlp\.router\.weight", "model.layers.{}.mlp.gate.weight", None),
    (
        r"decoder\.layers\.(\d+)\.mlp\.experts\.local_experts\.(\d+)\.linear_fc2\.weight",
        "model.layers.{}.mlp.experts.{}.down_proj.weight",
        None,
    ),
]
_QKV = re.compile(r"decoder\.layers\.(\d+)\.self_attention\.linear_qkv\.weight")
_FC1 = re.compile(r"decoder\.layers\.(\d+)\.mlp\.linear_fc1\.weight")
_EXPERT_FC1 = re.compile(r"decoder\.layers\.(\d+)\.mlp\.experts\.local_experts\.(\d+)\.linear_fc1\.weight")
_EXPERT = re.compile(r"(decoder\.layers\.\d+\.mlp\.experts\.local_experts\.)(\d+)(\..*)")


class UnknownWeight(KeyError):
    pass


def _plain(name: str) -> tuple[str, int | None]:
    """(HF name, TP partition dim) of a one-to-one megatron parameter."""
    for pattern, template, dim in _PLAIN:
        m = re.fullmatch(pattern, name)
        if m:
            return template.format(*m.groups()), dim
    raise UnknownWeight(f"no HF mapping for megatron parameter {name}")


def mcore_names(shape: Shape) -> list[str]:
    """Every megatron parameter name of the model, in HF order, experts numbered globally."""
    names = ["embedding.word_embeddings.weight"]
    for i in range(shape.layers):
        p = f"decoder.layers.{i}."
        names += [
            p + "input_layernorm.weight",
            p + "self_attention.linear_qkv.weight",
            p + "self_attention.linear_proj.weight",
        ]
        names += (
            [p + "self_attention.q_layernorm.weight", p + "self_attention.k_layernorm.weight"] if shape.qk_norm else []
        )
        names.append(p + "pre_mlp_layernorm.weight")
        if shape.experts:
            names.append(p + "mlp.router.weight")
            names += [
                p + f"mlp.experts.local_experts.{e}.linear_fc{k}.weight" for e in range(shape.experts) for k in (1, 2)
            ]
        else:
            names += [p + "mlp.linear_fc1.weight", p + "mlp.linear_fc2.weight"]
    names.append("decoder.final_layernorm.weight")
    return names + ([] if shape.tied else ["output_layer.weight"])


def expert_of(name: str) -> int | None:
    """The global expert index of an expert parameter's name (as `mcore_names` numbers it), else None."""
    m = _EXPERT.fullmatch(name)
    return int(m.group(2)) if m else None


def expert_owner(name: str, ep_size: int, experts: int) -> int | None:
    """The expert-parallel rank that holds an expert parameter (experts split in equal consecutive blocks)."""
    expert = expert_of(name)
    return None if expert is None else expert // (experts // ep_size)


def local_name(name: str, ep_rank: int, ep_size: int, experts: int) -> str | None:
    """A global name as this expert-parallel rank's own parameters name it; None when another rank owns the expert."""
    m = _EXPERT.fullmatch(name)
    if not m:
        return name
    if expert_owner(name, ep_size, experts) != ep_rank:
        return None
    return f"{m.group(1)}{int(m.group(2)) % (experts // ep_size)}{m.group(3)}"


def _qkv_full(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, shape: Shape) -> torch.Tensor:
    per_group = shape.heads // shape.kv_heads * shape.head_dim
    hidden = q.shape[-1]
    return torch.cat(
        [
            q.reshape(shape.kv_heads, per_group, hidden),
            k.reshape(shape.kv_heads, shape.head_dim, hidden),
            v.reshape(shape.kv_heads, shape.head_dim, hidden),
        ],
        dim=1,
    ).reshape(-1, hidden)


def _qkv_split(qkv: torch.Tensor, shape: Shape) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    per_group = shape.heads // shape.kv_heads * shape.head_dim
    hidden = qkv.shape[-1]
    q, k, v = qkv.reshape(shape.kv_heads, per_group + 2 * shape.head_dim, hidden).split(
        [per_group, shape.head_dim, shape.head_dim], dim=1
    )
    return q.reshape(-1, hidden), k.reshape(-1, hidden), v.reshape(-1, hidden)


def to_mcore(
    hf: dict[str, torch.Tensor], shape: Shape, tp_rank: int = 0, tp_size: int = 1, ep_rank: int = 0, ep_size: int = 1
) -> dict[str, torch.Tensor]:
    """This rank's megatron parameters from HF tensors (missing HF names raise UnknownWeight)."""

    def get(name: str) -> torch.Tensor:
        if name not in hf:
            raise UnknownWeight(f"{name} is not in the HF checkpoint")
        return hf[name]

    out = {}
    for name in mcore_names(shape):
        if (mine := local_name(name, ep_rank, ep_size, shape.experts)) is None:
            continue
        if m := _EXPERT_FC1.fullmatch(name):
            p = f"model.layers.{m.group(1)}.mlp.experts.{m.group(2)}."
            out[mine] = torch.cat([get(p + "gate_proj.weight"), get(p + "up_proj.weight")])
        elif m := _QKV.fullmatch(name):
            p = f"model.layers.{m.group(1)}.self_attn."
            full = _qkv_full(get(p + "q_proj.weight"), get(p + "k_proj.weight"), get(p + "v_proj.weight"), shape)
            out[mine] = full.chunk(tp_size, 0)[tp_rank]  # whole KV groups per rank
        elif m := _FC1.fullmatch(name):
            p = f"model.layers.{m.group(1)}.mlp."
            out[mine] = torch.cat(
                [
                    get(p + "gate_proj.weight").chunk(tp_size, 0)[tp_rank],
                    get(p + "up_proj.weight").chunk(tp_size, 0)[tp_rank],
                ]
            )
        else:
            hf_name, dim = _plain(name)
            out[mine] = get(hf_name) if dim is None else get(hf_name).chunk(tp_size, dim)[tp_rank]
    return {k: v.clone() for k, v in out.items()}


def partition_dim(name: str) -> int | None:
    """The TP partition dim of a megatron parameter (None: replicated on every TP rank, or a whole expert)."""
    if _EXPERT_FC1.fullmatch(name):
        return None
    if _QKV.fullmatch(name) or _FC1.fullmatch(name):
        return 0
    return _plain(name)[1]


def to_hf(name: str, shards: list[torch.Tensor], shape: Shape) -> list[tuple[str, torch.Tensor]]:
    """HF (name, tensor) pairs from one megatron parameter's shards, one per TP rank in rank order."""
    if m := _QKV.fullmatch(name):
        q, k, v = _qkv_split(torch.cat(shards, 0), shape)
        p = f"model.layers.{m.group(1)}.self_attn."
        return [(p + "q_proj.weight", q), (p + "k_proj.weight", k), (p + "v_proj.weight", v)]
    if m := _EXPERT_FC1.fullmatch(name):
        gate, up = shards[0].chunk(2, 0)
        p = f"model.layers.{m.group(1)}.mlp.experts.{m.group(2)}."
        return [(p + "gate_proj.weight", gate), (p + "up_proj.weight", up)]
    if m := _FC1.fullmatch(name):
        halves = [s.chunk(2, 0) for s in shards]
        p = f"model.layers.{m.group(1)}.mlp."
        return [
            (p + "gate_proj.weight", torch.cat([h[0] for h in halves])),
            (p + "up_proj.weight", torch.cat([h[1] for h in halves])),
        ]
    hf_name, dim = _plain(name)
    return [(hf_name, shards[0] if dim is None else torch.cat(shards, dim))]
