"""A transformers model's weights under their checkpoint names: the names sglang and the safetensors file use.

transformers 5 keeps a MoE layer's experts as two fused parameters (`mlp.experts.gate_up_proj` [E, 2I, H] with
each expert's gate rows before its up rows, `mlp.experts.down_proj` [E, H, I]) and converts from and to the
per-expert checkpoint names (`mlp.experts.{e}.gate_proj.weight`, ...) when it loads and saves. An RL weight sync
speaks checkpoint names, so the torch trainer sends and the reference engine loads views under those names.
Older layouts (one module per expert) already use them and pass through unchanged.
"""

from __future__ import annotations

import re

import torch

_FUSED_GATE_UP = re.compile(r"(.*\.mlp\.experts)\.gate_up_proj")
_FUSED_DOWN = re.compile(r"(.*\.mlp\.experts)\.down_proj")


def checkpoint_views(named: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """{checkpoint name: view into the parameter}; writing into a view writes the parameter."""
    out: dict[str, torch.Tensor] = {}
    for name, t in named.items():
        if m := _FUSED_GATE_UP.fullmatch(name):
            gate, up = t.chunk(2, dim=1)
            for e in range(t.shape[0]):
                out[f"{m.group(1)}.{e}.gate_proj.weight"] = gate[e]
                out[f"{m.group(1)}.{e}.up_proj.weight"] = up[e]
        elif m := _FUSED_DOWN.fullmatch(name):
            for e in range(t.shape[0]):
                out[f"{m.group(1)}.{e}.down_proj.weight"] = t[e]
        else:
            out[name] = t
    return out
