"""Oracles after a weight sync: the engine's weights equal the trainer's; engine and trainer log-probs agree.

- reference engine: per-tensor checksums from /weights_checker (exact);
- sglang: /get_weights_by_name per tensor (first rows, as sglang truncates along dim 0), compared exactly in the
  trainer's dtype (sglang-contract.md 5.4; Llama-family models implement it).
"""

from __future__ import annotations

import hashlib

import torch


def checksum(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().float().numpy().tobytes()).hexdigest()[:16]


def weights_match(client, named: list[tuple[str, torch.Tensor]], engine: str) -> tuple[bool, str]:
    """(all equal, first differing tensor or '')."""
    if engine == "reference":
        remote = client._call("POST", "/weights_checker", {"action": "checksum"})["checksums"]
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
