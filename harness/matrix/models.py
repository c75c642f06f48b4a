"""The models registry (models.yaml): tiny generated models, real architectures' shapes and real Hugging Face ids.

- tiny: a small config; the runner writes random weights to disk once (every engine and trainer loads them);
- shape: the public config of a real architecture (optionally fewer layers: `layers:`); no weights on disk: the
  engine loads dummy weights, the trainer initialises its own from a seed and the initial sync makes them equal;
- hf: a real Hugging Face id (an external runner's business).

- Owns: reading and validating models.yaml into frozen `Model` records.
- Does not own: generating weights (harness/runner/tiny_model.py does, inside the scenario's environment).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import resources
from harness.errors import ScenarioError
from harness.matrix import yamlfile
from harness.matrix.axes import is_int, safe_name

SCHEMA = 1
HF_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}", re.ASCII)  # owner/name; never a path
KINDS = ("tiny", "shape", "hf")
FAMILIES = ("dense", "moe")
_KEYS = {"kind", "family", "architecture", "config", "hf_id", "min_gpus", "gpu_memory_gb", "layers", "base"}
_REQUIRED = {"kind", "family", "architecture"}


# the largest value of a size key any real model has, with room: past it a config builds no model anyone can run
SIZE_LIMITS = {
    "vocab_size": 2**22,
    "hidden_size": 65536,
    "intermediate_size": 2**19,
    "moe_intermediate_size": 2**17,
    "num_experts": 4096,
    "num_local_experts": 4096,
    "num_experts_per_tok": 64,
    "num_hidden_layers": 1024,
    "num_attention_heads": 1024,
    "num_key_value_heads": 1024,
    "head_dim": 1024,
    "max_position_embeddings": 2**24,
    "decoder_sparse_step": 1024,
}
# what a generated (`tiny`) model must spell out: transformers fills in a missing or misspelt size with its defaults,
# which build a multi-GB model
SIZE_KEYS = frozenset(SIZE_LIMITS)  # config keys that are sizes: positive ints (the rest: any scalar a config takes)
TINY_REQUIRED = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")


def _check_config(config: Any, kind: str) -> str | None:
    if not isinstance(config, dict):
        return "expected a mapping"
    for key, value in config.items():
        if not isinstance(key, str):
            return f"{key!r}: expected a string key"
        if key in SIZE_KEYS and not (is_int(value) and 0 < value <= SIZE_LIMITS[key]):
            return f"{key}: expected an int from 1 to {SIZE_LIMITS[key]}, got {value!r}"
        scalar = isinstance(value, (str, int, float, bool)) or value is None
        if not scalar and not (isinstance(value, list) and all(isinstance(x, (str, int, float, bool)) for x in value)):
            return f"{key}: expected a scalar or a list of scalars, got {type(value).__name__}"
    for key in config:
        twin = next((k for k in SIZE_KEYS if _close(key, k)), None)
        if key not in SIZE_KEYS and twin:
            return f"{key}: not a config key; a misspelling of {twin}?"
    missing = [k for k in TINY_REQUIRED if kind == "tiny" and k not in config]
    if missing:
        return f"missing {', '.join(missing)}: a tiny model spells out its sizes (transformers' defaults build GBs)"
    heads, kv = config.get("num_attention_heads"), config.get("num_key_value_heads", config.get("num_attention_heads"))
    hidden = config.get("hidden_size")
    if heads and kv and (kv > heads or heads % kv):
        return f"num_key_value_heads: {kv} must divide num_attention_heads ({heads})"
    if heads and hidden and "head_dim" not in config and hidden % heads:
        return f"hidden_size: {hidden} is not a multiple of num_attention_heads ({heads}) and no head_dim is given"
    experts, top = config.get("num_experts") or config.get("num_local_experts"), config.get("num_experts_per_tok")
    if experts and top and top > experts:
        return f"num_experts_per_tok: {top} is more than the {experts} experts"
    return None


# architectures colobench's rows use: checked against transformers only when a models file names another one
COMMON_ARCHITECTURES = {
    "LlamaForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
    "Qwen3MoeForCausalLM",
    "MistralForCausalLM",
    "MixtralForCausalLM",
    "Qwen2MoeForCausalLM",
    "GemmaForCausalLM",
}


@functools.cache
def _unknown_architectures(names: tuple[str, ...]) -> tuple[str, ...]:
    """The names transformers has no causal LM for, asked in a subprocess (importing transformers imports torch);
    none where transformers is not installed (then only the name's shape is checked)."""
    if not names or importlib.util.find_spec("transformers") is None:
        return ()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "harness.runner.architectures", *names], capture_output=True, text=True, timeout=120
        )
        return tuple(json.loads(done.stdout)) if done.returncode == 0 else ()
    except (OSError, subprocess.SubprocessError, ValueError):
        return ()


def _close(a: str, b: str) -> bool:
    """Two keys one edit apart (a letter missing, added, changed or two swapped): a misspelling."""
    from difflib import SequenceMatcher

    return a != b and SequenceMatcher(None, a, b).ratio() >= 0.85


@dataclass(frozen=True)
class Model:
    name: str
    kind: str
    family: str
    architecture: str
    config: dict[str, Any] = field(default_factory=dict)
    hf_id: str | None = None
    min_gpus: int = 1
    gpu_memory_gb: float = 1.0
    layers: int | None = None  # fewer decoder layers than the config's (a full-width model on one GPU)

    @property
    def is_moe(self) -> bool:
        return self.family == "moe"

    @property
    def effective_config(self) -> dict[str, Any]:
        """The config the runner builds: `layers` replaces num_hidden_layers."""
        return {**self.config, "num_hidden_layers": self.layers} if self.layers else dict(self.config)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "family": self.family,
            "architecture": self.architecture,
            "config": self.effective_config,
            "hf_id": self.hf_id,
            "min_gpus": self.min_gpus,
            "gpu_memory_gb": self.gpu_memory_gb,
            "layers": self.layers,
        }


def _check(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise ScenarioError(f"{where}: {msg}")


def _inherit(models: dict, name: str, spec: dict, at: str) -> dict:
    """`base: OTHER` takes OTHER's keys (same file, one level) under this entry's own: e.g. the same shape with
    more layers."""
    base = spec["base"]
    _check(
        isinstance(base, str) and base in models and base != name,
        at,
        f"models.{name}.base: expected the name of another model in this file, got {base!r}",
    )
    _check(
        isinstance(models[base], dict) and "base" not in models[base],
        at,
        f"models.{name}.base: {base} has a base of its own (one level only)",
    )
    return {**models[base], **{k: v for k, v in spec.items() if k != "base"}}


def parse(doc: Any, path: str) -> dict[str, Model]:
    """Validate a parsed models.yaml document."""
    _check(isinstance(doc, dict), path, "expected a mapping with `schema` and `models`")
    for key in doc:
        _check(
            key in ("schema", "models"), yamlfile.where(path, doc, key), f"{key}: unknown key; valid: models, schema"
        )
    _check(
        type(doc.get("schema")) is int and doc.get("schema") == SCHEMA,
        yamlfile.where(path, doc, "schema"),
        f"schema: expected {SCHEMA}, got {doc.get('schema')!r}",
    )
    models = doc.get("models")
    _check(
        isinstance(models, dict) and models, yamlfile.where(path, doc, "models"), "models: expected a non-empty mapping"
    )
    out: dict[str, Model] = {}
    for name, spec in models.items():
        at = yamlfile.where(path, models, name)
        if isinstance(spec, dict) and "base" in spec:
            spec = _inherit(models, name, spec, yamlfile.where(path, spec, "base"))
        _check(
            safe_name(name),
            at,
            f"models.{name}: a model name must be letters, digits, '.', '_', '+', '-' (it becomes a path component)",
        )
        _check(isinstance(spec, dict), at, f"models.{name}: expected a mapping")
        for key in spec:
            _check(
                key in _KEYS,
                yamlfile.where(path, spec, key),
                f"models.{name}.{key}: unknown key; valid: {', '.join(sorted(_KEYS))}",
            )
        for key in sorted(_REQUIRED - set(spec)):
            _check(False, at, f"models.{name}: missing key {key!r}")
        _check(
            spec["kind"] in KINDS,
            yamlfile.where(path, spec, "kind"),
            f"models.{name}.kind: expected one of {', '.join(KINDS)}, got {spec['kind']!r}",
        )
        _check(
            spec["family"] in FAMILIES,
            yamlfile.where(path, spec, "family"),
            f"models.{name}.family: expected one of {', '.join(FAMILIES)}, got {spec['family']!r}",
        )
        _check(
            isinstance(spec["architecture"], str) and spec["architecture"].isidentifier(),
            yamlfile.where(path, spec, "architecture"),
            f"models.{name}.architecture: expected a class name such as LlamaForCausalLM, got {spec['architecture']!r}",
        )
        if spec["kind"] in ("tiny", "shape"):
            _check(
                isinstance(spec.get("config"), dict),
                at,
                f"models.{name}.config: a {spec['kind']} model needs a config mapping",
            )
        if spec["kind"] == "hf" or "hf_id" in spec:  # a shape may name the model its config comes from
            _check(
                isinstance(spec.get("hf_id"), str)
                and HF_ID.fullmatch(spec["hf_id"]) is not None
                and ".." not in spec["hf_id"],
                at,
                f"models.{name}.hf_id: expected a Hugging Face id (owner/name), got {spec.get('hf_id')!r}",
            )
        if "config" in spec:
            problem = _check_config(spec["config"], spec["kind"])
            _check(problem is None, yamlfile.where(path, spec, "config"), f"models.{name}.config: {problem}")
        layers = spec.get("layers")
        if layers is not None:
            full = (spec.get("config") or {}).get("num_hidden_layers")
            _check(
                is_int(layers) and layers >= 1 and is_int(full) and layers <= full,
                yamlfile.where(path, spec, "layers"),
                f"models.{name}.layers: expected an int from 1 to config.num_hidden_layers ({full!r}), got {layers!r}",
            )
        min_gpus = spec.get("min_gpus", 1)
        _check(
            is_int(min_gpus) and min_gpus >= 1,
            yamlfile.where(path, spec, "min_gpus"),
            f"models.{name}.min_gpus: expected a positive int, got {min_gpus!r}",
        )
        mem = spec.get("gpu_memory_gb", 1.0)
        _check(
            isinstance(mem, (int, float)) and not isinstance(mem, bool) and 0 < mem < 1e6,
            yamlfile.where(path, spec, "gpu_memory_gb"),
            f"models.{name}.gpu_memory_gb: expected a positive number",
        )
        _check(
            spec["architecture"].endswith("ForCausalLM"),
            yamlfile.where(path, spec, "architecture"),
            f"models.{name}.architecture: expected a causal LM class (...ForCausalLM), got {spec['architecture']!r}",
        )
        out[str(name)] = Model(
            name=str(name),
            kind=spec["kind"],
            family=spec["family"],
            architecture=str(spec["architecture"]),
            config=dict(spec.get("config") or {}),
            hf_id=spec.get("hf_id"),
            min_gpus=min_gpus,
            gpu_memory_gb=float(mem),
            layers=layers,
        )
    unknown = set(_unknown_architectures(tuple(sorted({m.architecture for m in out.values()} - COMMON_ARCHITECTURES))))
    for name, m in out.items():
        _check(
            m.architecture not in unknown,
            yamlfile.where(path, models[name], "architecture"),
            f"models.{name}.architecture: the installed transformers has no causal LM {m.architecture!r}",
        )
    return out


def load(path: str | Path | None = None) -> dict[str, Model]:
    """Read a models file (by default the built-in models.yaml)."""
    path = path or resources.builtin_models()
    return parse(yamlfile.load(path), str(path))


def load_all(paths: list[Path]) -> dict[str, Model]:
    """Several models files, a later one's entries adding to or replacing an earlier one's."""
    out: dict[str, Model] = {}
    for path in paths:
        out.update(load(path))
    return out
