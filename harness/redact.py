"""Secrets never reach a report: masked environment dumps and scrubbed log files.

- Owns: what counts as a secret (the value of a variable named like *TOKEN*, *KEY*, *SECRET*, *PASSWORD*, *AUTH*;
  GitHub, Hugging Face, AWS, OpenAI-style and Slack tokens and URL passwords wherever they appear) and masking it in
  mappings and in every file of a run folder.
- Does not own: which files a run writes (launch.py, the runner).
"""

from __future__ import annotations

import re
from pathlib import Path

SECRET_NAME = re.compile(r"(?i)(TOKEN|KEY|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|AUTH|COOKIE|PRIVATE)")
# secrets recognisable by their shape, whatever variable or line holds them
TOKEN_FORMATS = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}"  # GitHub
    r"|hf_[A-Za-z0-9]{20,}"  # Hugging Face
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key id
    r"|sk-[A-Za-z0-9][A-Za-z0-9_-]{19,}"  # OpenAI-style keys (sk-, sk-proj-)
    r"|xox[abposr]-[A-Za-z0-9-]{10,})"
)  # Slack
URL_CREDENTIALS = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:)[^\s@/]+(@)")  # scheme://user:PASS@host
MASK = "***"
LONG_SECRET = 8  # shorter secret values are masked only where they stand as a word of their own


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def mask_env(env: dict[str, str]) -> dict[str, str]:
    """Secret-named variables masked whatever their length; other values with any recognisable secret masked."""
    return {k: (MASK if is_secret_name(k) else scrub_text(str(v), [])) for k, v in env.items()}


def secret_values(env: dict[str, str], min_len: int = 1) -> list[str]:
    """Values of secret-named variables (of `min_len` characters or more), to scrub from text, longest first."""
    return sorted(
        {str(v) for k, v in env.items() if is_secret_name(k) and len(str(v).strip()) >= min_len}, key=len, reverse=True
    )


def scrub_text(text: str, values: list[str]) -> str:
    """`values` masked (a short one only as a word of its own, so "1" does not blank every digit), then every token
    of a known format and every password in a URL."""
    for v in values:
        if len(v) >= LONG_SECRET:
            text = text.replace(v, MASK)
        else:
            text = re.sub(rf"(?<![\w]){re.escape(v)}(?![\w])", MASK, text)
    text = TOKEN_FORMATS.sub(MASK, text)
    return URL_CREDENTIALS.sub(rf"\1{MASK}\2", text)


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
