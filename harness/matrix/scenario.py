"""Matrix YAML -> validated, expanded `Scenario` objects with stable, readable ids.

- Owns: the matrix file's shape (`schema: 1`), the one cartesian product (`expand`), include/exclude/overrides,
  dropping the rows that cannot run (and refusing such a row asked for by name), one id per row.
- Does not own: what an axis or setting may hold, ids and device counts (axes.py, schema.py), what a row means
  (meaning.py), milestone and gate syntax (rules.py), running.

A matrix file:

    schema: 1
    defaults: {engine: reference, steps: 2, timeout_s: 300}     # axis values and settings for every row
    axes: {model: [tiny-llama, tiny-moe], colocate: [on, off]}  # cartesian product
    include: [{model: tiny-llama, colocate: on, tag: fault-skip, fault: {kind: skip_tensor}}]
    exclude: [{model: tiny-moe, colocate: off}]
    overrides:
      - {match: {tp: 2, custom_all_reduce: v2}, set: {expect: {fail: custom-allreduce-capture-invalid-argument}}}
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from harness.errors import ScenarioError
from harness.matrix import axes as axes_mod
from harness.matrix import defaults, meaning, yamlfile
from harness.matrix import models as models_mod
from harness.matrix.axes import AXES, device_counts, impossible, scenario_id, scenario_identity
from harness.matrix.schema import CHECKS, Settings, default_settings

SCHEMA = 1
TOP_KEYS = ("schema", "name", "description", "defaults", "axes", "include", "exclude", "overrides")


@dataclass(frozen=True)
class Scenario:
    """One expanded, validated row of a matrix."""

    id: str
    axes: dict[str, Any]
    settings: Settings
    model: models_mod.Model
    gpus: int
    source: str
    engine_gpus: int = 1
    trainer_gpus: int = 1
    matrix: str = ""  # the matrix's `name` (its file stem when unnamed): -k matches it
    identity: str = ""  # scenario_identity of its axes and tag: the history's key

    @property
    def needs_gpu(self) -> bool:
        return self.axes["engine"] == "sglang"  # the trainer runs where the engine does

    @property
    def gpus_to_lease(self) -> int:
        return self.gpus if self.needs_gpu else 0

    @property
    def expected_signature(self) -> str | None:
        expect = self.settings.expect
        return expect["fail"] if isinstance(expect, dict) else None

    @property
    def markers(self) -> tuple[str, ...]:
        base = ["gpu" if self.needs_gpu else "cpu", "colocate" if self.axes["colocate"] else "split"]
        if self.settings.fault:
            base.append("fault")
        return tuple(base + list(self.settings.markers))

    def to_json(self) -> dict[str, Any]:
        """What scenario.json holds: everything the runner needs, nothing it must look up."""
        return {
            "schema": SCHEMA,
            "id": self.id,
            "source": self.source,
            "axes": dict(self.axes),
            "settings": self.settings.to_json(),
            "model": self.model.to_json(),
            "gpus": self.gpus,
            "engine_gpus": self.engine_gpus,
            "trainer_gpus": self.trainer_gpus,
            "matrix": self.matrix,
        }


@dataclass(frozen=True)
class Dropped:
    """A combination the product made but that cannot run, and why."""

    id: str
    reason: str
    source: str


@dataclass
class Matrix:
    scenarios: list[Scenario] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)


MAX_ROWS = 5000  # a product larger than this is refused before it is built


class _Parser:
    """Validation of one matrix document; every error names file, line and key."""

    def __init__(self, path: str, known_models: dict[str, models_mod.Model]) -> None:
        self.path = path
        self.models = known_models

    def fail(self, node: Any, key: str | None, msg: str) -> NoReturn:
        raise ScenarioError(f"{yamlfile.where(self.path, node, key)}: {msg}")

    def mapping(self, node: Any, key: str, value: Any) -> dict:
        if not isinstance(value, dict):
            self.fail(node, key, f"{key}: expected a mapping, got {type(value).__name__}")
        return value

    def row(self, node: dict, label: str, allow_settings: bool = True, allow_axes: bool = True) -> dict[str, Any]:
        """Check a mapping of axis values and/or settings; returns canonical values."""
        out: dict[str, Any] = {}
        for key, value in node.items():
            if allow_axes and key in AXES:
                try:
                    out[key] = AXES[key].coerce(value)
                except ValueError as exc:
                    self.fail(node, key, f"{label}.{key}: {exc}")
                if key == "model" and out[key] not in self.models:
                    self.fail(
                        node, key, f"{label}.model: unknown model {value!r}; known: {', '.join(sorted(self.models))}"
                    )
            elif allow_settings and key in CHECKS:
                problem = CHECKS[key](value)
                if problem:
                    self.fail(node, key, f"{label}.{key}: {problem}")
                out[key] = value
            else:
                valid = sorted((set(AXES) if allow_axes else set()) | (set(CHECKS) if allow_settings else set()))
                self.fail(node, key, f"{label}.{key}: unknown key; valid: {', '.join(valid)}")
        return out

    def axes(self, doc: dict) -> dict[str, list[Any]]:
        node = self.mapping(doc, "axes", doc.get("axes", {}))
        out: dict[str, list[Any]] = {}
        for key, values in node.items():
            if key not in AXES:
                self.fail(node, key, f"axes.{key}: unknown axis; valid: {', '.join(AXES)}")
            if not isinstance(values, list) or not values:
                self.fail(node, key, f"axes.{key}: expected a non-empty list of values")
            coerced = [self.row(_one(node, key, v), "axes", allow_settings=False)[key] for v in values]
            if len(set(map(repr, coerced))) != len(coerced):
                self.fail(node, key, f"axes.{key}: duplicate values")
            out[key] = coerced
        size = math.prod(len(v) for v in out.values())
        if size > MAX_ROWS:
            self.fail(doc, "axes", f"axes: the product has {size} rows, more than {MAX_ROWS}; split the matrix")
        return out


def _one(parent: Any, key: str, value: Any) -> yamlfile.Located:
    """A one-key Located mapping that reports the parent's line for `key`."""
    node = yamlfile.Located({key: value})
    node.line = parent.line_of(key) if isinstance(parent, yamlfile.Located) else 0
    node.key_lines = {key: node.line}
    return node


def _matches(axes: dict[str, Any], pattern: dict[str, Any]) -> bool:
    return all(axes.get(k) == v for k, v in pattern.items())


@dataclass
class _Doc:
    """A matrix document, validated section by section (`parse`)."""

    defaults: dict[str, Any]
    axes: dict[str, list[Any]]
    include: list[tuple[dict, dict]]  # (row, its YAML node)
    exclude: list[dict]
    overrides: list[tuple[dict, dict]]  # (match, set)


def parse(doc: Any, p: _Parser) -> _Doc:
    """Check the top level and each section; nothing is expanded yet."""
    if not isinstance(doc, dict):
        raise ScenarioError(f"{p.path}: expected a mapping with schema, axes, ...")
    for key in doc:
        if key not in TOP_KEYS:
            p.fail(doc, key, f"{key}: unknown key; valid: {', '.join(TOP_KEYS)}")
    schema = doc.get("schema")
    if type(schema) is not int or schema != SCHEMA:
        p.fail(doc, "schema", f"schema: expected {SCHEMA}, got {schema!r} (the integer)")
    for key in ("name", "description"):
        if key in doc and not (isinstance(doc[key], str) and doc[key]):
            p.fail(doc, key, f"{key}: expected a non-empty string, got {doc[key]!r}")
    if "name" in doc and not axes_mod.safe_name(doc["name"]):
        p.fail(doc, "name", f"name: expected letters, digits, '.', '_', '-', got {doc['name']!r}")
    defaults = p.row(p.mapping(doc, "defaults", doc.get("defaults", {})), "defaults")
    axes = p.axes(doc)
    sections = {k: doc.get(k, []) for k in ("include", "exclude", "overrides")}
    for key, value in sections.items():
        if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
            p.fail(doc, key, f"{key}: expected a list of mappings")
    if len(sections["include"]) > MAX_ROWS:
        p.fail(doc, "include", f"include: {len(sections['include'])} rows, more than {MAX_ROWS}")
    include = [(p.row(x, f"include[{i}]"), x) for i, x in enumerate(sections["include"])]
    exclude = [p.row(x, f"exclude[{i}]", allow_settings=False) for i, x in enumerate(sections["exclude"])]
    overrides = []
    for i, x in enumerate(sections["overrides"]):
        if set(x) != {"match", "set"}:
            p.fail(x, None, f"overrides[{i}]: expected exactly the keys match and set")
        overrides.append(
            (
                p.row(p.mapping(x, "match", x["match"]), f"overrides[{i}].match", allow_settings=False),
                p.row(p.mapping(x, "set", x["set"]), f"overrides[{i}].set", allow_axes=False),
            )
        )
    if not axes and not include:
        p.fail(doc, None, "no scenarios: give axes or include")
    return _Doc(defaults, axes, include, exclude, overrides)


def rows(d: _Doc, p: _Parser, doc: Any) -> list[tuple[dict[str, Any], dict[str, Any], Any]]:
    """(axes, settings, YAML node) of every row: the one cartesian product, then the includes, minus the excludes
    (an exclude that matches no row is refused: a typo would silently keep the rows it meant to drop)."""
    base_axes = {name: a.default for name, a in AXES.items()}
    base_axes.update({k: v for k, v in d.defaults.items() if k in AXES})
    base_settings = default_settings()
    base_settings.update({k: v for k, v in d.defaults.items() if k in CHECKS})
    names = list(d.axes)
    out = [
        ({**base_axes, **dict(zip(names, combo))}, dict(base_settings), None)
        for combo in (itertools.product(*(d.axes[n] for n in names)) if names else ())
    ]
    for inc, node in d.include:
        out.append(
            (
                {**base_axes, **{k: v for k, v in inc.items() if k in AXES}},
                {**base_settings, **{k: v for k, v in inc.items() if k in CHECKS}},
                node,
            )
        )
    for i, ex in enumerate(d.exclude):
        if not any(_matches(r[0], ex) for r in out):
            p.fail(doc, "exclude", f"exclude[{i}]: {dict(ex)} matches no row")
    return [r for r in out if not any(_matches(r[0], ex) for ex in d.exclude)]


def apply(row_list: list[tuple[dict, dict, Any]], d: _Doc, sglang: str | None, p: _Parser, doc: Any) -> None:
    """Overrides (in order) and the --sglang version, in place. An override that matches no row is refused."""
    for i, (match, _) in enumerate(d.overrides):
        if not any(_matches(row_axes, match) for row_axes, _, _ in row_list):
            p.fail(doc, "overrides", f"overrides[{i}].match: {dict(match)} matches no row")
    for row_axes, row_settings, _ in row_list:
        for match, settings in d.overrides:
            if _matches(row_axes, match):
                row_settings.update(settings)
        if sglang is not None and row_axes["engine"] == "sglang":
            row_axes["sglang"] = sglang


def _check_expectation(p: _Parser, node: Any, sid: str, settings: Settings) -> None:
    """`expect: {fail: X}` must name something that can fail: a signature, a gate or a milestone of this row."""
    expect = settings.expect
    if not isinstance(expect, dict):
        return
    rules, gates = defaults.rules_for(bool(settings.runner), settings.steps, settings.milestones, settings.metrics)
    known = (
        set(defaults.signature_names())
        | {f"gate:{g}" for g in gates}
        | {f"milestone:{r['name']}" for r in rules if "name" in r}
    )
    if expect["fail"] not in known:
        p.fail(
            node,
            "expect",
            f"{sid}: expect.fail: {expect['fail']!r} names no signature, gate or milestone of "
            f"this scenario (gate:<metric>, milestone:<name>, or a name from signatures.yaml)",
        )


def ids(row_list: list[tuple[dict, dict, Any]], p: _Parser, doc: Any, collapse: bool = False) -> Matrix:
    """Readable ids, impossible rows dropped with the reason, and two rows with one id refused (`collapse`: kept
    once, for rows that --sglang made alike)."""
    matrix = Matrix()
    seen: dict[str, Any] = {}
    for row_axes, row_dict, node in row_list:
        row_settings = Settings(**row_dict)
        if row_axes["model"] is None:
            p.fail(doc, "axes", "model: every scenario needs a model (in axes, defaults or include)")
        model = p.models[row_axes["model"]]
        sid = scenario_id(row_axes, row_settings.tag)
        if sid in seen:
            if collapse or (node is None and seen[sid] is None):
                continue
            first = (
                "the axes product"
                if seen[sid] is None
                else f"line {yamlfile.where(p.path, seen[sid]).rsplit(':', 1)[-1]}"
            )
            p.fail(
                node if node is not None else seen[sid],
                None,
                f"scenario {sid!r} is defined twice (also by {first}); give the include a tag",
            )
        seen[sid] = node
        _check_expectation(p, node if node is not None else doc, sid, row_settings)
        reason = impossible(row_axes, model, row_settings)
        if reason and node is not None and not collapse:
            p.fail(node, None, f"{sid}: this include row cannot run: {reason}")
        if reason:
            matrix.dropped.append(Dropped(sid, reason, p.path))
            continue
        wrong = meaning.problem(row_axes, row_settings, model)
        if wrong:
            p.fail(node if node is not None else doc, None, f"{sid}: {wrong}")
        engine, trainer, total = device_counts(row_axes, model)
        matrix.scenarios.append(
            Scenario(
                id=sid,
                axes=row_axes,
                settings=row_settings,
                model=model,
                gpus=row_settings.gpus or total,
                source=p.path,
                engine_gpus=engine,
                trainer_gpus=trainer,
                matrix=str(doc.get("name") or Path(p.path).stem),
                identity=scenario_identity(row_axes, row_settings.tag),
            )
        )
    return matrix


def expand(doc: Any, path: str, known_models: dict[str, models_mod.Model], sglang: str | None = None) -> Matrix:
    """Validate a parsed matrix document and expand it: parse -> rows -> apply -> ids.
    `sglang` replaces the version of sglang-engine rows."""
    p = _Parser(path, known_models)
    if sglang is not None:
        try:
            sglang = AXES["sglang"].coerce(sglang)
        except ValueError as exc:
            raise ScenarioError(f"--sglang: {exc}") from None
    d = parse(doc, p)
    row_list = rows(d, p, doc)
    apply(row_list, d, sglang, p, doc)
    return ids(row_list, p, doc, collapse=sglang is not None)


def load(
    path: str | Path, known_models: dict[str, models_mod.Model] | None = None, sglang: str | None = None
) -> Matrix:
    """Read and expand one matrix file."""
    known = known_models if known_models is not None else models_mod.load()
    return expand(yamlfile.load(path), str(path), known, sglang=sglang)


def load_many(
    paths: list[str | Path], known_models: dict[str, models_mod.Model] | None = None, sglang: str | None = None
) -> Matrix:
    """Expand several files; the same id in two files is an error naming both."""
    known = known_models if known_models is not None else models_mod.load()
    out = Matrix()
    origin: dict[str, str] = {}
    for path in paths:
        m = load(path, known, sglang)
        for s in m.scenarios:
            if s.id in origin:
                raise ScenarioError(f"{path}: scenario {s.id!r} is also defined in {origin[s.id]}; ids must be unique")
            origin[s.id] = str(path)
        out.scenarios += m.scenarios
        out.dropped += m.dropped
    return out


def matrix_files(target: str | Path) -> list[Path]:
    """A matrix file, or every *.yaml in a folder (sorted)."""
    target = Path(target)
    if target.is_dir():
        files = sorted(target.glob("*.yaml"))
        if not files:
            raise ScenarioError(f"{target}: no *.yaml matrix files")
        return files
    if not target.exists():
        raise ScenarioError(f"{target}: no such matrix file or folder")
    return [target]


def select(scenarios: list[Scenario], keyword: str | None) -> list[Scenario]:
    """Filter by a pytest-style -k expression over the id's dot-separated parts and markers."""
    if not keyword:
        return list(scenarios)
    from harness.matrix.keyword import matches

    return [s for s in scenarios if matches(keyword, s.id, s.markers + (s.matrix,))]
