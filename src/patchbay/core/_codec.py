"""JSON for checkpoints: orjson where it can, the standard library where orjson cannot.

The journal stores payloads with ``json`` and may hold what orjson refuses to encode (an
integer beyond 64 bits, a lone surrogate, nesting deeper than orjson's limit) and reads wrong
(an integer beyond 64 bits comes back a float). A checkpoint of such a state must still be
written, and read back exactly: a piece orjson cannot encode is encoded by ``json`` instead
(ASCII escapes, so the bytes are always valid UTF-8), and the document then says so with
``"exact": true``, which makes the reader decode it with ``json`` too.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

EXACT_KEY = "exact"  # a document holding a piece orjson could not encode


class Encoder:
    """``orjson.dumps`` with the ``json`` fallback; ``fallbacks`` counts the pieces that took it."""

    __slots__ = ("fallbacks",)

    def __init__(self) -> None:
        self.fallbacks = 0

    def __call__(self, value: Any) -> bytes:
        try:
            return orjson.dumps(value)
        except TypeError:  # orjson.JSONEncodeError: beyond 64 bits, a surrogate, too deep
            self.fallbacks += 1
            return json.dumps(value, separators=(",", ":")).encode()


def decode(document: bytes) -> Any:
    """A checkpoint document: orjson, unless it cannot read it or the document asks for ``json``.

    Raises ``ValueError`` (or ``RecursionError``) for a document neither can read.
    """
    try:
        value = orjson.loads(document)
    except orjson.JSONDecodeError:
        return json.loads(document)
    if isinstance(value, dict) and value.get(EXACT_KEY):
        return json.loads(document)
    return value
