"""The axes of a matrix, each declared once: its values and how they are checked, its part of a scenario's id, and
the combinations it cannot run in; plus what follows from a row's axes alone (its id, its history identity, the
devices it needs, why it cannot run).

- Owns: `AXES` (in id order; each axis with its id fragment, what it asks of the devices, what it cannot run in),
  versions (PEP 440 spelling and ordering), names safe as path components,
  `scenario_id`, `scenario_identity`, `device_counts`, `impossible`. A new axis is one entry here plus the runner code
  that reads it (runner/spec.py's Axes and its use).
- Does not own: settings (schema.py), expanding a matrix file into rows (scenario.py).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from packaging.utils import canonicalize_version
from packaging.version import InvalidVersion, Version

if TYPE_CHECKING:
    from harness.matrix.models import Model
    from harness.matrix.schema import Settings

# a name that is safe as one path component (run folders, caches): no separators, no '..', no leading dot
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
VERSION = re.compile(r"\d+(\.\d+){1,3}([.+-]?[A-Za-z0-9]+)*", re.ASCII)


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def safe_name(v: Any) -> bool:
    return isinstance(v, str) and bool(SAFE_NAME.fullmatch(v)) and ".." not in v


def _onoff(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    return {"on": True, "off": False, "true": True, "false": False}.get(str(v).lower())


def _version(v: Any) -> str | None:
    """An sglang version string; an unquoted YAML number is refused (0.10 would silently become 0.1)."""
    if v is None:
        return None
    if isinstance(v, float) or is_int(v):
        raise ValueError(f'{v!r} is a YAML number, not a version; quote it, e.g. "{v}"')
    if v == "current":
        return v
    if not isinstance(v, str) or not VERSION.fullmatch(v):
        raise ValueError(f"expected a version string such as \"0.5.12\" (or 'current'), got {v!r}")
    try:  # one spelling per version (0.5.12.0 is 0.5.12): ids and history never split one release in two
        return canonicalize_version(Version(v), strip_trailing_zero=True)
    except InvalidVersion:
        raise ValueError(f'{v!r} is not a PEP 440 version (e.g. "0.5.12", "0.5.12.post1")') from None


def version_key(version: str) -> tuple:
    """The one ordering of versions (PEP 440; a commit or other non-version sorts after every release, by its text)."""
    try:
        return (0, Version(version), "")
    except InvalidVersion:
        return (1, Version("0"), str(version))


def _name(v: Any) -> str:
    if not safe_name(v):
        raise ValueError(f"expected a name of letters, digits, '.', '_', '+', '-' (no '/' or '..'), got {v!r}")
    return v


@dataclass(frozen=True)
class Rule:
    """A combination an axis cannot run in: `when(axes, model, settings)` holds; `why(...)` says so."""

    when: Callable[[dict, Any, Any], bool]
    why: Callable[[dict, Any, Any], str]


@dataclass(frozen=True)
class Devices:
    """What one axis's value asks of a row's devices: factors of the engine's and the trainer's device counts, floors
    under the trainer's and the row's, and (colocate) whether engine and trainer share their devices."""

    engine: int = 1
    trainer: int = 1
    trainer_at_least: int = 1
    at_least: int = 1
    shared: bool | None = None


@dataclass(frozen=True)
class Axis:
    """One axis, declared once: its values, its part of a scenario's id, what it asks of the devices and the
    combinations it cannot run in."""

    name: str
    default: Any
    kind: str  # int | onoff | version | name | choice
    valid: tuple[Any, ...] | None  # closed vocabulary, or None
    describe: str
    fragment: Callable[[Any, dict], str | None] = lambda value, axes: None  # its part of the id (None: none)
    cannot: tuple[Rule, ...] = ()
    devices: Callable[[Any, Any], Devices] = lambda value, model: Devices()  # what its value asks of the devices

    def coerce(self, value: Any) -> Any:
        """The canonical value, or ValueError with the allowed values."""
        if self.kind == "onoff":
            out = _onoff(value)
            if out is None:
                raise ValueError(f"expected on or off, got {value!r}")
            return out
        if self.kind == "int" and not is_int(value):
            raise ValueError(f"expected int, got {value!r}")
        if self.kind == "version":
            return _version(value)
        if self.kind == "name":
            return _name(value)
        if self.kind == "choice" and isinstance(value, bool):
            value = "on" if value else "off"  # YAML 1.1 reads an unquoted off as false
        if self.kind == "choice" and not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        if self.valid is not None and value not in self.valid:
            raise ValueError(f"got {value!r}; valid: {', '.join(str(v) for v in self.valid)}")
        return value


def _reference(axes: dict) -> bool:
    return axes["engine"] == "reference"


# In the order their fragments make a scenario's id: model.tp2[.ep2][.cp2].colocate|split[.arv2][.cvd1]
# [.standalone][.mcore].sglang-0.5.12|ref. A new axis is one entry here plus the runner code that reads it.
AXES: dict[str, Axis] = {
    a.name: a
    for a in (
        Axis(
            "model",
            None,
            "name",
            None,
            "model name from models.yaml",
            lambda v, a: str(v),
            devices=lambda v, m: Devices(at_least=m.min_gpus),
            cannot=(
                Rule(
                    lambda a, m, s: m.kind == "hf" and s.runner is None,
                    lambda a, m, s: (
                        f"{m.name} is a real HF model: the built-in runner uses tiny generated models "
                        "(use an external runner)"
                    ),
                ),
            ),
        ),
        Axis(
            "tp",
            1,
            "int",
            (1, 2, 4, 8),
            "engine tensor parallel size (trainer TP too)",
            lambda v, a: f"tp{v}",
            devices=lambda v, m: Devices(engine=v, trainer=v),
            cannot=(
                Rule(
                    lambda a, m, s: _reference(a) and a["tp"] > 1,
                    lambda a, m, s: "the reference engine is single-device: tp must be 1",
                ),
            ),
        ),
        Axis(
            "ep",
            1,
            "int",
            (1, 2, 4, 8),
            "expert parallel size (MoE only)",
            lambda v, a: f"ep{v}" if v > 1 else None,
            devices=lambda v, m: Devices(trainer_at_least=v),
            cannot=(
                Rule(
                    lambda a, m, s: a["ep"] > 1 and not m.is_moe,
                    lambda a, m, s: f"ep={a['ep']} on dense model {m.name}: expert parallelism needs a MoE model",
                ),
                Rule(
                    lambda a, m, s: a["ep"] > a["tp"] and a["engine"] == "sglang",
                    lambda a, m, s: f"ep={a['ep']} > tp={a['tp']}: sglang places experts inside its TP group",
                ),
                Rule(
                    lambda a, m, s: max(a["tp"] * a["cp"], a["ep"]) % (a["tp"] * a["cp"]) != 0,
                    lambda a, m, s: f"ep={a['ep']} is not a multiple of tp*cp={a['tp'] * a['cp']}",
                ),
            ),
        ),
        Axis(
            "cp",
            1,
            "int",
            (1, 2, 4, 8),
            "trainer context parallel size",
            lambda v, a: f"cp{v}" if v > 1 else None,
            devices=lambda v, m: Devices(trainer=v),
            cannot=(
                Rule(
                    lambda a, m, s: a["trainer"] == "megatron" and a["cp"] > 1,
                    lambda a, m, s: (
                        "cp>1 needs TransformerEngine's context-parallel attention; the megatron trainer "
                        "uses the local spec"
                    ),
                ),
            ),
        ),
        Axis(
            "colocate",
            True,
            "onoff",
            (True, False),
            "engine and trainer share devices (on) or not (off)",
            lambda v, a: "colocate" if v else "split",
            devices=lambda v, m: Devices(shared=v),
            cannot=(
                Rule(
                    lambda a, m, s: s.nodes == "spread" and a["colocate"],
                    lambda a, m, s: (
                        "nodes: spread puts engine and trainer on different nodes; a colocated scenario shares one node"
                    ),
                ),
            ),
        ),
        Axis(
            "custom_all_reduce",
            "auto",
            "choice",
            ("auto", "v1", "v2", "off"),
            "sglang custom all-reduce; auto = the version's default",
            lambda v, a: f"ar{v}" if v != "auto" else None,
            (
                Rule(
                    lambda a, m, s: _reference(a) and a["custom_all_reduce"] != "auto",
                    lambda a, m, s: "custom all-reduce is an sglang setting; the reference engine has none",
                ),
            ),
        ),
        Axis(
            "cvd_offset",
            0,
            "int",
            tuple(range(8)),
            "CUDA_VISIBLE_DEVICES starts at this physical GPU (rotated)",
            lambda v, a: f"cvd{v}" if v else None,
        ),
        Axis(
            "launch",
            "ray-actor",
            "choice",
            ("ray-actor", "standalone"),
            "how the engine server is started",
            lambda v, a: "standalone" if v == "standalone" else None,
        ),
        Axis(
            "trainer",
            "torch",
            "choice",
            ("megatron", "torch"),
            "training backend",
            lambda v, a: "mcore" if v == "megatron" else None,
        ),
        Axis(
            "engine",
            "reference",
            "choice",
            ("sglang", "reference"),
            "rollout engine",
            lambda v, a: "ref" if v == "reference" else None,
        ),
        Axis(
            "sglang",
            None,
            "version",
            None,
            "sglang version (e.g. \"0.5.12\"), 'current', or null for the reference engine",
            lambda v, a: (f"sglang-{v}" if v != "" else "sglang") if a["engine"] == "sglang" else None,
            (
                Rule(
                    lambda a, m, s: _reference(a) and a["sglang"] is not None,
                    lambda a, m, s: "the reference engine does not use sglang: leave the sglang axis out or null",
                ),
                Rule(
                    lambda a, m, s: a["engine"] == "sglang" and a["sglang"] is None and not s.runner,
                    lambda a, m, s: "engine sglang needs an sglang version (or 'current')",
                ),
            ),
        ),
    )
}


def scenario_id(axes: dict[str, Any], tag: str | None) -> str:
    """Readable, stable id: each axis's fragment, in AXES order, then the tag."""
    return ".".join(filter(None, [AXES[name].fragment(axes[name], axes) for name in AXES] + [tag]))


def scenario_identity(axes: dict[str, Any], tag: str | None) -> str:
    """What the history groups runs by: the id without the sglang version (the same scenario across versions; an
    A/B run, a repetition or a bisect probe is a run of it). Built from the fields, never parsed from an id."""
    return scenario_id({**axes, "sglang": ""}, tag)


def device_counts(axes: dict[str, Any], model: Model) -> tuple[int, int, int]:
    """(engine devices, trainer devices, total devices) for one row, from what each axis asks (Axis.devices): each
    side's factors multiplied, then its floors; engine and trainer share their devices unless an axis says not."""
    asked = [axis.devices(axes[name], model) for name, axis in AXES.items()]
    engine = math.prod(d.engine for d in asked)
    trainer = max(math.prod(d.trainer for d in asked), *(d.trainer_at_least for d in asked))
    shared = all(d.shared is not False for d in asked)
    return engine, trainer, max(max(engine, trainer) if shared else engine + trainer, *(d.at_least for d in asked))


def impossible(axes: dict[str, Any], model: Model, settings: Settings) -> str | None:
    """Why a row cannot run, or None: the rules each axis declares (AXES), then the devices it needs against
    the GPUs it asks for."""
    for axis in AXES.values():
        for rule in axis.cannot:
            if rule.when(axes, model, settings):
                return rule.why(axes, model, settings)
    engine, trainer, total = device_counts(axes, model)
    asked = settings.gpus
    if asked is not None and axes["tp"] * axes["cp"] > asked:
        return f"tp*cp={axes['tp'] * axes['cp']} is larger than the {asked} GPUs the scenario asks for"
    if asked is not None and total > asked:
        return f"needs {total} devices (engine {engine}, trainer {trainer}) but asks for gpus={asked}"
    return None
