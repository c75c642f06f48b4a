"""The matrix vocabulary: axes (with defaults and closed value sets) and per-scenario settings (with validators).

- Owns: what may appear in a matrix row and how each value is checked (`AXES`, `SETTINGS`, `FAULT_KINDS`).
- Does not own: expansion or ids (scenario.py), milestone and gate syntax (milestones.py, metrics.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from harness import milestones
from harness.errors import ColobenchError


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _onoff(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    return {"on": True, "off": False, "true": True, "false": False}.get(str(v).lower())


@dataclass(frozen=True)
class Axis:
    name: str
    default: Any
    valid: tuple[Any, ...] | None       # closed vocabulary, or None for free values checked by `check`
    describe: str

    def coerce(self, value: Any) -> Any:
        """Return the canonical value, or raise ValueError with the allowed values."""
        if self.name == "colocate":
            out = _onoff(value)
            if out is None:
                raise ValueError("expected on or off")
            return out
        if self.name in ("tp", "ep", "cp", "cvd_offset"):
            if not _is_int(value):
                raise ValueError(f"expected int, got {value!r}")
        elif self.name in ("model", "sglang"):
            if value is None and self.name == "sglang":
                return None
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError(f"expected a string, got {value!r}")
            value = str(value)
        elif not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        if self.valid is not None and value not in self.valid:
            raise ValueError(f"got {value!r}; valid: {', '.join(str(v) for v in self.valid)}")
        return value


AXES: dict[str, Axis] = {a.name: a for a in (
    Axis("model", None, None, "model name from models.yaml"),
    Axis("tp", 1, (1, 2, 4, 8), "engine tensor parallel size (trainer TP too)"),
    Axis("ep", 1, (1, 2, 4, 8), "expert parallel size (MoE only)"),
    Axis("cp", 1, (1, 2, 4, 8), "trainer context parallel size"),
    Axis("colocate", True, (True, False), "engine and trainer share devices (on) or not (off)"),
    Axis("custom_all_reduce", "auto", ("auto", "v1", "v2", "off"), "sglang custom all-reduce; auto = the version's default"),
    Axis("cvd_offset", 0, tuple(range(8)), "CUDA_VISIBLE_DEVICES starts at this physical GPU (rotated)"),
    Axis("sglang", None, None, "sglang version (e.g. 0.5.12), 'current', or null for the reference engine"),
    Axis("engine", "reference", ("sglang", "reference"), "rollout engine"),
    Axis("trainer", "torch", ("megatron", "torch"), "training backend"),
    Axis("launch", "ray-actor", ("ray-actor", "standalone"), "how the engine server is started"),
)}

FAULT_KINDS = ("skip_tensor", "corrupt_tensor", "sync_delay", "sync_slowdown", "crash_engine_in_sync",
               "kill_runner_mid_step", "hang")


def _positive_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def _check_expect(v: Any) -> str | None:
    if v == "pass":
        return None
    if isinstance(v, dict) and set(v) == {"fail"} and isinstance(v["fail"], str) and v["fail"]:
        return None
    return "expected `pass` or {fail: <signature name>}"


def _check_runner(v: Any) -> str | None:
    if not isinstance(v, dict) or not set(v) <= {"command", "env", "cwd"}:
        return "expected {command: [argv...], env: {NAME: value}, cwd: path}"
    cmd = v.get("command")
    if not isinstance(cmd, list) or not cmd or not all(isinstance(c, (str, int, float)) for c in cmd):
        return "runner.command: expected a non-empty list of strings (an argv list; no shell)"
    env = v.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(x, (str, int, float)) for k, x in env.items()):
        return "runner.env: expected a mapping of names to strings"
    return None


def _check_fault(v: Any) -> str | None:
    if not isinstance(v, dict) or v.get("kind") not in FAULT_KINDS:
        return f"expected {{kind: ...}} with kind one of {', '.join(FAULT_KINDS)}"
    if not set(v) <= {"kind", "tensor", "delay_s", "factor", "step"}:
        return "fault: valid keys: kind, tensor, delay_s, factor, step"
    for key in ("delay_s", "factor"):
        if key in v and not _positive_number(v[key]):
            return f"fault.{key}: expected a positive number"
    return None


def fault_from_spec(spec: str, flag: str = "--inject") -> dict:
    """`sync_slowdown:0.1` -> {kind: sync_slowdown, factor: 0.1} (`delay_s` for the other kinds), checked."""
    kind, _, value = spec.partition(":")
    fault: dict = {"kind": kind}
    if value:
        try:
            fault["factor" if kind == "sync_slowdown" else "delay_s"] = float(value)
        except ValueError:
            raise ColobenchError(f"{flag} {spec!r}: {value!r} is not a number") from None
    problem = _check_fault(fault)
    if problem:
        raise ColobenchError(f"{flag} {spec!r}: {problem}")
    return fault


def _check_positive_int(v: Any) -> str | None:
    return None if _is_int(v) and v >= 1 else f"expected a positive int, got {v!r}"


def _check_str_map(v: Any) -> str | None:
    if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(x, (str, int, float, bool)) for k, x in v.items()):
        return "expected a mapping of names to scalar values"
    return None


def _check_gates(v: Any) -> str | None:
    from harness import metrics  # local: metrics imports stats, which is not needed to list scenarios
    return metrics.check_gates(v)


# setting name -> (default, validator returning an error string or None)
SETTINGS: dict[str, tuple[Any, Callable[[Any], str | None]]] = {
    "timeout_s": (600, lambda v: None if _positive_number(v) else f"expected a positive number of seconds, got {v!r}"),
    "steps": (2, lambda v: None if _is_int(v) and v >= 2 else f"expected an int >= 2 (two full RL steps at least), got {v!r}"),
    # sglang's /get_weights_by_name lists a whole tensor (about 40 s per check of a 1.3 GB model): large models may
    # check every Nth sync; the initial and the last sync are always checked
    "weights_check_every": (1, _check_positive_int),
    "repeat": (1, _check_positive_int),
    "gpus": (None, lambda v: None if v is None else _check_positive_int(v)),
    "expect": ("pass", _check_expect),
    "milestones": ((), milestones.check_rules),
    "metrics": ({}, _check_gates),
    "runner": (None, lambda v: None if v is None else _check_runner(v)),
    "env": ({}, _check_str_map),
    "engine_args": ({}, _check_str_map),
    "fault": (None, lambda v: None if v is None else _check_fault(v)),
    "tag": (None, lambda v: None if v is None or (isinstance(v, str) and v.replace("-", "").isalnum()) else
            "expected letters, digits and dashes"),
    "batch": ({"prompts": 4, "prompt_len": 8, "max_new_tokens": 16},
              lambda v: None if isinstance(v, dict) and set(v) <= {"prompts", "prompt_len", "max_new_tokens"}
              and all(_is_int(x) and x > 0 for x in v.values()) else "expected {prompts, prompt_len, max_new_tokens}: positive ints"),
    "markers": ((), lambda v: None if isinstance(v, list) and all(isinstance(x, str) and x.isidentifier() for x in v)
                else "expected a list of marker names"),
}
