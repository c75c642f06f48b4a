"""Oracles after a weight sync: the engine's weights equal the trainer's; engine and trainer log-probs agree.

- reference engine: per-tensor checksums from /weights_checker (exact);
- sglang, models that implement /get_weights_by_name (Llama family, sglang-contract.md 5.4): the first rows of
  every tensor (sglang truncates along dim 0), compared exactly in the trainer's dtype;
- sglang, other models (Qwen3-MoE, ...): reset and resync through /weights_checker: snapshot what the sync wrote,
  overwrite every engine tensor with noise, send the same weights again and compare with the snapshot. A tensor
  the sync does not write (skipped, misnamed, a missing expert) comes back as noise and fails; a consistent value
  error is left to the log-prob agreement (`logprob_abs_diff`).
"""

from __future__ import annotations

import hashlib
import re

import torch


def checksum(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().float().numpy().tobytes()).hexdigest()[:16]


# the sglang models whose code implements get_weights_by_name (sglang-contract.md 5.4)
BY_NAME_ARCHITECTURES = frozenset({"LlamaForCausalLM", "GraniteForCausalLM", "Exaone4ForCausalLM", "OPTForCausalLM"})


def method(engine: str, architecture: str) -> str:
    """How weights are checked: 'checksum' (reference engine), 'by-name' or 'resync' (sglang)."""
    if engine == "reference":
        return "checksum"
    return "by-name" if architecture in BY_NAME_ARCHITECTURES else "resync"


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


def weights_match(client, named: list[tuple[str, torch.Tensor]], how: str) -> tuple[bool, str]:
    """(all equal, first differing tensor or '') by 'checksum' or 'by-name'."""
    if how == "checksum":
        remote = client.weights_checker("checksum")["checksums"]
        for name, t in named:
            if remote.get(name) != checksum(t):
                return False, name
        return True, ""
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
