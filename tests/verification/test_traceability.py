"""docs/VERIFICATION.md's traceability table is generated from specs/ and vectors/; drift fails."""

from __future__ import annotations

from pathlib import Path

from patchbay.conformance import PROPERTIES
from patchbay.conformance._report import markdown_table, render_doc

ROOT = Path(__file__).resolve().parents[2]


def test_verification_doc_table_matches_specs_and_vectors() -> None:
    current = (ROOT / "docs" / "VERIFICATION.md").read_text()
    assert render_doc(current, ROOT) == current, (
        "docs/VERIFICATION.md is out of date: run `python -m patchbay.conformance --write-docs`")


def test_the_table_names_every_property_with_a_model_a_vector_and_mutants() -> None:
    table = markdown_table(ROOT)
    for name in PROPERTIES:
        row = next(line for line in table.splitlines() if f"**{name}**" in line)
        assert "—" not in row.split("|", 2)[2], f"{name} lacks a model, vector or mutant: {row}"
