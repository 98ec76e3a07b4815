"""What the verification tests observed, for the report printed at the end of the pytest run."""

from __future__ import annotations

MODEL: dict[str, str] = {}
VECTORS: dict[str, list[str]] = {}
MUTANTS: dict[str, list[str]] = {}
