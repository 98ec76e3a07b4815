"""What went wrong in the core's durable machinery, counted and kept for ``GET /api/status``.

Nothing here decides anything: the core reports into it (a checkpoint that failed, a journal
that stopped taking writes and came back) and the status route and the serve log show it.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

log = logging.getLogger("patchbay.core")
_ERROR_CHARS = 300  # an error message as kept and shown
_EVIDENCE_KEPT = 20


def describe(error: BaseException) -> str:
    """One line naming an error: its type and message, bounded."""
    text = f"{type(error).__name__}: {error}".splitlines()[0] if str(error) else type(error).__name__
    return text[:_ERROR_CHARS]


@attrs.define
class Health:
    checkpoint_failures: int = 0
    last_checkpoint_error: str | None = None
    journal_write_failures: int = 0
    journal_error: str | None = None  # set while the journal refuses writes
    history_evidence: list[dict[str, Any]] = attrs.Factory(list)  # who knew of LSNs the journal lacks

    def checkpoint_failed(self, error: BaseException) -> None:
        self.checkpoint_failures += 1
        self.last_checkpoint_error = describe(error)
        log.error("patchbay: checkpoint failed (%s); skipped, the next one is tried later. The journal is "
                  "intact: a checkpoint only shortens start-up", self.last_checkpoint_error)

    def journal_failed(self, error: BaseException) -> None:
        self.journal_write_failures += 1
        self.journal_error = describe(error)
        log.error("patchbay: the journal could not commit (%s); writes are refused and reads go on until it "
                  "commits again (tried by itself). Nothing acknowledged is lost", self.journal_error)

    def journal_writable_again(self) -> None:
        log.warning("patchbay: the journal commits again (it failed with %s); writes are taken again",
                    self.journal_error)
        self.journal_error = None

    def history_lost(self, source: str, claimed: int, head: int) -> bool:
        """``source`` knows of LSN ``claimed`` while the journal ends at ``head``: durable
        history was lost. Kept and logged; True when it is news (a higher claim from
        ``source`` than before), to be journaled as an audit record."""
        if claimed <= max((e["claimed"] for e in self.history_evidence if e["source"] == source), default=head):
            return False
        self.history_evidence = [*self.history_evidence, {"source": source, "claimed": claimed, "head": head}]
        self.history_evidence = self.history_evidence[-_EVIDENCE_KEPT:]
        log.error("patchbay: DURABLE HISTORY WAS LOST: %s knows LSN %d, but the journal ends at LSN %d. Events "
                  "that were acknowledged are missing (a deleted or damaged journal.db-wal, or an older copy put "
                  "back). See docs/RUNBOOK.md, \"Recovery\"", source, claimed, head)
        return True

    def view(self, *, detail: bool = True) -> dict[str, Any]:
        """For ``GET /api/status``: counts and flags for anyone, the error texts (which may
        name paths) only with ``detail`` (a signed-in caller)."""
        return {"checkpoint_failures": self.checkpoint_failures,
                "last_checkpoint_error": self.last_checkpoint_error if detail else None,
                "journal_writable": self.journal_error is None,
                "journal_write_failures": self.journal_write_failures,
                "journal_error": self.journal_error if detail else None,
                "history_lost": bool(self.history_evidence),
                "history_evidence": list(self.history_evidence) if detail else []}
