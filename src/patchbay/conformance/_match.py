"""How a vector's expectations are compared with what the core did."""

from __future__ import annotations

from typing import Any


class VectorFailure(AssertionError):
    """An expectation of a vector did not hold (or the journal check found a violation)."""


def match(expected: Any, actual: Any, where: str = "") -> None:
    """Subset match: only the fields ``expected`` names are compared; raises VectorFailure
    naming the first difference. ``reason_contains`` checks a substring of ``reason``/``error``."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            raise VectorFailure(f"{where or 'result'}: expected an object, got {actual!r}")
        for key, value in expected.items():
            if key == "reason_contains":
                reason = str(actual.get("reason") or actual.get("error") or "")
                if str(value) not in reason:
                    raise VectorFailure(f"{where}reason {reason!r} does not contain {value!r}")
                continue
            if key not in actual:
                raise VectorFailure(f"{where}{key}: missing in {actual!r}")
            match(value, actual[key], f"{where}{key}.")
    elif isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            raise VectorFailure(f"{where.rstrip('.')}: expected {expected!r}, got {actual!r}")
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            match(want, got, f"{where}{index}.")
    elif expected != actual:
        raise VectorFailure(f"{where.rstrip('.') or 'result'}: expected {expected!r}, got {actual!r}")
