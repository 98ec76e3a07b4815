"""Admission: the one check every boundary runs on decoded JSON before anything is decided.

A value is admitted only if every later stage can store, encode (orjson), replay and display
it: integers within signed 64 bits, finite numbers, strings of Unicode scalar values (no lone
surrogates), nesting at most ``MAX_DEPTH`` deep, strings at most ``MAX_STRING`` characters. A
refusal is ``Inadmissible``, naming the path of the first offending value (``payload.note``,
``frames[2].seq``) and what is wrong with it, never the value itself, so the refusal can be
audited and answered as it is.

Used by the HTTP API (request bodies, ``web/_input.py``), the adapter protocol
(``wire/adapter.py``) and the CLI where it builds payloads.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
MAX_STRING = 1024 * 1024
_KEY_SHOWN = 40  # characters of an odd key shown in a path


class Inadmissible(ValueError):
    """A value no later stage could carry; ``path`` names it, ``problem`` says why."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


def printable(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters, lone surrogates and control characters escaped:
    always safe to store, encode and show (for reasons and paths in audit records)."""
    cut = text[:limit]
    if not cut.isascii() or not cut.isprintable():
        cut = cut.encode("ascii", "backslashreplace").decode("ascii")
        cut = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in cut)
    return cut + ("…" if len(text) > limit else "")


def _step(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if key.isidentifier() and key.isascii() and len(key) <= _KEY_SHOWN:
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(printable(key, _KEY_SHOWN))}]"


def scalar_problem(value: Any) -> str | None:
    """What makes one scalar inadmissible, or None."""
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            return f"text longer than {MAX_STRING} characters"
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "text holds a lone surrogate (not valid Unicode)"
        return None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            return "integer outside the signed 64-bit range"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "number is not finite (NaN or Infinity)"
    return f"not a JSON value ({type(value).__name__})"


def check(value: Any, path: str = "", *, max_depth: int = MAX_DEPTH) -> None:
    """Raise ``Inadmissible`` for the first value under ``value`` that may not pass.

    Iterative (no recursion, whatever the input's depth). ``path`` prefixes every path named."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, dict):
            if depth >= max_depth:
                raise Inadmissible(where, f"nested deeper than {max_depth} levels")
            for key, inner in item.items():
                if not isinstance(key, str):
                    raise Inadmissible(where, "object keys must be strings")
                key_problem = scalar_problem(key)
                if key_problem is not None:
                    raise Inadmissible(_step(where, key), f"key: {key_problem}")
                stack.append((inner, _step(where, key), depth + 1))
        elif isinstance(item, (list, tuple)):
            if depth >= max_depth:
                raise Inadmissible(where, f"nested deeper than {max_depth} levels")
            stack.extend((inner, _step(where, index), depth + 1) for index, inner in enumerate(item))
        else:
            problem = scalar_problem(item)
            if problem is not None:
                raise Inadmissible(where, problem)


def problem(value: Any, path: str = "") -> Inadmissible | None:
    """``check`` as a value: the refusal, or None when ``value`` is admitted."""
    try:
        check(value, path)
    except Inadmissible as refusal:
        return refusal
    return None


def loads(text: str | bytes) -> Any:
    """Decode JSON with the standard library, as the boundaries do when orjson refuses: a
    document too deep for the decoder is a ``ValueError`` like any other undecodable one."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels (too deep to decode)") from None
