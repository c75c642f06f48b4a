"""The result of one scenario run: `ScenarioResult`, its JSON form (result.json, `schema: 1`) and a checked load.

- Owns: the record every report, the history and the CLI read, and refusing a result file it cannot trust.
- Does not own: deciding the verdict (verdict.fold) or rendering it (report/).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness import files
from harness.errors import ColobenchError
from harness.judge.verdict import Verdict

RESULT_SCHEMA = 1


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
    attempts: list[dict[str, Any]] = field(default_factory=list)  # earlier attempts (infra retries)
    properties: dict[str, str] = field(default_factory=dict)  # versions, devices, axes ...
    context: dict[str, Any] = field(default_factory=dict)  # launch context the runner reported
    error_lines: list[str] = field(default_factory=list)
    repetitions: list[dict[str, list[float]]] = field(default_factory=list)  # each run's samples when repeat > 1
    timings: dict[str, float] = field(default_factory=dict)  # engine start, first step, total (seconds)
    cv: dict[str, float] = field(default_factory=dict)  # sample-level coefficient of variation per metric

    def runs(self) -> list[dict[str, list[float]]]:
        """Metric samples of each run behind this result (one run unless it was repeated)."""
        return self.repetitions or [self.metrics]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdict"] = self.verdict.value
        out["schema"] = RESULT_SCHEMA
        return out

    @classmethod
    def from_json(cls, data: Any) -> "ScenarioResult":
        """A result from its JSON form; ValueError naming the first thing wrong with it."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("schema") != RESULT_SCHEMA:
            raise ValueError(f"schema {data.get('schema')!r}, expected {RESULT_SCHEMA} (written by another colobench)")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"schema"})
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}")
        for key in ("scenario_id", "verdict", "reason"):
            if not isinstance(data.get(key), str):
                raise ValueError(f"{key}: expected a string")
        for key, kind in (
            ("metrics", dict),
            ("gates", list),
            ("milestones", list),
            ("attempts", list),
            ("properties", dict),
            ("context", dict),
            ("error_lines", list),
            ("repetitions", list),
            ("timings", dict),
            ("cv", dict),
        ):
            if key in data and not isinstance(data[key], kind):
                raise ValueError(f"{key}: expected a {kind.__name__}")
        args = {k: v for k, v in data.items() if k != "schema"}
        args["verdict"] = Verdict(data["verdict"])
        return cls(**args)

    @classmethod
    def load(cls, path: Path) -> "ScenarioResult":
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise ColobenchError(f"{path}: unreadable result ({exc}); re-run the scenario") from None

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True, mode=0o750)
        return files.write_text(folder / "result.json", json.dumps(self.to_json(), indent=1, default=str))
