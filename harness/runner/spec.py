"""What the harness hands the runner (scenario.json), as frozen dataclasses: a run's axes and the settings the runner
acts on, typed once at the boundary. stdlib only, so both sides use it: the harness writes the document
(matrix/scenario.Scenario.to_json) and reads it back through `RunSpec.from_json` in its tests (every built-in row
round-trips); the runner reads nothing else.

- Owns: the fields and their defaults on the runner's side, and refusing a document that lacks one.
- Does not own: validating what a field may hold (matrix/ did that at load) or the harness-only settings
  (milestones, metrics, expect, runner, ...), which the runner never reads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Axes:
    model: str
    tp: int
    ep: int
    cp: int
    colocate: bool
    custom_all_reduce: str
    cvd_offset: int
    launch: str
    trainer: str
    engine: str
    sglang: str | None


@dataclass(frozen=True)
class Batch:
    prompts: int
    prompt_len: int
    max_new_tokens: int


@dataclass(frozen=True)
class Settings:
    steps: int
    timeout_s: float
    batch: Batch
    weights_check: str = "auto"
    weights_check_every: int = 1
    sync_repeats: int = 1
    nodes: str = "one"
    fault: dict | None = None
    engine_args: dict[str, Any] = field(default_factory=dict)

    def arg(self, name: str, default: Any) -> Any:
        """An engine argument (engine_args), or `default`."""
        return self.engine_args.get(name, default)


@dataclass(frozen=True)
class RunSpec:
    id: str
    axes: Axes
    settings: Settings
    model: dict[str, Any]
    engine_gpus: int
    trainer_gpus: int
    run_dir: str | None = None
    ray_address: str | None = None

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RunSpec:
        """The runner's view of scenario.json; a missing field is a KeyError naming it."""
        raw = doc["settings"]
        known = {f.name for f in dataclasses.fields(Settings)} - {"batch"}
        settings = Settings(
            batch=Batch(**raw["batch"]),
            **{k: v for k, v in raw.items() if k in known and v is not None or k == "fault"},
        )
        axes = Axes(**{f.name: doc["axes"][f.name] for f in dataclasses.fields(Axes)})
        runtime = doc.get("runtime") or {}
        return cls(
            doc["id"],
            axes,
            settings,
            doc["model"],
            int(doc["engine_gpus"]),
            int(doc["trainer_gpus"]),
            runtime.get("run_dir"),
            runtime.get("ray_address"),
        )
