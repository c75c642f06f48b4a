"""Verdicts, exit codes, and the result of one scenario run.

- Owns: the closed vocabulary (pass | regressed | inconclusive | infra-error | skipped), how verdicts combine,
  the exit codes of `colobench run` (and the git-bisect mapping), and `ScenarioResult` with its JSON form.
- Does not own: deciding a verdict (execute.py) or rendering it (junit.py, report.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any


class Verdict(str, Enum):
    PASS = "pass"
    REGRESSED = "regressed"
    INCONCLUSIVE = "inconclusive"
    INFRA_ERROR = "infra-error"
    SKIPPED = "skipped"


# worst first: the run's verdict is the worst of its scenarios'
SEVERITY = [Verdict.REGRESSED, Verdict.INFRA_ERROR, Verdict.INCONCLUSIVE, Verdict.PASS, Verdict.SKIPPED]
EXIT_CODES = {Verdict.PASS: 0, Verdict.SKIPPED: 0, Verdict.REGRESSED: 1, Verdict.INCONCLUSIVE: 0, Verdict.INFRA_ERROR: 1}
BISECT_EXIT_CODES = {Verdict.PASS: 0, Verdict.SKIPPED: 125, Verdict.REGRESSED: 1, Verdict.INCONCLUSIVE: 125,
                     Verdict.INFRA_ERROR: 125}
RESULT_SCHEMA = 1


def worst(verdicts: list[Verdict]) -> Verdict:
    if not verdicts:
        return Verdict.SKIPPED
    return min(verdicts, key=SEVERITY.index)


@dataclass
class ScenarioResult:
    scenario_id: str
    verdict: Verdict
    reason: str
    duration_s: float = 0.0
    run_dir: str = ""
    metrics: dict[str, list[float]] = field(default_factory=dict)
    gates: list[dict[str, Any]] = field(default_factory=list)
    milestones: list[dict[str, Any]] = field(default_factory=list)
    diagnosis: dict[str, Any] | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)   # earlier attempts (infra retries)
    properties: dict[str, str] = field(default_factory=dict)       # versions, devices, axes ...
    context: dict[str, Any] = field(default_factory=dict)          # launch context the runner reported
    error_lines: list[str] = field(default_factory=list)
    repetitions: list[dict[str, list[float]]] = field(default_factory=list)  # each run's samples when repeat > 1

    def runs(self) -> list[dict[str, list[float]]]:
        """Metric samples of each run behind this result (one run unless it was repeated)."""
        return self.repetitions or [self.metrics]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdict"] = self.verdict.value
        out["schema"] = RESULT_SCHEMA
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ScenarioResult":
        data = {k: v for k, v in data.items() if k != "schema"}
        data["verdict"] = Verdict(data["verdict"])
        return cls(**data)

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True, mode=0o750)
        path = folder / "result.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, default=str))
        tmp.replace(path)            # atomic: an interrupted write never leaves half a result
        return path
