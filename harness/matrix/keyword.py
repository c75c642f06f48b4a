"""pytest-style `-k` expressions for `colobench list/run -k`: and, or, not, parentheses, substrings.

- Owns: parsing and evaluating one expression against a scenario id and its markers.
- Does not own: pytest's own -k (the plugin leaves that to pytest).
"""

from __future__ import annotations

import re

from harness.errors import ColobenchError

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def _tokens(expr: str) -> list[str]:
    out, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            break
        out.append(m.group(1))
        pos = m.end()
    return out


def matches(expr: str, name: str, extra: tuple[str, ...] = ()) -> bool:
    """True if `expr` holds for `name`: a bare word matches as a case-insensitive substring of the name or equals a
    marker."""
    tokens = _tokens(expr)
    haystack = name.lower()
    markers = {m.lower() for m in extra}
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ColobenchError(f"-k {expr!r}: expression ends too early")
        pos += 1
        return tokens[pos - 1]

    def atom() -> bool:
        tok = take()
        if tok == "not":
            return not atom()
        if tok == "(":
            value = disjunction()
            if take() != ")":
                raise ColobenchError(f"-k {expr!r}: missing ')'")
            return value
        if tok in ("and", "or", ")"):
            raise ColobenchError(f"-k {expr!r}: unexpected {tok!r}")
        return tok.lower() in haystack or tok.lower() in markers

    def chain(op: str, operand) -> bool:
        value = operand()
        while peek() == op:
            take()
            right = operand()
            value = (value and right) if op == "and" else (value or right)
        return value

    def conjunction() -> bool:
        return chain("and", atom)

    def disjunction() -> bool:
        return chain("or", conjunction)

    if not tokens:
        return True
    result = disjunction()
    if pos != len(tokens):
        raise ColobenchError(f"-k {expr!r}: unexpected {tokens[pos]!r}")
    return result
