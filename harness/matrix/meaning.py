"""What a well-formed row means, checked at load: rules and gates that could never say anything about the product.

- Owns: `problem(axes, settings, model)` -> "key: reason" or None, for one expanded row: a relative gate against its
  metric's direction, a gate on a metric this row's runner and mode never emit, milestone rules on events, fields or
  log sources a built-in run never has, a user rule named like a built-in one, a batch longer than the model's
  context, a check cadence past the steps.
- Does not own: the syntax of rules and gates (rules.py), settings' types and bounds (schema.py), rows that cannot
  run at all (axes.impossible), models (models.py).
External runners (a framework's own launcher) write their own events and logs: only the gates' directions are
checked for them.
"""

from __future__ import annotations

from typing import Any

from harness.matrix import defaults
from harness.matrix.models import Model
from harness.matrix.schema import Settings

TYPES = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, float),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
}


def _gates(axes: dict[str, Any], settings: Settings, builtin: bool) -> str | None:
    table = defaults.metric_table()
    for name, gate in settings.metrics.items():
        row = table[name]
        if "max_drop" in gate and row.better == "lower":
            return (
                f"metrics.{name}.max_drop: {name} is better lower ({row.unit}), so a drop is an improvement; "
                "gate a rise (max_rise)"
            )
        if "max_rise" in gate and row.better == "higher":
            return (
                f"metrics.{name}.max_rise: {name} is better higher ({row.unit}), so a rise is an improvement; "
                "gate a drop (max_drop)"
            )
        if not builtin:
            continue
        if name in defaults.emitted_only("colocate_only") and not axes["colocate"]:
            return f"metrics.{name}: the built-in runner emits {name} only colocated; this row is split"
        timer = str(settings.engine_args.get("forward_timer", True)).lower() in ("1", "true")
        if name in defaults.emitted_only("timer_only") and not timer:
            return f"metrics.{name}: emitted only with the engine's device timer; this row sets forward_timer off"
    return None


def _rules(settings: Settings) -> str | None:
    events = defaults.builtin_events()
    sources = defaults.builtin_sources()
    own_names = defaults.builtin_rule_names(settings.steps)
    spread = settings.nodes == "spread"
    for i, rule in enumerate(settings.milestones):
        at = f"milestones[{i}]"
        if rule.get("name") in own_names:
            return f"{at}.name: {rule['name']!r} is a built-in rule's name; name yours otherwise"
        if "event" in rule and rule["event"] not in events:
            return f"{at}.event: the built-in runner emits no event {rule['event']!r}; it emits {', '.join(events)}"
        for field, value in (rule.get("fields") or {}).items():
            known = events.get(rule.get("event"), {})
            if field not in known:
                return (
                    f"{at}.fields.{field}: event {rule['event']} has no field {field!r}; its fields: "
                    f"{', '.join(known) or 'none'}"
                )
            if not any(TYPES[t](value) for t in known[field]):
                return f"{at}.fields.{field}: expected {' or '.join(known[field])}, got {value!r}"
        source = rule.get("source")
        if source is not None and not (
            any(s.startswith(str(source)) for s in sources) or (spread and "engine" in str(source))
        ):
            return f"{at}.source: no log of a built-in run starts with {source!r}; its logs: {', '.join(sources)}"
    return None


def problem(axes: dict[str, Any], settings: Settings, model: Model) -> str | None:
    """The first thing in this row that cannot mean what it says, as `key: reason`, or None."""
    builtin = not settings.runner
    if builtin and settings.log_metrics:
        return "log_metrics: only an external runner's logs are read for metrics (the built-in runner emits events)"
    found = _gates(axes, settings, builtin) or (builtin and _rules(settings)) or None
    if found:
        return found
    warmup = settings.warmup_steps
    if builtin and warmup is not None and warmup >= settings.steps:
        return f"warmup_steps: {warmup} leaves no steady step of steps={settings.steps} to sample"
    batch, context = settings.batch, model.effective_config.get("max_position_embeddings")
    if builtin and isinstance(context, int) and batch["prompt_len"] + batch["max_new_tokens"] > context:
        return (
            f"batch: prompt_len + max_new_tokens = {batch['prompt_len'] + batch['max_new_tokens']} is longer "
            f"than {model.name}'s context ({context} positions)"
        )
    if builtin and settings.weights_check_every > settings.steps:
        return (
            f"weights_check_every: {settings.weights_check_every} is past the {settings.steps} steps "
            "(the first and last syncs are always checked; use a value up to steps)"
        )
    return None
