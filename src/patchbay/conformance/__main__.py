"""``python -m patchbay.conformance [--write-docs]``: run models and vectors, print the report.

With ``--write-docs`` it only regenerates the traceability table in docs/VERIFICATION.md.
Run from the project root (it reads specs/, vectors/ and tools/).
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from patchbay.conformance._models import run_checks
from patchbay.conformance._report import render_doc, result_table
from patchbay.conformance._runner import run_with_mutant
from patchbay.conformance._vectors import load_vectors


def main(argv: list[str]) -> int:
    root = Path.cwd()
    doc = root / "docs" / "VERIFICATION.md"
    if "--write-docs" in argv:
        doc.write_text(render_doc(doc.read_text(), root))
        print(f"wrote {doc}")
        return 0
    checks = run_checks(root)
    model_results: dict[str, str] = {}
    mutant_results: dict[str, list[str]] = {}
    for check in checks:
        if check.kind == "model":
            for name in check.invariant.split():
                model_results[name] = "ok" if check.ok else "FAILED"
        elif check.kind == "mutant":
            mutant_results.setdefault(check.invariant, []).append(
                f"model:{check.subject} {'killed' if check.ok else 'SURVIVED'}")
    vector_results: dict[str, list[str]] = {}

    async def vectors() -> None:
        for vector in load_vectors(root / "vectors"):
            clean, mutant = await run_with_mutant(vector)
            vector_results.setdefault(vector.property, []).append(
                f"{vector.vector_id} {'pass' if clean.passed else 'FAIL'}")
            if mutant is not None:
                mutant_results.setdefault(vector.property, []).append(
                    f"core:{mutant.fault} {'killed' if mutant.killed else 'SURVIVED'}")

    trio.run(vectors)
    print(result_table(model_results, vector_results, mutant_results))
    failed = any(not c.ok for c in checks) or any(
        "FAIL" in r or "SURVIVED" in r for rs in (*vector_results.values(), *mutant_results.values()) for r in rs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
