"""The matrix vocabulary beside the axes: per-scenario settings (with validators), the engine arguments the runner
reads, and fault specs.

- Owns: what may appear as a row's setting and how each value is checked (`SETTINGS`, `ENGINE_ARGS`, `FAULT_KINDS`);
  every check returns a one-line problem or None and runs when the matrix loads.
- Does not own: the axes (axes.py), expansion (scenario.py), milestone and gate syntax (rules.py).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from harness.errors import ColobenchError
from harness.matrix import rules, yamlfile
from harness.matrix.axes import is_int

PLACEHOLDERS = ("{python}", "{repo}", "{run_dir}", "{scenario}")


# `slowdown: F` lengthens the timed rollout, train step and every weight transfer by the fraction F (a known change
# of each gated timing on the host's real noise: the power study's B); `noisy_host: F` jitters the harness's host
# probe by up to F (a simulated noisy host, run/hostprobe.py)
FAULT_KINDS = (
    "skip_tensor",
    "corrupt_tensor",
    "sync_delay",
    "sync_slowdown",
    "slowdown",
    "noisy_host",
    "crash_engine_in_sync",
    "kill_runner_mid_step",
    "hang",
)
FACTOR_KINDS = ("sync_slowdown", "slowdown", "noisy_host")


def positive(v: Any) -> bool:
    """A finite number > 0 (never a bool)."""
    return rules.is_number(v) and v > 0


def _seconds(v: Any) -> bool:
    """A time limit: at least a second (a sub-second budget only times out), at most rules.MAX_SECONDS."""
    return rules.is_number(v) and 1 <= v <= rules.MAX_SECONDS


def _fraction(v: Any) -> bool:
    return rules.is_number(v) and 0 < v < 1


def _boolish(v: Any) -> bool:
    return isinstance(v, bool) or (isinstance(v, str) and v.lower() in ("true", "false", "1", "0"))


# engine_args the runner reads: name -> (check, what it expects)
ENGINE_ARGS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (lambda v: is_int(v) and 0 <= v < 2**63, "an int from 0 to 2^63 - 1"),
    "lr": (lambda v: positive(v) and v < 1, "a learning rate in (0, 1)"),
    "port": (lambda v: is_int(v) and 1024 <= v <= 65535, "a port number 1024-65535"),
    "phase_timeout_s": (_seconds, f"seconds from 1 to {rules.MAX_SECONDS}"),
    "engine_start_timeout_s": (_seconds, f"seconds from 1 to {rules.MAX_SECONDS}"),
    "device_mapping": (lambda v: v in ("local", "physical"), "local or physical"),
    "mem_fraction_static": (_fraction, "a fraction in (0, 1)"),
    "cuda_graph_max_bs": (lambda v: is_int(v) and 0 < v <= 4096, "an int from 1 to 4096"),
    "chunked_prefill_size": (
        lambda v: is_int(v) and (0 < v <= 2**20 or v == -1),
        "an int from 1 to 2^20 (or -1: no chunking)",
    ),
    "attention_backend": (lambda v: isinstance(v, str) and v.replace("_", "").isalnum(), "a backend name"),
    "sampling_backend": (lambda v: isinstance(v, str) and v.replace("_", "").isalnum(), "a backend name"),
    "memory_saver_cuda_graph": (_boolish, "true or false"),
    "disable_cuda_graph": (_boolish, "true or false"),
    # sglang's device timer (--enable-metrics + SGLANG_ENABLE_METRICS_DEVICE_TIMER): the engine_gpu_busy metric
    "forward_timer": (_boolish, "true or false"),
}


def _check_expect(v: Any) -> str | None:
    if v == "pass":
        return None
    if isinstance(v, dict) and set(v) == {"fail"} and isinstance(v["fail"], str) and v["fail"]:
        return None
    return "expected `pass` or {fail: <signature name | gate:<metric> | milestone:<name>>}"


MAX_ENV_VALUE = 128 * 1024 - 1  # Linux refuses one "NAME=value" argument of 128 KiB or more (MAX_ARG_STRLEN)
# names the harness sets for every run: a scenario's value would be overwritten or would break the run's contract
RESERVED_ENV = ("CUDA_VISIBLE_DEVICES", "PYTHONPATH", "PYTHONUNBUFFERED", "RAY_ADDRESS")


def check_env(v: Any) -> str | None:
    """Environment variables: ASCII names (not the harness's own), values exactly as written (a value YAML would
    reread, like 0.10 or 0777, must be quoted), no NUL, under the kernel's limit."""
    if not isinstance(v, dict):
        return "expected a mapping of names to values"
    for k, x in v.items():
        if not isinstance(k, str) or not k or not k.isascii() or not k.replace("_", "a").isalnum() or k[0].isdigit():
            return f"{k!r}: not an environment variable name (ASCII letters, digits, '_', not starting with a digit)"
        if k in RESERVED_ENV or k.startswith("COLOBENCH_"):
            return f"{k}: set by colobench itself for every run; a scenario cannot set it"
        if not (isinstance(x, (str, int, float)) and not isinstance(x, bool)) or "\0" in str(x):
            return f"{k}: expected a string or number without NUL bytes, got {x!r}"
        raw = yamlfile.reread(v, k)
        if raw is not None and raw != str(x):
            return f"{k}: YAML reads the unquoted {raw} as {x!r}, so the process would see {str(x)!r}; quote it"
        if len(f"{k}={x}".encode()) > MAX_ENV_VALUE:
            return f"{k}: longer than the {MAX_ENV_VALUE} bytes the kernel allows one variable"
    return None


def _check_runner(v: Any) -> str | None:
    if not isinstance(v, dict) or not set(v) <= {"command", "env", "cwd"}:
        return "expected {command: [argv...], env: {NAME: value}, cwd: path}"
    cmd = v.get("command")
    if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) and "\0" not in c for c in cmd):
        return "runner.command: expected a non-empty list of strings (an argv list; no shell)"
    for arg in cmd:
        for ref in re.findall(r"\{[^{}]*\}", arg):
            if ref not in PLACEHOLDERS:
                return f"runner.command: unknown placeholder {ref}; valid: {', '.join(PLACEHOLDERS)}"
    problem = check_env(v.get("env", {}))
    if problem:
        return f"runner.env: {problem}"
    if "cwd" in v and not (isinstance(v["cwd"], str) and v["cwd"] and "\0" not in v["cwd"]):
        return f"runner.cwd: expected a folder path, got {v['cwd']!r}"
    return None


def _check_fault(v: Any) -> str | None:
    if not isinstance(v, dict) or v.get("kind") not in FAULT_KINDS:
        return f"expected {{kind: ...}} with kind one of {', '.join(FAULT_KINDS)}"
    if not set(v) <= {"kind", "tensor", "delay_s", "factor", "step"}:
        return "fault: valid keys: kind, tensor, delay_s, factor, step"
    for key, most in (("delay_s", 3600), ("factor", 10)):
        if key in v and not (positive(v[key]) and v[key] <= most):
            return f"fault.{key}: expected a number in (0, {most}], got {v[key]!r}"
    if v["kind"] in FACTOR_KINDS and "factor" not in v:
        return f"fault: {v['kind']} needs a factor (e.g. {v['kind']}:0.05)"
    if "step" in v and not (is_int(v["step"]) and 1 <= v["step"] <= 10_000):
        return f"fault.step: expected an int >= 1, got {v['step']!r}"
    if "tensor" in v and not (isinstance(v["tensor"], str) and v["tensor"]):
        return f"fault.tensor: expected a tensor name, got {v['tensor']!r}"
    return None


def fault_from_spec(spec: str, flag: str = "--inject") -> dict:
    """`sync_slowdown:0.1` -> {kind: sync_slowdown, factor: 0.1} (`delay_s` for the other kinds), checked."""
    kind, _, value = spec.partition(":")
    fault: dict = {"kind": kind}
    if value:
        try:
            fault["factor" if kind in FACTOR_KINDS else "delay_s"] = float(value)
        except ValueError:
            raise ColobenchError(f"{flag} {spec!r}: {value!r} is not a number") from None
    problem = _check_fault(fault)
    if problem:
        raise ColobenchError(f"{flag} {spec!r}: {problem}")
    return fault


TAG = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,63}", re.ASCII)
# what an id's tail already means: an A/B side (.ab3b), a repetition or retry (.rep2, .retry1), an injected fault or
# changed engine arguments (--ab), a version's post/dev/rc part; a tag like one would share history with another row
TAG_LOOKALIKE = re.compile(r"(ab\d+[ab]|rep\d+|retry\d+|inject-.*|args-.*|(post|dev|rc)\d*([-].*)?)", re.I)


def _check_tag(v: Any) -> str | None:
    if not isinstance(v, str) or not TAG.fullmatch(v):
        return f"expected an ASCII letter, then letters, digits and dashes (64 at most), got {v!r}"
    if TAG_LOOKALIKE.fullmatch(v):
        return f"{v!r} reads as a suffix colobench gives ids itself (A/B side, repetition, retry, version part)"
    return None


# pytest's own markers change whether or how a test runs; a scenario's markers only select (-m)
PYTEST_MARKERS = (
    "skip",
    "skipif",
    "xfail",
    "parametrize",
    "usefixtures",
    "filterwarnings",
    "timeout",
    "flaky",
    "tryfirst",
    "trylast",
    "forked",
    "order",
    "dependency",
    "asyncio",
    "anyio",
    "no_cover",
)


def _check_markers(v: Any) -> str | None:
    if not isinstance(v, list) or not all(isinstance(x, str) and x.isascii() and x.isidentifier() for x in v):
        return "expected a list of marker names (ASCII identifiers)"
    taken = [x for x in v if x in PYTEST_MARKERS]
    if taken:
        return f"{taken[0]}: pytest's own marker, which would change the outcome; markers here only select (-m)"
    return None


def _check_engine_args(v: Any) -> str | None:
    if not isinstance(v, dict):
        return "expected a mapping of engine argument to value"
    for k, x in v.items():
        if k not in ENGINE_ARGS:
            return f"{k}: unknown engine argument; valid: {', '.join(sorted(ENGINE_ARGS))}"
        check, expects = ENGINE_ARGS[k]
        if not check(x):
            return f"{k}: expected {expects}, got {x!r}"
    return None


def _check_log_metrics(v: Any) -> str | None:
    from harness.matrix import defaults  # defaults.py reads this package's YAML

    return rules.check_log_metrics(v, set(defaults.metric_table()))


def _check_gates(v: Any) -> str | None:
    from harness.matrix import defaults  # defaults.py reads this package's YAML

    return rules.check_gates(v, set(defaults.metric_table()))


def _check_batch(v: Any) -> str | None:
    """Prompts per rollout (up to 65536) and lengths (up to 2^20; the model's context is checked per row)."""
    if (
        isinstance(v, dict)
        and set(v) == {"prompts", "prompt_len", "max_new_tokens"}
        and all(is_int(x) and 0 < x <= 2**20 for x in v.values())
        and v["prompts"] <= 65536
    ):
        return None
    return (
        "expected {prompts, prompt_len, max_new_tokens}: all three, positive ints (prompts up to 65536, lengths up "
        "to 2^20)"
    )


def _field(default: Any, check: Callable[[Any], str | None]) -> Any:
    """A setting: its default and its check (a one-line problem or None), declared together."""
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"check": check})
    return field(default=default, metadata={"check": check})


def _int_in(lo: int, hi: int, what: str = "") -> Callable[[Any], str | None]:
    return lambda v: (
        None if is_int(v) and lo <= v <= hi else f"expected an int {what or f'from {lo} to {hi}'}, got {v!r}"
    )


def _optional(check: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    return lambda v: None if v is None else check(v)


def _one_of(*valid: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in valid else f"expected {', '.join(valid[:-1])} or {valid[-1]}, got {v!r}"


@dataclass(frozen=True)
class Settings:
    """A row's settings, typed, each with its default and its check. The harness reads them as attributes; the
    runner's view of the same document is runner/spec.Settings (the fields it acts on)."""

    timeout_s: float = _field(
        600, lambda v: None if _seconds(v) else f"expected seconds from 1 to {rules.MAX_SECONDS}, got {v!r}"
    )
    steps: int = _field(2, _int_in(2, 10_000, ">= 2 (two full RL steps at least)"))
    # the exact compare (/get_weights_by_name: about 40 s per check of a 1.3 GB model) may check every Nth sync
    # only; the initial and the last sync are always checked
    weights_check_every: int = _field(1, _int_in(1, 10_000))
    # how a sync is checked (harness/runner/verify.py): checksum (seconds; sglang 0.5.12+ at TP1, the reference
    # engine), exact (/get_weights_by_name or reset-and-resync; minutes on GB models) or auto (checksum where offered)
    weights_check: str = _field("auto", _one_of("auto", "checksum", "exact"))
    # steps run and checked but never sampled for timings (the first rollout and train step pay JIT and allocator
    # warm-up); None: 1 for the built-in runner, 0 for an external one
    warmup_steps: int | None = _field(None, _optional(_int_in(0, 10_000)))
    repeat: int = _field(1, _int_in(1, 1000))
    # weight transfers back to back per step, timed each; weight_sync_s is their median (a sync of tens of
    # milliseconds is launch-bound: one transfer a step leaves its timing to the host's jitter)
    sync_repeats: int = _field(1, _int_in(1, 50))
    gpus: int | None = _field(None, _optional(_int_in(1, 1024)))
    expect: str | dict = _field("pass", _check_expect)
    milestones: tuple | list = _field((), rules.check_rules)
    metrics: dict = _field({}, _check_gates)
    runner: dict | None = _field(None, _optional(_check_runner))
    # an external runner's metrics read from its own log lines (e.g. a framework's per-step "step:3 - key:value" line)
    log_metrics: dict | None = _field(None, _optional(_check_log_metrics))
    env: dict = _field({}, check_env)
    engine_args: dict = _field({}, _check_engine_args)
    fault: dict | None = _field(None, _optional(_check_fault))
    tag: str | None = _field(None, _optional(_check_tag))
    batch: dict = _field({"prompts": 4, "prompt_len": 8, "max_new_tokens": 16}, _check_batch)
    # split placement across nodes: STRICT_SPREAD, one node per bundle (engine and trainer on different nodes)
    nodes: str = _field("one", _one_of("one", "spread"))
    # the built-in runner's own network namespace (loopback only) where the host allows it; host: the host's network
    network: str = _field("isolated", _one_of("isolated", "host"))
    markers: tuple | list = _field((), _check_markers)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The settings as scenario.json holds them (tuples as lists)."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in dataclasses.fields(self)
        }


# setting name -> its check, and the defaults every row starts from: both read off Settings
CHECKS: dict[str, Callable[[Any], str | None]] = {f.name: f.metadata["check"] for f in dataclasses.fields(Settings)}


def default_settings() -> dict[str, Any]:
    """A fresh mapping of every setting to its default (rows are merged into it before they become Settings)."""
    return dict(vars(Settings()))
