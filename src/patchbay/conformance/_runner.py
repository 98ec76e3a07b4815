"""Run a vector against the real core, with or without one fault active.

Every step's result is compared with its ``expect`` (a subset match: only the fields named are
checked). After the last step the journal on disk goes through ``replay_journal(check=True)``,
the same ``JournalChecker`` that ``patchbay replay --check`` runs in the field: a vector passes
only if its expectations hold *and* the journal it produced shows no violation.
"""

from __future__ import annotations

import builtins
import tempfile
from pathlib import Path

import attrs
import trio

from patchbay import faults
from patchbay.conformance import _steps
from patchbay.conformance._driver import CoreHost
from patchbay.conformance._match import VectorFailure, match
from patchbay.conformance._vectors import Vector
from patchbay.replay import replay_journal


@attrs.frozen
class VectorResult:
    vector_id: str
    property: str
    fault: str | None
    passed: bool
    problem: str | None = None
    crashed: bool = False  # the run ended in an unexpected exception rather than a failed check

    @builtins.property
    def killed(self) -> bool:
        """For a run under a fault: the vector noticed (it did not pass)."""
        return not self.passed


async def _execute(vector: Vector, workdir: Path) -> None:
    host = CoreHost(workdir)
    async with trio.open_nursery() as nursery:
        await host.start(nursery)
        context = _steps.Context(host)
        try:
            for index, raw in enumerate(vector.steps):
                step = context.resolve(raw)
                try:
                    result = await _steps.OPERATIONS[step["do"]](context, step)
                    await host.settle()
                    if "expect" in step:
                        match(step["expect"], result)
                except VectorFailure as failed:
                    raise VectorFailure(f"step {index} ({step['do']}): {failed}") from None
        finally:
            await host.stop()
            nursery.cancel_scope.cancel()
    violations = replay_journal(host.path, check=True).violations
    if violations:
        raise VectorFailure("journal check: " + "; ".join(str(v) for v in violations))


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


async def run_vector(vector: Vector, *, fault: str | None = None, keep: Path | None = None) -> VectorResult:
    """Run once on a fresh journal; ``fault`` (a ``patchbay.faults`` name) is active throughout.

    With ``keep`` (an empty directory) the journal stays there for inspection, e.g. by
    ``patchbay replay --check``.
    """
    names = (fault,) if fault else ()
    with tempfile.TemporaryDirectory(prefix="patchbay-vector-") as scratch, faults.injected(*names):
        try:
            await _execute(vector, keep or Path(scratch))
        except Exception as error:  # a failed check, or the core crashed under the fault
            leaf = _first_leaf(error)
            if isinstance(leaf, VectorFailure):
                return VectorResult(vector.vector_id, vector.property, fault, False, str(leaf))
            return VectorResult(vector.vector_id, vector.property, fault, False,
                                f"{type(leaf).__name__}: {leaf}", crashed=True)
    return VectorResult(vector.vector_id, vector.property, fault, True)


async def run_with_mutant(vector: Vector) -> tuple[VectorResult, VectorResult | None]:
    """The vector as is (must pass) and under its named fault (must fail)."""
    clean = await run_vector(vector)
    mutant = await run_vector(vector, fault=vector.mutant) if vector.mutant else None
    return clean, mutant
