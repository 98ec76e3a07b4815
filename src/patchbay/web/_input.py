"""The HTTP boundary's input checks: request bodies and query strings, for every route.

One place decides what a client may send: a body is a UTF-8 JSON object of at most
``MAX_BODY`` bytes whose every value is admitted (``wire/_admit.py``: 64-bit integers, finite
numbers, valid Unicode, depth ≤ 64); a query parameter that should be a number is an integer
within its documented range. A body that is not a JSON object is ``BodyRefused`` (409, as
documented); an inadmissible value or a bad query parameter is ``InputRefused``, answered
``validation_failed`` naming the field (422 for bodies, 400 for query strings) and audited
(``security.request_refused`` with check ``validation_failed``) with bounded details.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

import orjson

from patchbay.registry import Failure
from patchbay.wire import _admit, requests

T = TypeVar("T")
_INTEGER = re.compile(r"-?[0-9]{1,19}")

MAX_BODY = 256 * 1024
NOT_AN_OBJECT = "the request body must be a JSON object"
VALIDATION_FAILED = Failure.validation_failed.value


class BodyRefused(Exception):
    """The body is not a (decodable) JSON object."""

    status = 409


class InputRefused(Exception):
    """A field a client sent may not pass; ``field`` names it (a path such as ``payload.note``)."""

    def __init__(self, field: str, problem: str, status: int) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem
        self.status = status

    def answer(self) -> dict[str, Any]:
        return {"error": str(self), "failure": VALIDATION_FAILED, "field": self.field}

    def audit(self, method: str, path: str, address: str) -> dict[str, Any]:
        """The bounded details of the refusal's audit record (never the value itself)."""
        return {"check": VALIDATION_FAILED, "method": method, "path": _admit.printable(path, 200),
                "address": address, "status": self.status, "field": _admit.printable(self.field, 200),
                "reason": _admit.printable(self.problem, 200)}


def decode(raw: bytes | str) -> Any:
    """The body's JSON. orjson first; what it refuses but the standard library reads (lone
    surrogates, NaN, integers beyond 64 bits) is read too, so admission can name the field.
    Raises ``BodyRefused`` for anything that is not JSON (or nests too deep to decode)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            return _admit.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise BodyRefused(NOT_AN_OBJECT) from None


def admitted(value: Any, field: str = "") -> Any:
    """``value`` when every later stage can carry it; ``InputRefused`` (422) naming the field."""
    refusal = _admit.problem(value, field)
    if refusal is not None:
        raise InputRefused(refusal.path, refusal.problem, 422)
    return value


def body_object(raw: bytes | str) -> dict[str, Any]:
    """A request body as an admitted JSON object (``BodyRefused`` or ``InputRefused``)."""
    data = decode(raw)
    if not isinstance(data, dict):
        raise BodyRefused(NOT_AN_OBJECT)
    admitted(data)
    return data


def typed(data: dict[str, Any], cls: type[T]) -> T:
    """An admitted body as its wire type (``wire/requests.py``); ``InputRefused`` (422) naming
    the field that does not fit."""
    try:
        return requests.structure(data, cls)
    except _admit.Inadmissible as refusal:
        raise InputRefused(refusal.path, refusal.problem, 422) from None


def int_arg(args: Mapping[str, str], name: str, default: int, *, low: int, high: int, cap: bool = False) -> int:
    """An integer query parameter in ``[low, high]``; absent or empty gives ``default``.
    With ``cap``, a value above ``high`` is taken as ``high`` (a page size); otherwise, and for
    anything below ``low`` or not an integer, ``InputRefused`` (400) names the parameter."""
    text = args.get(name)
    if text is None or text == "":
        return default
    if not _INTEGER.fullmatch(text):
        raise InputRefused(name, "must be an integer", 400)
    value = int(text)
    if value > high and cap:
        return high
    if not low <= value <= high:
        raise InputRefused(name, f"must be an integer from {low} to {high}", 400)
    return value


def text_arg(args: Mapping[str, str], name: str, *, limit: int = 512) -> str | None:
    """A text query parameter (at most ``limit`` characters), or None when absent or empty."""
    text = args.get(name)
    if not text:
        return None
    if len(text) > limit:
        raise InputRefused(name, f"must be at most {limit} characters", 400)
    return str(admitted(text, name))

