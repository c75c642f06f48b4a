"""Milestone rules over events and log lines: required, ordered, counted, timed; and forbidden patterns.

- Owns: the `milestones:` syntax (`check_rules`), evaluation (`evaluate`), and the context shown around the
  first error line of a failed run.
- Does not own: reading logs or events from disk (launch.py), naming causes (triage.py).

A rule is a mapping:

    - {name: engine up, event: engine_ready, within_s: 300}          # an event by name (fields may be matched)
    - {name: graphs, log: 'Capture cuda graph end', source: engine, min: 1, after: engine up}
    - {name: two steps, event: step_done, min: 2, max: 2}
    - {name: sync fast, event: weight_sync_done, within_s: 5, from: train_done}
    - {forbid: 'CUDA error: invalid argument'}                        # must never appear in any log
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_RULE_KEYS = {"name", "event", "fields", "log", "source", "min", "max", "within_s", "from", "after", "forbid"}
ERROR_LINE = re.compile(r"(?i)(error\b|exception|traceback|\bfatal\b|\bfailed:|terminated unexpectedly|timed out)")


@dataclass(frozen=True)
class LogLine:
    source: str          # log file stem: runner, engine-0, trainer-0, ...
    number: int          # 1-based line number in that file
    text: str
    t: float | None      # seconds since the run started, when known


@dataclass(frozen=True)
class Hit:
    t: float | None
    where: str           # "event step_done" or "engine-0.log:42"
    text: str


@dataclass(frozen=True)
class RuleResult:
    name: str
    ok: bool
    reason: str


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def check_rules(rules: Any) -> str | None:
    """Validate a `milestones:` list; return a one-line problem or None."""
    if not isinstance(rules, (list, tuple)):
        return "expected a list of rules"
    names = set()
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            return f"[{i}]: expected a mapping"
        unknown = set(rule) - _RULE_KEYS
        if unknown:
            return f"[{i}].{sorted(unknown)[0]}: unknown key; valid: {', '.join(sorted(_RULE_KEYS))}"
        kinds = [k for k in ("event", "log", "forbid") if k in rule]
        if len(kinds) != 1:
            return f"[{i}]: give exactly one of event, log, forbid"
        for key in ("log", "forbid"):
            if key in rule:
                try:
                    re.compile(str(rule[key]))
                except re.error as exc:
                    return f"[{i}].{key}: bad regex: {exc}"
        for key in ("min", "max"):
            if key in rule and not _is_count(rule[key]):
                return f"[{i}].{key}: expected a non-negative int"
        if "within_s" in rule and not (isinstance(rule["within_s"], (int, float)) and rule["within_s"] > 0):
            return f"[{i}].within_s: expected a positive number"
        if "fields" in rule and not isinstance(rule["fields"], dict):
            return f"[{i}].fields: expected a mapping"
        for key in ("after", "from"):
            if key in rule and rule[key] not in names:
                return f"[{i}].{key}: no earlier rule named {rule[key]!r}"
        names.add(rule.get("name") or f"rule{i}")
    return None


def rule_name(rule: dict, index: int) -> str:
    if rule.get("name"):
        return str(rule["name"])
    kind = next(k for k in ("event", "log", "forbid") if k in rule)
    return f"{kind} {rule[kind]!r}"


def _hits(rule: dict, events: list[dict], lines: list[LogLine]) -> list[Hit]:
    if "event" in rule:
        want = rule.get("fields", {})
        return [Hit(e.get("t"), f"event {e['event']}", str(e)) for e in events
                if e.get("event") == rule["event"] and all(e.get(k) == v for k, v in want.items())]
    pattern = re.compile(str(rule.get("log") or rule.get("forbid")))
    source = rule.get("source")
    return [Hit(ln.t, f"{ln.source}.log:{ln.number}", ln.text) for ln in lines
            if (source is None or ln.source.startswith(str(source))) and pattern.search(ln.text)]


def evaluate(rules: list[dict], events: list[dict], lines: list[LogLine]) -> list[RuleResult]:
    """Judge every rule; results keep the rules' order."""
    results: list[RuleResult] = []
    first_time: dict[str, float | None] = {}
    for i, rule in enumerate(rules):
        name = rule_name(rule, i)
        hits = _hits(rule, events, lines)
        if "forbid" in rule:
            ok = not hits
            reason = "" if ok else f"forbidden pattern {rule['forbid']!r} seen at {hits[0].where}: {hits[0].text.strip()[:200]}"
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
    err = first_error(lines)
    return f"first error line: {err.source}.log:{err.number}: {err.text.strip()[:200]}" if err else "no error line in the logs"


def first_error(lines: list[LogLine]) -> LogLine | None:
    """The earliest line (by time, then file order) that looks like an error."""
    candidates = [ln for ln in lines if ERROR_LINE.search(ln.text)]
    if not candidates:
        return None
    return min(candidates, key=lambda ln: (ln.t if ln.t is not None else float("inf")))


def context(lines: list[LogLine], line: LogLine, radius: int = 5) -> list[str]:
    """The lines of `line`'s file around it, formatted `source:n| text`."""
    same = [ln for ln in lines if ln.source == line.source]
    idx = next(i for i, ln in enumerate(same) if ln.number == line.number)
    window = same[max(0, idx - radius): idx + radius + 1]
    return [f"{ln.source}:{ln.number}{'>' if ln.number == line.number else '|'} {ln.text.rstrip()}" for ln in window]


def read_log_dir(folder: str | Path) -> list[LogLine]:
    """Every *.log (and *.out/*.err) under a folder, untimed, in file order; for triage of foreign logs."""
    out: list[LogLine] = []
    folder = Path(folder)
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".log", ".out", ".err", ".txt")):
        source = str(path.relative_to(folder).with_suffix(""))
        with open(path, encoding="utf-8", errors="replace") as fh:
            out += [LogLine(source, n, text.rstrip("\n"), None) for n, text in enumerate(fh, 1)]
    return out
