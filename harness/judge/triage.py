"""Known failure signatures (signatures.yaml) -> the first causal error, its cause, fix, layer and class.

- Owns: loading the catalog and `diagnose(lines)`, the one code path behind `colobench run`'s reports and
  `colobench triage DIR`: every process's log lines in, the first *cause* out, in this order:
  1. the earliest line matching a causal signature (a specific one, or a generic class: missing module, CUDA OOM,
     NCCL system error, segfault, ...); inside a traceback the exception line, with the innermost frames as context;
  2. else, when only symptoms matched (`Server process terminated unexpectedly`, EngineDied, a Gloo timeout,
     RayTaskError, ...): the earliest unmatched exception of another process (the engine's own error before the
     runner's symptom), reported by its exception line and class, the symptoms listed under it;
  3. else the earliest unmatched exception, or the first error-looking line that is not part of a traceback.
  A line matching a `benign: true` entry (one that only looks like an error, e.g. sglang's "Ignore import error when
  loading ...") is never any of these, whatever it quotes.
- Does not own: reading tracebacks (logs.py), the run folder (run/launch.py) or verdicts (verdict.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.errors import ScenarioError
from harness.judge import logs
from harness.judge.logs import LogLine, Raised
from harness.matrix import yamlfile

CATALOG = Path(__file__).resolve().parent / "signatures.yaml"
LAYERS = ("sglang", "nccl", "ray", "memory-saver", "trainer", "process", "harness", "infra")
CLASSES = ("product", "infra")
_KEYS = {"name", "regex", "layer", "class", "symptom", "benign", "cause", "fix", "reference", "example"}
_REQUIRED = _KEYS - {"symptom", "benign"}
_REQUIRED_BENIGN = _REQUIRED - {"class", "fix"}
_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,6}))?")
WINDOW = 3  # a match may start in a line and run over the next two (stack traces wrap)


@dataclass(frozen=True)
class Signature:
    name: str
    regex: re.Pattern
    layer: str
    klass: str
    symptom: bool
    benign: bool  # a line that only looks like an error (sglang says it ignored it): never a cause
    cause: str
    fix: str
    reference: str
    example: str


@dataclass(frozen=True)
class Diagnosis:
    signature: Signature | None
    line: LogLine | None
    context: tuple[str, ...]
    symptoms: tuple[str, ...]  # later symptom signatures seen, e.g. ("gloo-timeout",)
    raised: Raised | None = None  # the exception (chain) the line ends, when it ends one

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
        text = logs.strip_prefix(self.line.text).strip()[:240]
        tail = f" (then: {', '.join(self.symptoms)})" if self.symptoms else ""
        if self.signature is None:
            what = f"{self.raised.exc_class} " if self.raised else ""
            return f"unknown {what}failure at {where}: {text}{tail}"
        s = self.signature
        head = f"{s.name} [{s.layer}, {s.klass}] in {self.line.source} at {where}: {text}"
        return f"{head} -- cause: {s.cause} fix: {s.fix}{tail}"

    def to_json(self) -> dict[str, Any]:
        s = self.signature
        return {
            "signature": self.name,
            "layer": s.layer if s else None,
            "class": s.klass if s else None,
            "cause": s.cause if s else None,
            "fix": s.fix if s else None,
            "reference": s.reference if s else None,
            "where": f"{self.line.source}:{self.line.number}" if self.line else None,
            "process": self.line.source if self.line else None,
            "line": self.line.text if self.line else None,
            "exception": self.raised.exc_class if self.raised else None,
            "chain": list(self.raised.chain) if self.raised else [],
            "context": list(self.context),
            "symptoms": list(self.symptoms),
        }


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
                raise ScenarioError(
                    f"{yamlfile.where(path, entry, key)}: signatures[{i}].{key}: unknown key; "
                    f"valid: {', '.join(sorted(_KEYS))}"
                )
        benign = entry.get("benign", False)
        missing = sorted((_REQUIRED_BENIGN if benign else _REQUIRED) - set(entry))
        if missing:
            raise ScenarioError(f"{at}: signatures[{i}]: missing key {missing[0]!r}")
        if not isinstance(benign, bool) or (benign and entry.get("symptom")):
            raise ScenarioError(
                f"{yamlfile.where(path, entry, 'benign')}: signatures[{i}].benign: true or false, "
                "and a benign line is no symptom"
            )
        if entry["layer"] not in LAYERS or entry.get("class", "infra") not in CLASSES:
            raise ScenarioError(
                f"{at}: signatures[{i}]: layer must be one of {', '.join(LAYERS)}; class product or infra"
            )
        if entry["name"] in names:
            raise ScenarioError(f"{at}: signatures[{i}].name: duplicate {entry['name']!r}")
        names.add(entry["name"])
        try:
            regex = re.compile(str(entry["regex"]))
        except re.error as exc:
            raise ScenarioError(f"{yamlfile.where(path, entry, 'regex')}: signatures[{i}].regex: {exc}") from None
        out.append(
            Signature(
                str(entry["name"]),
                regex,
                entry["layer"],
                entry.get("class", ""),
                bool(entry.get("symptom", False)),
                benign,
                str(entry["cause"]),
                str(entry.get("fix", "")),
                str(entry["reference"]),
                str(entry["example"]),
            )
        )
    return sorted(
        out, key=lambda sig: not sig.benign
    )  # benign first: what sglang ignored is no cause, whatever it quotes


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
    for nxt in lines[i + 1 : i + WINDOW]:
        if nxt.source != line.source:
            break
        window.append(nxt.text.strip())
    joined = " ".join(window)
    for sig in signatures:
        m = sig.regex.search(joined)
        if m and m.start() < len(line.text):
            return sig
    return None


def _context(lines: list[LogLine], line: LogLine, raised: Raised | None) -> tuple[str, ...]:
    """The innermost frames and the exception line of a traceback; the lines around any other line."""
    if raised is None:
        return tuple(logs.context(lines, line))
    return (
        tuple(f"{line.source}| {f}" for f in raised.frames)
        + (f"{line.source}:{line.number}> {line.text.rstrip()}",)
        + tuple(f"{line.source}| caused: {c}" for c in raised.chain[1:])
    )


def without_benign(lines: list[LogLine], signatures: list[Signature] | None = None) -> list[LogLine]:
    """`lines` less those matching a `benign: true` entry (for a failed milestone's "first error line")."""
    benign = [s for s in (load() if signatures is None else signatures) if s.benign]
    return [ln for i, ln in enumerate(lines) if match_line(benign, lines, i) is None]


def diagnose(lines: list[LogLine], signatures: list[Signature] | None = None) -> Diagnosis:
    """The first cause in all logs (see the module docstring for the order)."""
    signatures = load() if signatures is None else signatures
    raised = logs.tracebacks(lines)
    index = {(ln.source, ln.number): i for i, ln in enumerate(lines)}
    exc_at = {(r.line.source, r.line.number): r for r in raised}
    in_block = {(r.line.source, n) for r in raised for n in r.block}
    causal, symptoms, quiet = [], [], set()
    for i, line in enumerate(lines):
        sig = match_line(signatures, lines, i)
        if sig is not None and sig.benign:
            quiet.add((line.source, line.number))
        elif sig is not None:
            (symptoms if sig.symptom else causal).append((_order_key(line, i), line, sig))
    causal.sort(key=lambda m: m[0])
    symptoms.sort(key=lambda m: m[0])
    if causal:
        key, line, sig = causal[0]
        later = tuple(dict.fromkeys(s.name for k, _, s in symptoms if k >= key or k[0] == float("inf")))
        found = next((r for r in raised if r.line.source == line.source and line.number in r.block), None)
        return Diagnosis(sig, line, _context(lines, line, found), later, found)
    symptom_at = {(ln.source, ln.number) for _, ln, _ in symptoms}
    unknown = sorted(
        (
            (_order_key(r.line, index[(r.line.source, r.line.number)]), r.line, r)
            for r in raised
            if (r.line.source, r.line.number) not in symptom_at
        ),
        key=lambda m: m[0],
    )
    if not unknown:
        unknown = [
            (_order_key(ln, i), ln, None)
            for i, ln in enumerate(lines)
            if logs.ERROR_LINE.search(ln.text) and (ln.source, ln.number) not in symptom_at | in_block | quiet
        ]
    if symptoms:
        sources = {ln.source for _, ln, _ in symptoms}

        def wraps_symptom(found: Raised | None) -> bool:  # e.g. Ray's RayTaskError line inside the block
            return found is not None and any(
                ln.source == found.line.source and ln.number in found.block for _, ln, _ in symptoms
            )

        elsewhere = [u for u in unknown if u[1].source not in sources] or [
            u for u in unknown if u[0] <= symptoms[0][0] or wraps_symptom(u[2])
        ]
        if elsewhere:  # the engine's own error before the runner's symptom
            _, line, found = elsewhere[0]
            return Diagnosis(
                None, line, _context(lines, line, found), tuple(dict.fromkeys(s.name for _, _, s in symptoms)), found
            )
        _, line, sig = symptoms[0]
        return Diagnosis(
            sig,
            line,
            _context(lines, line, exc_at.get((line.source, line.number))),
            (),
            exc_at.get((line.source, line.number)),
        )
    if unknown:
        _, line, found = unknown[0]
        return Diagnosis(None, line, _context(lines, line, found), (), found)
    return Diagnosis(None, None, (), ())


def diagnose_folder(folder: str | Path, signatures: list[Signature] | None = None) -> Diagnosis:
    """Triage any folder of logs (a framework's own included)."""
    return diagnose(logs.read_log_dir(folder), signatures)
