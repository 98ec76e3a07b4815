"""Bounded audit of unauthenticated refusals: what a stranger sends costs bounded journal space.

Anyone who reaches the listener can send an adapter ``hello``, a login or a request without a
session. Each refusal is audited, but with bounded fields (an id longer than ``SHOWN``
characters, or holding characters that cannot be shown, is cut and named by its SHA-256) and,
under a flood, aggregated per stream (``hello``, ``login``, ``request``): at most ``burst``
records in a ``WINDOW``; the refusals beyond that are counted, and one summary record (the
first suppressed record's fields, with ``suppressed`` and a few ``samples``) is journaled when
the window ends (the timer ``("refusal-summary", stream)``).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from patchbay.domain.events import EventKind
from patchbay.wire._admit import printable

if TYPE_CHECKING:
    from patchbay.core._core import Core

SHOWN = 64  # characters of an unauthenticated id kept in an audit record
WINDOW = 60.0  # seconds
SAMPLES = 5  # values named in a summary record
BURSTS = {"hello": 5, "login": 20, "request": 20}  # records per window before refusals are counted


def bounded_id(value: Any) -> dict[str, Any]:
    """An id as sent, fit for an audit record: as is when short and plain, otherwise cut
    (``adapter_id``) and named by its SHA-256 (``adapter_id_sha256``)."""
    text = value if isinstance(value, str) else repr(type(value).__name__)
    shown = printable(text, SHOWN)
    if shown == text:
        return {"adapter_id": text}
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return {"adapter_id": shown, "adapter_id_sha256": digest, "adapter_id_length": len(text)}


class RefusalBudget:
    """How many refusals of one stream are still journaled one by one in this window."""

    def __init__(self, burst: int) -> None:
        self.burst = burst
        self.window_end = float("-inf")
        self.recorded = 0
        self.suppressed = 0
        self.samples: list[str] = []
        self.first: tuple[EventKind, str, dict[str, Any]] | None = None

    def take(self, now: float) -> bool:
        """Whether this refusal gets a record of its own (else it is counted for the summary)."""
        if now >= self.window_end and not self.suppressed:
            self.window_end = now + WINDOW
            self.recorded = 0
        if self.recorded < self.burst:
            self.recorded += 1
            return True
        return False

    def count(self, kind: EventKind, entity: str, payload: dict[str, Any], sample: str) -> bool:
        """Count a suppressed refusal; True for the first of a window (arm the summary)."""
        self.suppressed += 1
        if self.first is None:
            self.first = (kind, entity, payload)
        if len(self.samples) < SAMPLES and sample not in self.samples:
            self.samples.append(sample)
        return self.suppressed == 1

    def summary(self) -> tuple[EventKind, str, dict[str, Any]] | None:
        """The summary record of the window that ended (None when nothing was suppressed);
        the next refusal opens a new window."""
        if self.first is None:
            return None
        kind, entity, payload = self.first
        summary = {**payload, "reason": f"{self.suppressed} more refusals like this within {WINDOW:.0f} s "
                                        "(not recorded one by one)",
                   "suppressed": self.suppressed, "samples": list(self.samples)}
        self.suppressed, self.samples, self.recorded, self.first = 0, [], 0, None
        self.window_end = float("-inf")
        return kind, entity, summary


class BoundedAudit:
    """The budgets of the unauthenticated refusal streams of one core."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.budgets = {stream: RefusalBudget(burst) for stream, burst in BURSTS.items()}

    async def refused(self, stream: str, kind: EventKind, entity: str, payload: dict[str, Any], sample: str) -> None:
        """Journal one refusal of ``stream``, or count it for the window's summary."""
        budget = self.budgets[stream]
        if budget.take(self.core.clock.now()):
            await self.core.record(kind, entity, payload)
        elif budget.count(kind, entity, payload, printable(sample, SHOWN)):
            self.core.timers.arm(("refusal-summary", stream), budget.window_end)

    async def flush(self, stream: str) -> None:
        """The window of ``stream`` ended: journal its summary, if anything was suppressed."""
        summary = self.budgets[stream].summary()
        if summary is not None:
            await self.core.record(*summary)
