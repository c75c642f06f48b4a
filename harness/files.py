"""Files colobench writes whole: written beside the target, then renamed over it, so a reader (or an interrupted run)
never sees half a file. The one atomic write, used for result.json, junit.xml and summary.md."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A temporary path to write; renamed onto `path` when the block ends without an error."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> Path:
    with atomic(path) as tmp:
        tmp.write_text(text)
    return path
