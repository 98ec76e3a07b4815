"""Print the property -> model result -> vectors -> killed mutants report after the run."""

from __future__ import annotations

from typing import Any

from patchbay.conformance._report import result_table
from tests.verification import _collected


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not (_collected.MODEL or _collected.VECTORS or _collected.MUTANTS):
        return
    terminalreporter.write_sep("=", "SPEC §10 verification: property, model result, vectors, killed mutants")
    terminalreporter.write_line(result_table(_collected.MODEL, _collected.VECTORS, _collected.MUTANTS))
