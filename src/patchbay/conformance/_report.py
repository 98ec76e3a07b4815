"""The traceability table (property -> model -> vectors -> mutants) and the run report.

``traceability`` is static: it reads ``specs/models.json`` and ``vectors/`` only, so the table
in docs/VERIFICATION.md can be regenerated and compared in CI (drift fails the build).
``result_table`` adds what a run observed: model verdict, vector verdicts, killed mutants.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from patchbay.conformance._models import load_models
from patchbay.conformance._properties import PROPERTIES
from patchbay.conformance._vectors import load_vectors

BEGIN = "<!-- BEGIN GENERATED TRACEABILITY (python -m patchbay.conformance --write-docs) -->"
END = "<!-- END GENERATED TRACEABILITY -->"


def traceability(root: Path) -> list[dict[str, str]]:
    _, models = load_models(root)
    vectors = load_vectors(root / "vectors")
    manifest = json.loads((root / "specs" / "models.json").read_text())
    tlc = {m["tlc"]["spec"]: {x["violates"] for x in m["tlc"]["mutants"]} for m in manifest["models"] if "tlc" in m}
    rows = []
    for name, (group, meaning) in PROPERTIES.items():
        model = next((m for m in models if name in m.properties), None)
        mutants = [mutant.module for m in models for mutant in m.mutants if name in mutant.violates]
        mine = [v for v in vectors if v.property == name]
        exhaustive = [spec for spec, props in tlc.items() if name in props]
        model_text = f"`{model.file.relative_to(root)}` `{name}`" if model else "—"
        if exhaustive:
            model_text += "; TLC (exhaustive): " + ", ".join(f"`{spec}`" for spec in exhaustive)
        rows.append({
            "property": name,
            "group": group,
            "meaning": meaning,
            "model": model_text,
            "model_mutants": ", ".join(f"`{m}`" for m in mutants) or "—",
            "vectors": ", ".join(f"`{v.path.name}` ({v.status})" for v in mine) or "—",
            "faults": ", ".join(sorted({f"`{v.mutant}`" for v in mine if v.mutant})) or "—",
        })
    return rows


def markdown_table(root: Path) -> str:
    lines = ["| Property | Group | Model invariant | Model mutants (must violate) | Vectors | Core fault (must fail the vectors) |",
             "|---|---|---|---|---|---|"]
    for row in traceability(root):
        lines.append(f"| **{row['property']}** — {row['meaning']} | {row['group']} | {row['model']} | "
                     f"{row['model_mutants']} | {row['vectors']} | {row['faults']} |")
    return "\n".join(lines)


def render_doc(current: str, root: Path) -> str:
    """``current`` with the text between the markers replaced by the fresh table."""
    if BEGIN not in current or END not in current:
        raise ValueError("docs/VERIFICATION.md lacks the generated-table markers")
    head, rest = current.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{markdown_table(root)}\n{END}{tail}"


def result_table(model_results: Mapping[str, str], vector_results: Mapping[str, list[str]],
                 mutant_results: Mapping[str, list[str]]) -> str:
    """Plain-text report: one line per property with what this run observed."""
    lines = [f"{'property':<36} {'model':<8} vectors / mutants killed"]
    for name in PROPERTIES:
        vectors = "; ".join(vector_results.get(name, [])) or "NO VECTOR"
        mutants = ", ".join(mutant_results.get(name, [])) or "none"
        lines.append(f"{name:<36} {model_results.get(name, 'n/a'):<8} {vectors} | mutants: {mutants}")
    return "\n".join(lines)
