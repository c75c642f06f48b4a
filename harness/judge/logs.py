"""Log lines of every process of a run: the record, error-looking lines, context around a line, foreign log folders.

- Owns: `LogLine`, `ERROR_LINE`, `first_error`, `context`, `read_log_dir`, and reading Python tracebacks the way
  an engineer does (`tracebacks`): a block's cause is its final exception line, not its header; chained exceptions
  ("The above exception was the direct cause of ..." / "During handling of ...") resolve to the first (root) one
  with the chain kept; Ray's wrappers (`RayTaskError(X): ray::Actor.method()`), Ray's `(Actor pid=N)` and
  `(raylet)` prefixes and sglang's `[... TP0]` / `Scheduler hit an exception:` prefixes are unwrapped.
- Does not own: naming a cause (triage.py) or capturing logs live (run/launch.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ERROR_LINE = re.compile(r"(?i)(error\b|exception|traceback|\bfatal\b|\bfailed:|terminated unexpectedly|timed out)")
# a process's prefix before the text: [2026-05-22 10:00:00 TP0] (bracketed), (SGLangEngine pid=12) and (raylet) (Ray)
# per-process line prefixes: sglang's "[2026-12-01 10:00:00 TP0] ", torchrun's "[rank2]: ", Ray's "(pid=12) ",
# "(TrainerActor pid=12, ip=10.0.0.2) ", "(raylet) "
PREFIX = re.compile(r"^(?:\s*(?:\[[^\]\n]{0,120}\]|\((?:raylet|[\w.]*\s*pid=\d+[^)]{0,80})\)):? ?)+")
HANDOFF = re.compile(
    r"^\s*(?:Scheduler|Detokenizer|TokenizerManager|TpModelWorker\w*|DataParallelController|"
    r"\w+ process) hit an exception:\s*"
)
TB_HEADER = "Traceback (most recent call last):"
CHAINED = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)
RAY_WRAPPER = re.compile(r"^(?:ray\.exceptions\.)?Ray\w*Error\(([\w.]+)\)")
EXC_CLASS = re.compile(r"^([A-Za-z_][\w.]*)(?:\([\w.]+\))?(?::|$)")
MAX_BLOCK = 400  # lines in one traceback


@dataclass(frozen=True)
class LogLine:
    source: str  # log file stem: runner, engine-0, trainer-0, ...
    number: int  # 1-based line number in that file
    text: str
    t: float | None  # seconds since the run started, when known


def first_error(lines: list[LogLine]) -> LogLine | None:
    """The earliest line (by time, then file order) that looks like an error."""
    candidates = [ln for ln in lines if ERROR_LINE.search(ln.text)]
    if not candidates:
        return None
    return min(candidates, key=lambda ln: ln.t if ln.t is not None else float("inf"))


def context(lines: list[LogLine], line: LogLine, radius: int = 5) -> list[str]:
    """The lines of `line`'s file around it, formatted `source:n| text`."""
    same = [ln for ln in lines if ln.source == line.source]
    idx = next(i for i, ln in enumerate(same) if ln.number == line.number)
    window = same[max(0, idx - radius) : idx + radius + 1]
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


def strip_prefix(text: str) -> str:
    """The text a process printed, without Ray's or sglang's line prefixes (indentation kept)."""
    return HANDOFF.sub("", PREFIX.sub("", text.rstrip("\n"), count=1), count=1)


@dataclass(frozen=True)
class Raised:
    """One exception (chain) in a log: the root cause's exception line, its class, innermost frames, the chain."""

    line: LogLine  # the exception line of the root cause (never the "Traceback" header)
    exc_class: str
    frames: tuple[str, ...]  # the innermost frame(s) of the root's traceback, as printed
    chain: tuple[str, ...]  # every exception line of the chain, root first
    block: tuple[int, ...]  # line numbers (in line.source) of every line of the chain's tracebacks


def _block(lines: list[LogLine], start: int) -> tuple[int, LogLine | None, str, list[str]]:
    """Read one traceback from lines[start] (just after its header): (next index, exception line, class, frames)."""
    frames: list[str] = []
    i, wrapped = start, ""
    while i < len(lines) and i - start < MAX_BLOCK:
        text = strip_prefix(lines[i].text)
        body = text.strip()
        if not body or text[:1].isspace() or body.startswith(('File "', "ray::", "^", "~")):
            if body.startswith('File "'):
                frames.append(body)
            i += 1
            continue
        ray = RAY_WRAPPER.match(body)
        if ray:  # Ray's wrapper: the real exception comes after the remote frames
            wrapped = ray.group(1)
            i += 1
            continue
        m = EXC_CLASS.match(body)
        return i + 1, lines[i], (m.group(1) if m else wrapped or "?"), frames[-2:]
    return i, None, wrapped, frames[-2:]


def tracebacks(lines: list[LogLine]) -> list[Raised]:
    """Every exception chain in the logs, each resolved to its root cause (the first exception of the chain)."""
    out: list[Raised] = []
    by_source: dict[str, list[LogLine]] = {}
    for ln in lines:
        by_source.setdefault(ln.source, []).append(ln)
    for same in by_source.values():
        i = 0
        chain: list[tuple[LogLine, str, list[str]]] = []
        numbers: list[int] = []
        while i < len(same):
            if not strip_prefix(same[i].text).strip().endswith(TB_HEADER):
                i += 1
                continue
            first = i
            i, exc, cls, frames = _block(same, i + 1)
            numbers += [ln.number for ln in same[first:i]]
            if exc is not None:
                chain.append((exc, cls, frames))
            j = i
            while j < len(same) and not strip_prefix(same[j].text).strip():
                j += 1
            if j < len(same) and strip_prefix(same[j].text).strip() in CHAINED:
                numbers += [ln.number for ln in same[i : j + 1]]
                i = j + 1
                continue
            if chain:
                root, cls, frames = chain[0]
                out.append(
                    Raised(
                        root, cls, tuple(frames), tuple(strip_prefix(c[0].text).strip() for c in chain), tuple(numbers)
                    )
                )
            chain, numbers = [], []
    return out
