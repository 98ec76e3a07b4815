"""Conformance vectors: JSON files that script a scenario against the real core.

A vector file holds one object::

    {"id": "...", "property": "BoundaryDedup", "status": "promoted", "mutant": "dedup_off",
     "description": "...", "steps": [{"do": "login"}, {"do": "submit", ..., "expect": {...}}]}

``property`` must be a SPEC §10 id, ``mutant`` a fault of ``patchbay.faults`` (required for a
promoted vector: running the vector with that fault active must fail), and every step's ``do``
a known operation. Loading refuses anything else, naming the file and the problem.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from patchbay import faults
from patchbay.conformance._properties import require_property

STATUSES = ("draft", "promoted")
OPERATIONS = frozenset({
    "login", "logout", "revoke_session", "submit_concurrently", "attach", "detach", "session", "submit", "report", "frame",
    "advance", "restart", "checkpoint", "grant_add", "grant_revoke", "lockdown_enter", "lockdown_exit",
    "http_login", "http", "resume", "expect_command", "expect_no_command", "expect_session",
    "expect_audit", "expect_deliveries", "expect_commands", "expect_replay",
})


class VectorError(ValueError):
    """A vector file is malformed: the message names the file and what is wrong."""


@attrs.frozen
class Vector:
    vector_id: str
    property: str
    status: str
    mutant: str | None
    description: str
    steps: tuple[dict[str, Any], ...]
    path: Path

    @builtins.property
    def promoted(self) -> bool:
        return self.status == "promoted"


def parse_vector(document: Any, path: Path) -> Vector:
    where = str(path)
    if not isinstance(document, dict):
        raise VectorError(f"{where}: a vector is a JSON object")
    for field in ("id", "property", "status", "description", "steps"):
        if field not in document:
            raise VectorError(f"{where}: missing field {field!r}")
    try:
        prop = require_property(document["property"], where)
    except ValueError as problem:
        raise VectorError(str(problem)) from None
    status = document["status"]
    if status not in STATUSES:
        raise VectorError(f"{where}: status must be one of {STATUSES}, not {status!r}")
    mutant = document.get("mutant")
    if mutant is not None and mutant not in faults.FAULTS:
        raise VectorError(f"{where}: mutant {mutant!r} is not a fault in patchbay.faults")
    if status == "promoted" and mutant is None:
        raise VectorError(f"{where}: a promoted vector must name the fault that must make it fail")
    steps = document["steps"]
    if not isinstance(steps, list) or not steps:
        raise VectorError(f"{where}: steps must be a non-empty list")
    for index, step in enumerate(steps):
        if not isinstance(step, dict) or step.get("do") not in OPERATIONS:
            raise VectorError(f"{where}: step {index} has no known 'do' (one of {sorted(OPERATIONS)})")
    if not any(str(step["do"]).startswith("expect") or "expect" in step for step in steps):
        raise VectorError(f"{where}: a vector without any expectation cannot fail")
    return Vector(str(document["id"]), prop, status, mutant, str(document["description"]),
                  tuple(steps), path)


def load_vector(path: Path) -> Vector:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as problem:
        raise VectorError(f"{path}: cannot read: {problem}") from None
    return parse_vector(document, path)


def load_vectors(directory: Path) -> list[Vector]:
    """Every ``*.json`` under ``directory``, sorted by path; ids must be unique."""
    vectors = [load_vector(path) for path in sorted(directory.rglob("*.json"))]
    seen: dict[str, Path] = {}
    for vector in vectors:
        if vector.vector_id in seen:
            raise VectorError(f"{vector.path}: id {vector.vector_id!r} is also used by {seen[vector.vector_id]}")
        seen[vector.vector_id] = vector.path
    return vectors


def by_property(vectors: Iterable[Vector]) -> dict[str, list[Vector]]:
    grouped: dict[str, list[Vector]] = {}
    for vector in vectors:
        grouped.setdefault(vector.property, []).append(vector)
    return grouped
