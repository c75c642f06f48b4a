"""Tiny models from models.yaml entries: HF config + random weights in safetensors, generated once and cached.

No network: the config is built from the entry, the weights from a fixed seed. A file lock serialises parallel
creators; a finished model has a `.complete` marker.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any

CACHE_ENV = "COLOBENCH_MODEL_CACHE"
FORMAT = 2    # part of the cache key: bump when what `ensure` writes changes (2: model_type named like the class)


def model_type_of(architecture: str) -> str:
    """The transformers model type of a causal-LM class: the one named like it (several types share LlamaForCausalLM)."""
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
    """Path of the generated model folder (config.json + model.safetensors)."""
    key = hashlib.sha256(json.dumps([FORMAT, model["architecture"], model["config"], dtype, seed], sort_keys=True).encode())
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "colobench" / "models")
    path = root / f"{model['name']}-{dtype}-{key.hexdigest()[:12]}"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{path.name}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (path / ".complete").exists():
            return path
        import torch
        import transformers
        torch.manual_seed(seed)
        config = build_config(model, dtype)
        net = getattr(transformers, model["architecture"])(config).to(getattr(torch, dtype))
        net.save_pretrained(str(path), safe_serialization=True)
        (path / ".complete").write_text("ok\n")
    return path
