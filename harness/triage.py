"""Known failure signatures (signatures.yaml) -> the first causal error, its cause, fix and layer.

- Owns: loading the catalog and `diagnose(lines)`: every process's log lines in, the earliest *causal* match out
  (a symptom such as `Server process terminated unexpectedly` or a Gloo timeout is kept only when nothing causal
  precedes it), or the first error line as "unknown", with the lines around it.
- Does not own: reading the run folder (launch.py / milestones.read_log_dir) or verdicts (execute.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from harness import milestones, yamlfile
from harness.errors import ScenarioError
from harness.milestones import LogLine

CATALOG = Path(__file__).resolve().parent / "signatures.yaml"
LAYERS = ("sglang", "nccl", "ray", "memory-saver", "trainer", "harness", "infra")
CLASSES = ("product", "infra")
_KEYS = {"name", "regex", "layer", "class", "symptom", "cause", "fix", "reference", "example"}
_REQUIRED = _KEYS - {"symptom"}
_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,6}))?")
WINDOW = 3   # a match may start in a line and run over the next two (stack traces wrap)


@dataclass(frozen=True)
class Signature:
    name: str
    regex: re.Pattern
    layer: str
    klass: str
    symptom: bool
    cause: str
    fix: str
    reference: str
    example: str


@dataclass(frozen=True)
class Diagnosis:
    signature: Signature | None
    line: LogLine | None
    context: tuple[str, ...]
    symptoms: tuple[str, ...]          # later symptom signatures seen, e.g. ("gloo-timeout",)

    @property
    def name(self) -> str:
        return self.signature.name if self.signature else "unknown"

    @property
    def is_infra(self) -> bool:
        return bool(self.signature and self.signature.klass == "infra")

    def one_line(self) -> str:
        if self.line is None:
            return "no error line found"
        where = f"{self.line.source}:{self.line.number}"
        text = self.line.text.strip()[:240]
        if self.signature is None:
            return f"unknown failure; first error at {where}: {text}"
        s = self.signature
        tail = f" (then: {', '.join(self.symptoms)})" if self.symptoms else ""
        return f"{s.name} [{s.layer}] at {where}: {text} -- cause: {s.cause} fix: {s.fix}{tail}"

    def to_json(self) -> dict[str, Any]:
        s = self.signature
        return {"signature": self.name, "layer": s.layer if s else None, "class": s.klass if s else None,
                "cause": s.cause if s else None, "fix": s.fix if s else None, "reference": s.reference if s else None,
                "where": f"{self.line.source}:{self.line.number}" if self.line else None,
                "line": self.line.text if self.line else None, "context": list(self.context),
                "symptoms": list(self.symptoms)}


def parse(doc: Any, path: str) -> list[Signature]:
    if not isinstance(doc, dict) or doc.get("schema") != 1 or not isinstance(doc.get("signatures"), list):
        raise ScenarioError(f"{path}: expected schema: 1 and a list under signatures")
    out, names = [], set()
    for i, entry in enumerate(doc["signatures"]):
        at = yamlfile.where(path, entry)
        if not isinstance(entry, dict):
            raise ScenarioError(f"{at}: signatures[{i}]: expected a mapping")
        for key in entry:
            if key not in _KEYS:
                raise ScenarioError(f"{yamlfile.where(path, entry, key)}: signatures[{i}].{key}: unknown key; valid: {', '.join(sorted(_KEYS))}")
        missing = sorted(_REQUIRED - set(entry))
        if missing:
            raise ScenarioError(f"{at}: signatures[{i}]: missing key {missing[0]!r}")
        if entry["layer"] not in LAYERS or entry["class"] not in CLASSES:
            raise ScenarioError(f"{at}: signatures[{i}]: layer must be one of {', '.join(LAYERS)}; class product or infra")
        if entry["name"] in names:
            raise ScenarioError(f"{at}: signatures[{i}].name: duplicate {entry['name']!r}")
        names.add(entry["name"])
        try:
            regex = re.compile(str(entry["regex"]))
        except re.error as exc:
            raise ScenarioError(f"{yamlfile.where(path, entry, 'regex')}: signatures[{i}].regex: {exc}") from None
        out.append(Signature(str(entry["name"]), regex, entry["layer"], entry["class"], bool(entry.get("symptom", False)),
                             str(entry["cause"]), str(entry["fix"]), str(entry["reference"]), str(entry["example"])))
    return out


def load(path: str | Path = CATALOG) -> list[Signature]:
    return parse(yamlfile.load(path), str(path))


def stamp(text: str) -> float | None:
    """Seconds since the epoch of a `YYYY-MM-DD HH:MM:SS[.fff]` stamp in a line, if any."""
    m = _STAMP.search(text)
    if not m:
        return None
    try:
        base = datetime.strptime(f"{m.group(1)} {m.group(2)}", "%Y-%m-%d %H:%M:%S").timestamp()
    except ValueError:
        return None
    return base + (float(f"0.{m.group(3)}") if m.group(3) else 0.0)


def _order_key(line: LogLine, index: int) -> tuple[float, int]:
    t = line.t if line.t is not None else stamp(line.text)
    return (t if t is not None else float("inf"), index)


def match_line(signatures: list[Signature], lines: list[LogLine], i: int) -> Signature | None:
    """The first catalog entry matching a match that starts in lines[i] (the window may wrap onto later lines)."""
    line = lines[i]
    window = [line.text]
    for nxt in lines[i + 1: i + WINDOW]:
        if nxt.source != line.source:
            break
        window.append(nxt.text.strip())
    joined = " ".join(window)
    for sig in signatures:
        m = sig.regex.search(joined)
        if m and m.start() < len(line.text):
            return sig
    return None


def diagnose(lines: list[LogLine], signatures: list[Signature] | None = None) -> Diagnosis:
    """The earliest causal error in all logs; a symptom only when nothing causal is found."""
    signatures = load() if signatures is None else signatures
    matches: list[tuple[tuple[float, int], LogLine, Signature]] = []
    for i, line in enumerate(lines):
        sig = match_line(signatures, lines, i)
        if sig is not None:
            matches.append((_order_key(line, i), line, sig))
    causal = sorted((m for m in matches if not m[2].symptom), key=lambda m: m[0])
    symptoms = sorted((m for m in matches if m[2].symptom), key=lambda m: m[0])
    if causal:
        key, line, sig = causal[0]
        later = tuple(dict.fromkeys(s.name for k, _, s in symptoms if k >= key))
        return Diagnosis(sig, line, tuple(milestones.context(lines, line)), later)
    if symptoms:
        key, line, sig = symptoms[0]
        symptom_lines = {(ln.source, ln.number) for _, ln, _ in symptoms}
        earlier = [ln for i, ln in enumerate(lines) if (ln.source, ln.number) not in symptom_lines
                   and milestones.ERROR_LINE.search(ln.text) and _order_key(ln, i)[0] <= key[0]]
        if earlier:   # an unknown error before the symptom is the better lead
            first = min(earlier, key=lambda ln: ln.t if ln.t is not None else float("inf"))
            return Diagnosis(None, first, tuple(milestones.context(lines, first)), (sig.name,))
        return Diagnosis(sig, line, tuple(milestones.context(lines, line)), ())
    first = milestones.first_error(lines)
    return Diagnosis(None, first, tuple(milestones.context(lines, first)) if first else (), ())


def diagnose_folder(folder: str | Path, signatures: list[Signature] | None = None) -> Diagnosis:
    """Triage any folder of logs (a framework's own included)."""
    return diagnose(milestones.read_log_dir(folder), signatures)
