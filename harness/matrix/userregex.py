"""Regexes a user writes (milestone `log:` and `forbid:` rules), compiled by RE2: it matches in time linear in the
line whatever the pattern, so a pattern like `(a+)+b` cannot stall the judging of every log line of every process, and
it refuses, as a one-line error at load, what it cannot run that way (backreferences, lookaround, repeats past 1000).

- Owns: `compile` (a user pattern -> a compiled RE2 regex, or ValueError with one line).
- Does not own: the harness's own patterns (judge/logs.py, signatures.yaml: written here and tested, Python's `re`).
"""

from __future__ import annotations

from functools import lru_cache

import re2

MAX_PATTERN = 2000  # characters: a rule is a line to look for, not a program
MAX_MEMORY = 8 << 20  # RE2's budget for one compiled pattern


@lru_cache(maxsize=1024)
def compile(pattern: str):  # noqa: A001 - the module's one verb, as re.compile
    """RE2's compiled `pattern`; ValueError("...") naming what RE2 refused."""
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"longer than {MAX_PATTERN} characters")
    options = re2.Options()
    options.log_errors = False
    options.max_mem = MAX_MEMORY
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(
            f"not a regex RE2 can run in linear time ({detail}); no backreferences or lookaround"
        ) from None
