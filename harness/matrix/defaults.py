"""defaults.yaml, read once: the default milestone rules and gates, the metric table, the A/B gates.

- Owns: loading and checking defaults.yaml, and the questions asked of it (`rules_for`, `metric`, `key_metrics`).
- Does not own: evaluating rules or gates (judge/).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from harness.errors import ScenarioError
from harness.matrix import rules, yamlfile

PATH = Path(__file__).resolve().parent / "defaults.yaml"
SIGNATURES = PATH.parent.parent / "judge" / "signatures.yaml"  # data only: matrix/ never imports judge/


@dataclass(frozen=True)
class Metric:
    """One row of the metric table."""

    name: str
    unit: str
    better: str  # higher | lower
    threshold: float  # relative change that counts as a change at all
    abs_floor: float  # ... and the absolute one, in the metric's unit
    key: bool
    perf: bool  # a timing or throughput: not sampled in warm-up steps


@cache
def load() -> dict[str, Any]:
    doc = yamlfile.load(PATH)
    if not isinstance(doc, dict) or doc.get("schema") != 1:
        raise ScenarioError(f"{PATH}: expected schema: 1")
    return doc


@cache
def metric_table() -> dict[str, Metric]:
    out = {}
    for name, row in load()["metrics"].items():
        threshold = rules.percent(row.get("threshold", "5%"))
        if row.get("better") not in ("higher", "lower") or threshold is None:
            raise ScenarioError(
                f"{yamlfile.where(PATH, row)}: metrics.{name}: need better: higher|lower and a threshold"
            )
        out[name] = Metric(
            name,
            str(row.get("unit", "")),
            row["better"],
            threshold,
            float(row.get("abs_floor", 0.0)),
            bool(row.get("key", False)),
            bool(row.get("perf", False)),
        )
    return out


def metric(name: str) -> Metric:
    """The table's row, or a neutral one (lower is better, 5%) for a metric an external runner made up."""
    return metric_table().get(name) or Metric(name, "", "lower", 0.05, 0.0, False, False)


def perf_metrics() -> frozenset[str]:
    return frozenset(m.name for m in metric_table().values() if m.perf)


def key_metrics() -> tuple[str, ...]:
    return tuple(m.name for m in metric_table().values() if m.key)


def rules_for(
    external: bool, steps: int, own_milestones: tuple | list, own_gates: dict
) -> tuple[list[dict], dict[str, dict]]:
    """Default plus a scenario's own milestone rules and gates."""
    kind = load()["external" if external else "builtin"]
    rule_list = list(kind["milestones"])
    if not external:
        rule_list.append({"name": f"{steps} steps", "event": "step_done", "min": steps, "max": steps})
    return rule_list + list(own_milestones), {**kind["metrics"], **own_gates}


@cache
def signature_names() -> tuple[str, ...]:
    """Names in the triage catalog (judge/signatures.yaml), for checking `expect: {fail: NAME}` at load time."""
    doc = yamlfile.load(SIGNATURES)
    return tuple(str(s.get("name")) for s in doc.get("signatures", []) if isinstance(s, dict))


def builtin_events() -> dict[str, dict[str, list[str]]]:
    """Event name -> {field: allowed type names} of the built-in runner."""
    return {
        name: {f: t if isinstance(t, list) else [t] for f, t in (fields or {}).items()}
        for name, fields in load()["events"].items()
    }


def builtin_rule_names(steps: int) -> set[str]:
    return {r["name"] for r in rules_for(False, steps, (), {})[0] if "name" in r}


def emitted_only(kind: str) -> frozenset[str]:
    """Metrics the built-in runner emits only colocated (`colocate_only`) or with the device timer (`timer_only`)."""
    return frozenset(load()[kind])


def builtin_sources() -> tuple[str, ...]:
    return tuple(load()["builtin_sources"])


def ab_gates() -> dict[str, dict]:
    return dict(load()["ab"])
