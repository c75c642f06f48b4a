"""Milestone rules over events and log lines: required, ordered, counted, timed; and forbidden patterns.

- Owns: evaluation (`evaluate`) of rules already checked at load time (matrix/rules.py).
- Does not own: reading logs or events from disk (run/launch.py, logs.py), naming causes (triage.py).

A rule is a mapping:

    - {name: engine up, event: engine_ready, within_s: 300}          # an event by name (fields may be matched)
    - {name: graphs, log: 'Capture cuda graph end', source: engine, min: 1, after: engine up}
    - {name: two steps, event: step_done, min: 2, max: 2}
    - {name: sync fast, event: weight_sync_done, within_s: 5, from: train_done}
    - {forbid: 'CUDA error: invalid argument'}                        # must never appear in any log
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.judge import triage
from harness.judge.logs import LogLine, first_error
from harness.matrix import userregex


@dataclass(frozen=True)
class Hit:
    t: float | None
    where: str  # "event step_done" or "engine-0.log:42"
    text: str


@dataclass(frozen=True)
class RuleResult:
    name: str
    ok: bool
    reason: str


def rule_name(rule: dict, index: int) -> str:
    if rule.get("name"):
        return str(rule["name"])
    kind = next(k for k in ("event", "log", "forbid") if k in rule)
    return f"{kind} {rule[kind]!r}"


def _hits(rule: dict, events: list[dict], lines: list[LogLine]) -> list[Hit]:
    if "event" in rule:
        want = rule.get("fields", {})
        return [
            Hit(e.get("t"), f"event {e['event']}", str(e))
            for e in events
            if e.get("event") == rule["event"] and all(e.get(k) == v for k, v in want.items())
        ]
    pattern = userregex.compile(str(rule.get("log") or rule.get("forbid")))
    source = rule.get("source")
    return [
        Hit(ln.t, f"{ln.source}.log:{ln.number}", ln.text)
        for ln in lines
        if (source is None or ln.source.startswith(str(source))) and pattern.search(ln.text)
    ]


def evaluate(rules: list[dict], events: list[dict], lines: list[LogLine]) -> list[RuleResult]:
    """Judge every rule; results keep the rules' order."""
    results: list[RuleResult] = []
    first_time: dict[str, float | None] = {}
    for i, rule in enumerate(rules):
        name = rule_name(rule, i)
        hits = _hits(rule, events, lines)
        if "forbid" in rule:
            ok = not hits
            reason = (
                ""
                if ok
                else f"forbidden pattern {rule['forbid']!r} seen at {hits[0].where}: {hits[0].text.strip()[:200]}"
            )
            results.append(RuleResult(name, ok, reason))
            continue
        lo, hi = rule.get("min", 1), rule.get("max")
        what = f"event {rule['event']!r}" if "event" in rule else f"log /{rule['log']}/"
        reason = ""
        if len(hits) < lo:
            seen = _what_instead(rule, events, lines)
            reason = f"{what}: seen {len(hits)} times, expected at least {lo}; {seen}"
        elif hi is not None and len(hits) > hi:
            reason = f"{what}: seen {len(hits)} times, expected at most {hi}"
        first = hits[0].t if hits else None
        first_time[name] = first
        if not reason and "after" in rule:
            before = first_time.get(rule["after"])
            if before is None:
                reason = f"{what}: must come after {rule['after']!r}, which was not seen"
            elif first is not None and first < before:
                reason = f"{what}: at t={first:.2f}s, before {rule['after']!r} at t={before:.2f}s"
        if not reason and "within_s" in rule and hits:
            origin = first_time.get(rule["from"]) if "from" in rule else 0.0
            if origin is None:
                reason = f"{what}: timed from {rule['from']!r}, which was not seen"
            elif first is not None and first - origin > rule["within_s"]:
                base = f"{rule['from']!r}" if "from" in rule else "the start"
                reason = f"{what}: at {first - origin:.2f}s after {base}, budget {rule['within_s']}s"
        results.append(RuleResult(name, not reason, reason))
    return results


def _what_instead(rule: dict, events: list[dict], lines: list[LogLine]) -> str:
    if "event" in rule:
        names = [e.get("event") for e in events if e.get("event") != "metric"]
        return f"last events: {', '.join(map(str, names[-5:])) or 'none'}"
    err = first_error(triage.without_benign(lines))
    return (
        f"first error line: {err.source}.log:{err.number}: {err.text.strip()[:200]}"
        if err
        else "no error line in the logs"
    )
