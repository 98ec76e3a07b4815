"""Every conformance vector passes against the real core and fails under its named fault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchbay.conformance import (
    PROPERTIES,
    VectorError,
    by_property,
    load_vectors,
    parse_vector,
    run_with_mutant,
)
from tests.verification import _collected

ROOT = Path(__file__).resolve().parents[2]
VECTORS = load_vectors(ROOT / "vectors")


@pytest.mark.parametrize("vector", VECTORS, ids=[v.vector_id for v in VECTORS])
async def test_vector_passes_and_its_mutant_is_killed(vector) -> None:  # type: ignore[no-untyped-def]
    clean, mutant = await run_with_mutant(vector)
    _collected.VECTORS.setdefault(vector.property, []).append(
        f"{vector.path.name} {'pass' if clean.passed else 'FAIL'}")
    if mutant is not None:
        _collected.MUTANTS.setdefault(vector.property, []).append(
            f"core:{mutant.fault} {'killed' if mutant.killed else 'SURVIVED'}")
    assert clean.passed, f"{vector.path.name}: {clean.problem}"
    if vector.promoted:
        assert mutant is not None and mutant.killed, (
            f"{vector.path.name}: fault {vector.mutant} survived: the vector cannot detect a broken rule")
        print(f"\n{vector.property}: {vector.vector_id} passes; fault {vector.mutant} killed it: {mutant.problem}")


def test_every_spec_property_has_a_promoted_vector() -> None:
    grouped = by_property(v for v in VECTORS if v.promoted)
    missing = [name for name in PROPERTIES if name not in grouped]
    assert missing == [], f"properties without a promoted vector: {missing}"


def _document(**changes: object) -> dict[str, object]:
    document = json.loads((ROOT / "vectors" / "boundary-dedup.json").read_text())
    document.update(changes)
    return document


@pytest.mark.parametrize("changes, problem", [
    ({"property": "BoundaryDedupe"}, "unknown property 'BoundaryDedupe'"),
    ({"property": "boundarydedup"}, "unknown property"),
    ({"mutant": "dedup_of"}, "not a fault"),
    ({"mutant": None}, "must name the fault"),
    ({"status": "final"}, "status must be"),
    ({"steps": [{"do": "login"}]}, "cannot fail"),
    ({"steps": [{"do": "teleport"}]}, "no known 'do'"),
])
def test_a_malformed_vector_is_refused_by_name(changes: dict[str, object], problem: str) -> None:
    with pytest.raises(VectorError, match=problem):
        parse_vector(_document(**changes), Path("vectors/broken.json"))


def test_a_missing_property_field_is_refused() -> None:
    document = _document()
    del document["property"]
    with pytest.raises(VectorError, match="missing field 'property'"):
        parse_vector(document, Path("vectors/broken.json"))
