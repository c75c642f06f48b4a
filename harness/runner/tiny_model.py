"""Model folders from models.yaml entries, generated once and cached: a `tiny` entry gets its HF config and random
weights in safetensors; a `shape` entry (a real architecture's config) its config only: its weights are dummy.

No network: the config is built from the entry, the weights from a fixed seed. A file lock serialises parallel
creators; a finished model has a `.complete` marker. `load` gives a trainer or the reference engine the model:
from the weights file where there is one, else initialised from the config on the device (a seeded init).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any

CACHE_ENV = "COLOBENCH_MODEL_CACHE"
FORMAT = 3  # part of the cache key: bump when what `ensure` writes changes (3: shape models, config only)
WEIGHTS = "model.safetensors"


def model_type_of(architecture: str) -> str:
    """The transformers model type of a causal-LM class: the one named like it (several types share
    LlamaForCausalLM)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    candidates = [t for t, cls in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.items() if cls == architecture]
    if not candidates:
        raise ValueError(f"architecture {architecture!r} is not a transformers causal LM")
    stem = architecture.lower().removesuffix("forcausallm")
    return next((t for t in candidates if t.replace("_", "") == stem), candidates[0])


def build_config(model: dict[str, Any], dtype: str):
    from transformers import AutoConfig

    config = AutoConfig.for_model(model_type_of(model["architecture"]), **model["config"])
    config.architectures = [model["architecture"]]
    config.torch_dtype = dtype
    config.bos_token_id, config.eos_token_id, config.pad_token_id = 1, 2, 0
    return config


def ensure(model: dict[str, Any], dtype: str = "float32", seed: int = 0) -> Path:
    """Path of the generated model folder: config.json, and model.safetensors for a tiny model."""
    kind = model.get("kind", "tiny")
    key = hashlib.sha256(
        json.dumps([FORMAT, kind, model["architecture"], model["config"], dtype, seed], sort_keys=True).encode()
    )
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "colobench" / "models")
    path = root / f"{model['name']}-{dtype}-{key.hexdigest()[:12]}"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{path.name}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (path / ".complete").exists():
            return path
        config = build_config(model, dtype)
        if kind == "shape":
            config.save_pretrained(str(path))
        else:
            import torch
            import transformers

            torch.manual_seed(seed)
            net = getattr(transformers, model["architecture"])(config).to(getattr(torch, dtype))
            net.save_pretrained(str(path), safe_serialization=True)
        (path / ".complete").write_text("ok\n")
    return path


def has_weights(path: str | Path) -> bool:
    return (Path(path) / WEIGHTS).exists()


def load(path: str | Path, dtype, device, seed: int):
    """The transformers model of a folder `ensure` made: its weights, or (a shape model) initialised on `device`
    from the config with `seed`, without a pass through host memory."""
    import torch
    import transformers

    if has_weights(path):
        return transformers.AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype).to(device)
    config = transformers.AutoConfig.from_pretrained(str(path))
    torch.manual_seed(seed)
    with torch.device(device):
        return transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
