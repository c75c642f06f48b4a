"""Secrets never reach a report: masked environment dumps and scrubbed log files.

- Owns: what counts as a secret (names like *TOKEN*, *KEY*, *SECRET*, *PASSWORD*; Hugging Face tokens in text)
  and masking it in mappings and in every file of a run folder.
- Does not own: which files a run writes (launch.py, the runner).
"""

from __future__ import annotations

import re
from pathlib import Path

SECRET_NAME = re.compile(r"(?i)(TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL)")
HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b")
MASK = "***"
MIN_SECRET_LEN = 6


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def mask_env(env: dict[str, str]) -> dict[str, str]:
    return {k: (MASK if is_secret_name(k) else v) for k, v in env.items()}


def secret_values(env: dict[str, str]) -> list[str]:
    """Values of secret-named variables long enough to scrub from text without hitting common words."""
    return sorted({v for k, v in env.items() if is_secret_name(k) and len(v) >= MIN_SECRET_LEN}, key=len, reverse=True)


def scrub_text(text: str, values: list[str]) -> str:
    for v in values:
        text = text.replace(v, MASK)
    return HF_TOKEN.sub("hf_" + MASK, text)


def scrub_folder(folder: Path, values: list[str]) -> int:
    """Rewrite every text file under `folder` with secrets masked; returns how many files changed."""
    changed = 0
    for path in folder.rglob("*"):
        if not path.is_file() or path.stat().st_size > 64 * 2**20:
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            continue
        clean = scrub_text(text, values)
        if clean != text:
            path.write_text(clean, encoding="utf-8", errors="surrogateescape")
            changed += 1
    return changed
