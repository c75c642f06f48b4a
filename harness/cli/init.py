"""colobench init: a starter matrix and models file in a repository of one's own (an RL framework's, say)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import ColobenchError

NAME = "init"
HELP = "write a starter matrix/colobench.yaml and models.yaml into a folder (default: here); never overwrites"

MATRIX = """\
# colobench scenarios of this repository: `colobench run --matrix matrix/colobench.yaml`, or
# `pytest matrix/colobench.yaml -k colocate`. Every key is checked when the file loads (README: Writing a scenario).
schema: 1
name: colobench
defaults:
  model: my-tiny-llama         # models.yaml beside this folder, or a built-in one
  steps: 3
  timeout_s: 600
axes:
  colocate: [on, off]          # engine and trainer on the same devices, or apart
# include:
  # The same loop on a GPU host with a real sglang server (this repository's environment must hold sglang, ray, torch):
  # - {engine: sglang, sglang: current, model: my-tiny-llama, colocate: on, custom_all_reduce: v2}
  # A framework's own launcher as the runner (argv only, no shell); its logs get the same rules and triage:
  # - {tag: own-loop, runner: {command: ["{python}", "train.py", "--colocate"]}, steps: 2}
"""

MODELS = """\
# Models this repository adds to colobench's built-in ones (tiny-llama, tiny-moe, llama3.1-8b-shape, ...).
schema: 1
models:
  my-tiny-llama:
    kind: tiny                 # generated on the spot: HF config + seeded random weights, no download
    family: dense
    architecture: LlamaForCausalLM
    config: {vocab_size: 1024, hidden_size: 128, intermediate_size: 256, num_hidden_layers: 2,
             num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 512}
"""

WRITTEN = {"matrix/colobench.yaml": MATRIX, "models.yaml": MODELS}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", nargs="?", default=".", help="the repository to set up (default: the current folder)")


def main(args: argparse.Namespace) -> int:
    root = Path(args.folder)
    if not root.is_dir():
        raise ColobenchError(f"{root}: no such folder")
    taken = [name for name in WRITTEN if (root / name).exists()]
    if taken:
        raise ColobenchError(f"{root / taken[0]}: exists already; colobench init never overwrites (move it aside)")
    for name, text in WRITTEN.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
        print(f"colobench: wrote {root / name}", file=sys.stderr)
    print(
        "next: colobench list --matrix matrix/colobench.yaml; colobench run --matrix matrix/colobench.yaml",
        file=sys.stderr,
    )
    return 0
