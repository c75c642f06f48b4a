"""The syntax of a scenario's `milestones:` rules and `metrics:` gates, checked when the matrix loads.

- Owns: `check_rules`, `check_gates` (each returns a one-line problem or None), `percent` ('5%' -> 0.05), and the
  per-run statistics a relative gate may name (`RUN_STATS`).
- Does not own: evaluating rules or gates (judge/milestones.py, judge/metrics.py).

A rule:  {name: graphs, log: 'Capture cuda graph end', source: engine, min: 1, after: engine up, within_s: 300}
         {name: two steps, event: step_done, min: 2, max: 2}    {forbid: 'CUDA error: invalid argument'}
A gate:  {max: 2.0} | {min: 0, max: 0.05} | {max_drop: 5%} | {max_rise: 10%, abs_floor: 0.01, stat: min, p: 0.01}
         {max_drop: 5%, max_host_noise: 20%}   (the host probe's CV a relative gate accepts; default: its threshold)
"""

from __future__ import annotations

import math
from typing import Any

from harness.matrix import userregex

RULE_KEYS = {"name", "event", "fields", "log", "source", "min", "max", "within_s", "from", "after", "forbid"}
MAX_SECONDS = 7 * 24 * 3600  # a week: no phase of a run, no milestone waits longer
GATE_KEYS = {"min", "max", "max_drop", "max_rise", "abs_floor", "p", "stat", "max_host_noise"}
RUN_STATS = ("median", "min")


def is_number(v: Any) -> bool:
    """A finite int or float, never a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10**7


def percent(v: Any) -> float | None:
    """'5%' -> 0.05 (a plain number is taken as a fraction); None if not a finite non-negative fraction."""
    if isinstance(v, str) and v.strip().endswith("%"):
        try:
            v = float(v.strip()[:-1]) / 100
        except ValueError:
            return None
    return float(v) if is_number(v) and v >= 0 else None


def check_rules(rules: Any) -> str | None:
    """Validate a `milestones:` list; a one-line problem or None."""
    if not isinstance(rules, (list, tuple)):
        return "expected a list of rules"
    named: set[str] = set()
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            return f"[{i}]: expected a mapping"
        unknown = sorted(str(k) for k in set(rule) - RULE_KEYS)
        if unknown:
            return f"[{i}].{unknown[0]}: unknown key; valid: {', '.join(sorted(RULE_KEYS))}"
        kinds = [k for k in ("event", "log", "forbid") if k in rule]
        if len(kinds) != 1:
            return f"[{i}]: give exactly one of event, log, forbid"
        for key in ("name", "event", "log", "forbid", "source", "after", "from"):
            if key in rule and not (isinstance(rule[key], str) and rule[key]):
                return f"[{i}].{key}: expected a non-empty string, got {rule[key]!r}"
        for key in ("log", "forbid"):
            problem = check_regex(rule[key], f"[{i}].{key}") if key in rule else None
            if problem:
                return problem
        for key in ("min", "max"):
            if key in rule and not _is_count(rule[key]):
                return f"[{i}].{key}: expected a non-negative int, got {rule[key]!r}"
        if "min" in rule and "max" in rule and rule["min"] > rule["max"]:
            return f"[{i}]: min {rule['min']} > max {rule['max']}"
        if "within_s" in rule and not (is_number(rule["within_s"]) and 0.001 <= rule["within_s"] <= MAX_SECONDS):
            return (
                f"[{i}].within_s: expected a positive finite number of seconds up to a week, got {rule['within_s']!r}"
            )
        if "fields" in rule and not (
            isinstance(rule["fields"], dict) and all(isinstance(k, str) for k in rule["fields"])
        ):
            return f"[{i}].fields: expected a mapping of event field names to values"
        if "forbid" in rule and set(rule) - {"forbid", "name", "source"}:
            return f"[{i}]: a forbid rule takes only name and source"
        for key in ("after", "from"):
            if key in rule and rule[key] not in named:
                return f"[{i}].{key}: no earlier rule named {rule[key]!r} (only rules with a `name` can be referred to)"
        if "name" in rule:
            if rule["name"] in named:
                return f"[{i}].name: duplicate rule name {rule['name']!r}"
            named.add(rule["name"])
    return None


LOG_METRIC_KEYS = {"line", "step", "source", "values"}


def check_regex(pattern: Any, where: str, groups: int | None = None) -> str | None:
    """A user regex: RE2 compiles it (linear time), it does not match the empty string (every line) and, where
    `groups` is given, it has exactly that many capture groups; a one-line problem or None."""
    if not (isinstance(pattern, str) and pattern):
        return f"{where}: expected a non-empty regex, got {pattern!r}"
    try:
        compiled = userregex.compile(pattern)
    except ValueError as exc:
        return f"{where}: bad regex: {exc}"
    if groups is not None and compiled.groups != groups:
        return f"{where}: expected exactly {groups} capture group(s), got {compiled.groups}"
    if compiled.search(""):
        return f"{where}: {pattern!r} matches the empty string, so every line: a rule that says nothing about the run"
    return None


def check_log_metrics(spec: Any, known: set[str] | None = None) -> str | None:
    """Validate `log_metrics:` (metric samples read from a framework's own log lines); a one-line problem or None."""
    if not isinstance(spec, dict) or "line" not in spec or "values" not in spec:
        return "expected {line: REGEX, values: {METRIC: REGEX with one group}, step: REGEX, source: LOG}"
    unknown = sorted(str(k) for k in set(spec) - LOG_METRIC_KEYS)
    if unknown:
        return f"{unknown[0]}: unknown key; valid: {', '.join(sorted(LOG_METRIC_KEYS))}"
    problem = check_regex(spec["line"], "line", 0) or (check_regex(spec["step"], "step", 1) if "step" in spec else None)
    if problem:
        return problem
    if "source" in spec and not (isinstance(spec["source"], str) and spec["source"]):
        return f"source: expected a log file stem such as runner, got {spec['source']!r}"
    if not isinstance(spec["values"], dict) or not spec["values"]:
        return "values: expected a mapping of metric name to a regex with one group"
    for name, pattern in spec["values"].items():
        if known is not None and name not in known:
            return f"values.{name}: unknown metric; known: {', '.join(sorted(known))}"
        problem = check_regex(pattern, f"values.{name}", 1)
        if problem:
            return problem
    return None


def check_gates(gates: Any, known: set[str] | None = None) -> str | None:
    """Validate a `metrics:` mapping (metric names from `known`, when given); a one-line problem or None."""
    if not isinstance(gates, dict):
        return "expected a mapping of metric name to gate"
    for name, gate in gates.items():
        if known is not None and name not in known:
            return f"{name}: unknown metric; known: {', '.join(sorted(known))}"
        if not isinstance(gate, dict) or not gate:
            return f"{name}: expected a mapping such as {{max: 2.0}} or {{max_drop: 5%}}"
        unknown = sorted(str(k) for k in set(gate) - GATE_KEYS)
        if unknown:
            return f"{name}.{unknown[0]}: unknown key; valid: {', '.join(sorted(GATE_KEYS))}"
        for key in ("min", "max", "abs_floor"):
            if key in gate and not is_number(gate[key]):
                return f"{name}.{key}: expected a finite number, got {gate[key]!r}"
        if "abs_floor" in gate and gate["abs_floor"] < 0:
            return f"{name}.abs_floor: expected a non-negative number, got {gate['abs_floor']!r}"
        if "min" in gate and "max" in gate and gate["min"] > gate["max"]:
            return f"{name}: min {gate['min']} > max {gate['max']}"
        for key in ("max_drop", "max_rise", "max_host_noise"):
            if key not in gate:
                continue
            value = percent(gate[key])
            if not (isinstance(gate[key], str) and gate[key].strip().endswith("%")) or value is None:
                return f"{name}.{key}: expected a percentage such as 5%, got {gate[key]!r}"
            if key == "max_drop" and value >= 1:
                return f"{name}.max_drop: {gate[key]} would allow dropping everything; expected below 100%"
        relative = "max_drop" in gate or "max_rise" in gate
        if "p" in gate and not (is_number(gate["p"]) and 0 < gate["p"] < 1):
            return f"{name}.p: expected a probability in (0, 1), got {gate['p']!r}"
        if "stat" in gate and gate["stat"] not in RUN_STATS:
            return f"{name}.stat: expected one of {', '.join(RUN_STATS)}, got {gate['stat']!r}"
        for key in ("p", "stat", "abs_floor", "max_host_noise"):
            if key in gate and not relative:
                return f"{name}.{key}: only a relative gate (max_drop or max_rise) uses {key}"
    return None
