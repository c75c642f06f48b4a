"""HF <-> megatron-core layouts (pure torch): sharding, gathering and the inverse are exact."""

from __future__ import annotations

import pytest
import torch

from harness.runner.trainers import mcore_convert as mc

SHAPE = mc.Shape(layers=2, heads=4, kv_heads=2, head_dim=8, tied=False)
HIDDEN, FFN, VOCAB = 32, 48, 64


def hf_weights(shape: mc.Shape = SHAPE) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    out = {"model.embed_tokens.weight": r(VOCAB, HIDDEN), "model.norm.weight": r(HIDDEN)}
    if not shape.tied:
        out["lm_head.weight"] = r(VOCAB, HIDDEN)
    for i in range(shape.layers):
        p = f"model.layers.{i}."
        out |= {
            p + "input_layernorm.weight": r(HIDDEN),
            p + "post_attention_layernorm.weight": r(HIDDEN),
            p + "self_attn.q_proj.weight": r(shape.heads * shape.head_dim, HIDDEN),
            p + "self_attn.k_proj.weight": r(shape.kv_heads * shape.head_dim, HIDDEN),
            p + "self_attn.v_proj.weight": r(shape.kv_heads * shape.head_dim, HIDDEN),
            p + "self_attn.o_proj.weight": r(HIDDEN, shape.heads * shape.head_dim),
            p + "mlp.gate_proj.weight": r(FFN, HIDDEN),
            p + "mlp.up_proj.weight": r(FFN, HIDDEN),
            p + "mlp.down_proj.weight": r(HIDDEN, FFN),
        }
    return out


@pytest.mark.parametrize("tp", [1, 2])
@pytest.mark.parametrize("tied", [False, True])
def test_round_trip_through_tp_shards_is_exact(tp, tied):
    shape = mc.Shape(SHAPE.layers, SHAPE.heads, SHAPE.kv_heads, SHAPE.head_dim, tied)
    hf = hf_weights(shape)
    ranks = [mc.to_mcore(hf, shape, r, tp) for r in range(tp)]
    back = {}
    for name in mc.mcore_names(shape):
        back.update(mc.to_hf(name, [rank[name] for rank in ranks], shape))
    assert sorted(back) == sorted(hf)
    assert all(torch.equal(back[n], hf[n]) for n in hf)


def test_qkv_interleaves_query_groups_and_each_rank_holds_whole_groups():
    hf = hf_weights()
    qkv = mc.to_mcore(hf, SHAPE)["decoder.layers.0.self_attention.linear_qkv.weight"]
    q, k = hf["model.layers.0.self_attn.q_proj.weight"], hf["model.layers.0.self_attn.k_proj.weight"]
    per_group = SHAPE.heads // SHAPE.kv_heads * SHAPE.head_dim
    block = per_group + 2 * SHAPE.head_dim
    assert torch.equal(qkv[:per_group], q[:per_group])  # group 0: its query heads first
    assert torch.equal(qkv[per_group : per_group + SHAPE.head_dim], k[: SHAPE.head_dim])  # then its key head
    assert torch.equal(qkv[block : block + per_group], q[per_group:])  # group 1 follows
    rank1 = mc.to_mcore(hf, SHAPE, 1, 2)["decoder.layers.0.self_attention.linear_qkv.weight"]
    assert torch.equal(rank1, qkv[block:])


def test_fc1_shard_is_gate_then_up_of_that_rank():
    hf = hf_weights()
    fc1 = mc.to_mcore(hf, SHAPE, 1, 2)["decoder.layers.1.mlp.linear_fc1.weight"]
    gate, up = hf["model.layers.1.mlp.gate_proj.weight"], hf["model.layers.1.mlp.up_proj.weight"]
    assert torch.equal(fc1, torch.cat([gate[FFN // 2 :], up[FFN // 2 :]]))


def test_partition_dims_and_unknown_names():
    assert mc.partition_dim("decoder.layers.3.self_attention.linear_proj.weight") == 1
    assert mc.partition_dim("embedding.word_embeddings.weight") == 0
    assert mc.partition_dim("decoder.layers.0.pre_mlp_layernorm.weight") is None
    assert mc.partition_dim("decoder.layers.0.mlp.router.weight") is None
    with pytest.raises(mc.UnknownWeight):
        mc.partition_dim("decoder.layers.0.mlp.shared_experts.linear_fc1.weight")
    with pytest.raises(mc.UnknownWeight, match="lm_head"):
        mc.to_mcore({k: v for k, v in hf_weights().items() if k != "lm_head.weight"}, SHAPE)


def test_shape_from_a_transformers_config():
    shape = mc.Shape.from_config(
        {"num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": 256, "tie_word_embeddings": True}
    )
    assert shape == mc.Shape(2, 4, 4, 64, True)
