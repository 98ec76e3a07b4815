"""Typed request bodies of the HTTP API, structured strictly (the adapter protocol's converter:
no string becomes a number or a number a string). What the types refuse is ``Inadmissible``
naming the field, like every other refusal of the admission layer (``wire/_admit.py``)."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs
import cattrs

from patchbay.registry import RevocationPolicy
from patchbay.wire._admit import Inadmissible, printable
from patchbay.wire.adapter import MAX_TIMESTAMP, converter

T = TypeVar("T")


@attrs.frozen
class GrantScope:
    type: str = "all"
    adapter_id: str = ""
    target: str = ""

    def as_json(self) -> dict[str, Any]:
        """Only the fields of this scope type (nothing else a client sent is stored)."""
        if self.type == "adapter":
            return {"type": self.type, "adapter_id": self.adapter_id}
        if self.type == "session":
            return {"type": self.type, "target": self.target}
        return {"type": self.type}


@attrs.frozen
class GrantRequest:
    """``POST /api/grants``; kinds and policy are names the domain checks (``decide_grant``)."""

    scope: GrantScope = GrantScope()
    kinds: list[str] = attrs.field(factory=list)
    expires_at: float | None = None
    revocation_policy: str = RevocationPolicy.continue_.value
    endpoint_id: str | None = None


def structure(data: dict[str, Any], cls: type[T]) -> T:
    """``data`` as ``cls``; ``Inadmissible`` naming the first field that does not fit."""
    cleaned = {k: v for k, v in data.items() if v is not None}  # null means: the default
    try:
        value = converter.structure(cleaned, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as error:
        raise _named(error) from None
    expires_at = getattr(value, "expires_at", None)
    if expires_at is not None and not 0 <= expires_at <= MAX_TIMESTAMP:
        raise Inadmissible("expires_at", "must be seconds since the epoch, before the year 10000")
    return value


def _named(error: BaseException) -> Inadmissible:
    notes = cattrs.transform_error(error) if isinstance(error, cattrs.BaseValidationError) else [str(error)]
    first = notes[0] if notes else str(error)
    problem, _, where = first.partition(" @ ")
    path = where.removeprefix("$").lstrip(".")
    return Inadmissible(printable(path, 100), printable(problem, 200))
