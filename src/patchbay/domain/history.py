"""Full records of archived commands, rebuilt from their events through the one reducer.

An archived command (``model.ArchivedCommand``) keeps in memory only what decisions need. Its
full record (payload, history, result, late outcomes, elicitations) is the fold of its own
events: every event that changes a command record carries the command's entity
(``events.entity_for_command``), except ``elicitation.opened``, whose entity is the
elicitation's; the archived entry lists those elicitations, so the caller reads both. The
caller does the reading (this module does no I/O), at the edges only: queries and answers.
"""

from __future__ import annotations

from collections.abc import Iterable

from patchbay.domain.events import entity_for_command, entity_for_elicitation
from patchbay.domain.model import ArchivedCommand, CommandRecord, CoreState
from patchbay.domain.reducer import Event, apply


def entities(archived: ArchivedCommand) -> list[str]:
    """The journal entities whose events rebuild ``archived``'s full record."""
    return [entity_for_command(archived.command_id),
            *(entity_for_elicitation(elicitation_id) for elicitation_id in archived.elicitations)]


def rebuild_command(command_id: str, events: Iterable[Event]) -> CommandRecord | None:
    """Fold ``events`` (in any order; they are applied in LSN order) into a scratch state and
    return the command's record: the same record the live state held, plus what happened to it
    after it was archived (late outcomes)."""
    scratch = CoreState()
    for event in sorted(events, key=lambda e: e.lsn):
        apply(scratch, event)
    return scratch.commands.get(command_id)
