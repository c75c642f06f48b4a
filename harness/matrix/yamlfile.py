"""YAML loading that remembers where each key stood, so errors can name file, line and key.

- Owns: `load(path)` -> plain dicts/lists whose mappings are `Located` (a dict with `.line_of(key)`).
- Does not own: validation of any schema; scenario.py, models.py and triage.py do that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.errors import ScenarioError


class Located(dict):
    """A mapping read from YAML that knows the line of each key (1-based) and of itself."""

    line: int = 0
    key_lines: dict[str, int]
    raw: dict[str, str]  # key -> source text of a plain (unquoted) value YAML did not read as a string

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


MAX_DEPTH = 32  # nesting deeper than any matrix needs
MAX_ALIASES = 100  # `*alias` uses
MAX_NODES = 200_000  # nodes of the document with every alias expanded, wherever the aliases sit ("billion laughs")
MAX_BYTES = 4 * 2**20


class LocatedList(list):
    """A sequence read from YAML that remembers the source text of its plain (unquoted) non-string scalars."""

    raw: dict[int, str]


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings keep their keys' lines, with bounded nesting and alias use."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.aliases = 0
        self.sizes: dict[int, int] = {}  # id(node) -> its node count with aliases expanded

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise yaml.composer.ComposerError(None, None, f"more than {MAX_ALIASES} aliases", mark)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if id(node) not in self.sizes:  # an alias returns its anchor's node, counted again where it is used
            children = (
                [n for pair in node.value for n in pair]
                if isinstance(node, yaml.MappingNode)
                else node.value
                if isinstance(node, yaml.SequenceNode)
                else []
            )
            self.sizes[id(node)] = 1 + sum(self.sizes.get(id(c), 1) for c in children)
        if self.sizes[id(node)] > MAX_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"more than {MAX_NODES} values with its aliases expanded", mark
            )
        return node


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> Located:
    loader.flatten_mapping(node)
    out = Located()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    out.raw = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) or isinstance(key, bool):
            key = str(key)
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[str(key)] = key_node.start_mark.line + 1
        if _reread(value_node, out[key]):
            out.raw[str(key)] = value_node.value
    return out


def _reread(node: yaml.Node, value: Any) -> bool:
    """A plain scalar that YAML read as something other than its text (0.10 -> 0.1, 20:30 -> 1230, 0777 -> 511)."""
    return isinstance(node, yaml.ScalarNode) and node.style is None and not isinstance(value, str) and value is not None


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LocatedList:
    out = LocatedList(loader.construct_object(child, deep=True) for child in node.value)
    out.raw = {i: child.value for i, (child, v) in enumerate(zip(node.value, out)) if _reread(child, v)}
    return out


def reread(container: Any, key: Any) -> str | None:
    """The source text of `container[key]` when YAML read it, unquoted, as a non-string (None otherwise): for values
    that must reach a process or an id exactly as written (env values, versions)."""
    return getattr(container, "raw", {}).get(key)


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
# YAML 1.1 reads on/off/yes/no as booleans; that is what a matrix author means by `colocate: [on, off]`.


def load_text(text: str, where: str) -> Any:
    """Parse YAML text; a syntax error becomes a one-line ScenarioError naming `where` and the line."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ScenarioError(f"{where}{line}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{where}: invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ScenarioError(f"{where}: invalid YAML: nested too deeply") from None


def load(path: str | Path) -> Any:
    """Read and parse a YAML file; a missing or unreadable file is a one-line ScenarioError."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ScenarioError(f"{path}: larger than {MAX_BYTES // 2**20} MiB; not a matrix or models file")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return load_text(text, str(path))


def where(path: str | Path, mapping: Any, key: str | None = None) -> str:
    """`file:line` for a key of a Located mapping (or the mapping itself)."""
    if isinstance(mapping, Located):
        return f"{path}:{mapping.line_of(key) if key is not None else mapping.line}"
    return str(path)
