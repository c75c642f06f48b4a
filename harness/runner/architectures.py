"""Which causal-LM architectures the installed transformers has: `python -m harness.runner.architectures NAME...`
prints a JSON list of the names it lacks. The harness asks in a subprocess (importing transformers imports torch,
which the harness never does) and only for names outside its own short list (matrix/models.py)."""

from __future__ import annotations

import json
import sys


def missing(names: list[str]) -> list[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    known = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    return [n for n in names if n not in known]


if __name__ == "__main__":
    print(json.dumps(missing(sys.argv[1:])))
