"""Oracles after a weight sync: the engine's weights equal the trainer's; engine and trainer log-probs agree.

Two ways to compare weights, chosen by the `weights_check` setting (auto | checksum | exact):
- checksum (seconds): /weights_checker `checksum` (sglang 0.5.12+, and the reference engine) hashes every tensor
  where the engine holds it; the trainer puts its tensors into the engine's layout (sglang fuses q/k/v, gate/up and
  each layer's experts) and hashes them the engine's way (sglang's GPU tensor hash on a GPU, sha256 of the bytes on
  the CPU - sglang's CPU path). A disagreement is settled by the exact compare (below), which names the tensor:
  when the exact compare passes, the checksum layout is wrong, not the weights (event `weights_checksum_disagreed`).
- exact (minutes on GB models): models that implement /get_weights_by_name (Llama family, sglang-contract.md 5.4)
  and the reference engine: the first rows of every tensor (dim 0 is truncated) in the trainer's dtype; other
  sglang models: reset and resync through /weights_checker (snapshot what the sync wrote, overwrite every engine
  tensor with noise, send the same weights again, compare with the snapshot: a tensor the sync does not write comes
  back as noise).
`auto` is checksum where the engine offers it for this model (sglang >= 0.5.12 at TP1 with a known layout, vocab
a multiple of sglang's padding), else exact.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict

import torch

CHECKSUM_SINCE = (0, 5, 12)
VOCAB_PADDING = 64  # sglang pads the vocab dimension to a multiple of this; padded rows are not synced
# the sglang models whose code implements get_weights_by_name (sglang-contract.md 5.4)
BY_NAME_ARCHITECTURES = frozenset({"LlamaForCausalLM", "GraniteForCausalLM", "Exaone4ForCausalLM", "OPTForCausalLM"})
# the architectures whose sglang layout `engine_layout` knows (stacked q/k/v and gate/up, fused experts)
CHECKSUM_ARCHITECTURES = frozenset({"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Qwen3MoeForCausalLM"})
_STACKED = re.compile(r"(.*)\.(q|k|v|gate|up)_proj\.(weight|bias)")
_EXPERT = re.compile(r"(.*\.mlp\.experts)\.(\d+)\.(gate|up|down)_proj\.weight")
_PARTS = {
    "q": ("qkv_proj", 0),
    "k": ("qkv_proj", 1),
    "v": ("qkv_proj", 2),
    "gate": ("gate_up_proj", 0),
    "up": ("gate_up_proj", 1),
}


def cpu_hash(t: torch.Tensor) -> str:
    """sha256 of the tensor's bytes, first 8 bytes as 16 hex digits (sglang's tensor_hash on a CPU tensor)."""
    raw = t.detach().cpu().contiguous().view(torch.uint8).numpy()
    return hashlib.sha256(memoryview(raw)).digest()[:8].hex()


def engine_hash(t: torch.Tensor) -> str:
    """The engine's hash of a tensor as it holds it: sglang's GPU hash for a CUDA tensor, else `cpu_hash`."""
    if t.is_cuda:
        try:  # 0.5.17 moved it
            from sglang.kernels.ops.memory.gpu_tensor_hash import gpu_tensor_hash
        except ImportError:
            from sglang.srt.layers.multimodal import gpu_tensor_hash
        return f"{gpu_tensor_hash(t.contiguous()):016x}"
    return cpu_hash(t)


def _no_sglang_checksum(architecture: str, version: tuple[int, ...], tp: int, vocab: int) -> str | None:
    """Why sglang cannot give a checksum colobench can compare, or None."""
    if version < CHECKSUM_SINCE:
        return f"sglang {'.'.join(map(str, version))} has no /weights_checker checksum (0.5.12+)"
    if tp != 1:
        return f"tp={tp}: the checksum compare knows sglang's TP1 layout only"
    if architecture not in CHECKSUM_ARCHITECTURES:
        return f"no known sglang layout for {architecture}"
    if vocab % VOCAB_PADDING:
        return f"vocab {vocab} is not a multiple of {VOCAB_PADDING}: sglang's padded rows are never synced"
    return None


def method(
    engine: str, architecture: str, choice: str = "auto", version: tuple[int, ...] = (), tp: int = 1, vocab: int = 0
) -> str:
    """'checksum', 'by-name' or 'resync'; ValueError when `choice` is checksum and the engine cannot give one."""
    exact = "by-name" if engine == "reference" or architecture in BY_NAME_ARCHITECTURES else "resync"
    if choice == "exact":
        return exact
    why = None if engine == "reference" else _no_sglang_checksum(architecture, version, tp, vocab)
    if why is None:
        return "checksum"
    if choice == "checksum":
        raise ValueError(f"weights_check: checksum: {why}")
    return exact


def engine_layout(named: list[tuple[str, torch.Tensor]], engine: str) -> dict[str, torch.Tensor]:
    """The trainer's HF-named tensors as the engine holds them: unchanged for the reference engine; for sglang
    q/k/v -> qkv_proj and gate/up -> gate_up_proj (concatenated on dim 0), each layer's experts -> w13_weight
    [E, 2I, H] (gate rows before up rows) and w2_weight [E, H, I]."""
    if engine == "reference":
        return dict(named)
    out: dict[str, torch.Tensor] = {}
    stacked: dict[str, dict[int, torch.Tensor]] = defaultdict(dict)
    experts: dict[str, dict[int, dict[str, torch.Tensor]]] = defaultdict(lambda: defaultdict(dict))
    for name, t in named:
        if m := _EXPERT.fullmatch(name):
            experts[m.group(1)][int(m.group(2))][m.group(3)] = t
        elif m := _STACKED.fullmatch(name):
            fused, index = _PARTS[m.group(2)]
            stacked[f"{m.group(1)}.{fused}.{m.group(3)}"][index] = t
        else:
            out[name] = t
    for name, parts in stacked.items():
        out[name] = torch.cat([parts[i] for i in sorted(parts)], 0)
    for prefix, by_id in experts.items():
        ids = sorted(by_id)
        out[f"{prefix}.w13_weight"] = torch.stack([torch.cat([by_id[e]["gate"], by_id[e]["up"]], 0) for e in ids])
        out[f"{prefix}.w2_weight"] = torch.stack([by_id[e]["down"] for e in ids])
    return out


def checksums_match(client, named: list[tuple[str, torch.Tensor]], engine: str) -> tuple[bool, str]:
    """(every tensor hashes as the engine's, first differing or missing tensor or '') from one /weights_checker
    checksum call."""
    reply = client.weights_checker("checksum")
    if not reply.get("success"):
        raise RuntimeError(f"weights_checker checksum failed: {reply.get('message')}")
    ranks = reply.get("ranks") or []
    if len(ranks) != 1:
        raise RuntimeError(f"weights_checker checksum: expected one TP rank's checksums, got {len(ranks)}")
    remote = ranks[0]["checksums"]
    for name, t in engine_layout(named, engine).items():
        if remote.get(name) != engine_hash(t):
            return False, name if name in remote else f"{name} (not in the engine)"
    return True, ""


def begin_resync(client) -> None:
    """Snapshot the engine's weights (just synced), then overwrite them with noise."""
    for action in ("snapshot", "reset_tensors"):
        reply = client.weights_checker(action)
        if not reply.get("success"):
            raise RuntimeError(f"weights_checker {action} failed: {reply.get('message')}")


def resync_matches(client) -> tuple[bool, str]:
    """After the second sync: (engine equals the snapshot, first differing tensor or '')."""
    reply = client.weights_checker("compare")
    if reply.get("success"):
        return True, ""
    message = str(reply.get("message", ""))
    found = re.search(r"name=([\w.]+)", message)
    return False, found.group(1) if found else message.strip().splitlines()[0][:200]


def by_name_matches(client, named: list[tuple[str, torch.Tensor]]) -> tuple[bool, str]:
    """(the first rows of every tensor equal, first differing tensor or '') through /get_weights_by_name."""
    for name, t in named:
        rows = torch.tensor(client.get_weights_by_name(name, truncate_size=100), dtype=torch.float32)
        mine = t.detach().float().cpu()
        if rows.dim() != mine.dim():
            return False, name
        n = min(rows.shape[0], mine.shape[0])
        cols = tuple(slice(0, min(a, b)) for a, b in zip(rows.shape[1:], mine.shape[1:]))
        if not torch.equal(rows[(slice(0, n),) + cols], mine[(slice(0, n),) + cols]):
            return False, name
    return True, ""
