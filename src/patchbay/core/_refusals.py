"""Bounded audit of unauthenticated refusals: what a stranger sends costs bounded journal space.

Anyone who reaches the listener can send an adapter ``hello``. A refused one is audited, but
with bounded fields (an id longer than ``SHOWN`` characters, or holding characters that cannot
be shown, is cut and named by its SHA-256) and, under a flood, aggregated: at most ``BURST``
records in a ``WINDOW``; the refusals beyond that are counted, and one summary record
(``suppressed``, a few sample ids) is journaled when the window ends.
"""

from __future__ import annotations

import hashlib
from typing import Any

from patchbay.wire._admit import printable

SHOWN = 64  # characters of an unauthenticated id kept in an audit record
BURST = 5  # records per window before refusals are only counted
WINDOW = 60.0  # seconds
SAMPLES = 5  # ids named in a summary record


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
    """How many unauthenticated refusals are still journaled one by one in this window."""

    def __init__(self) -> None:
        self.window_end = float("-inf")
        self.recorded = 0
        self.suppressed = 0
        self.samples: list[str] = []

    def take(self, now: float) -> bool:
        """Whether this refusal gets a record of its own (else it is counted for the summary)."""
        if now >= self.window_end and not self.suppressed:
            self.window_end = now + WINDOW
            self.recorded = 0
        if self.recorded < BURST:
            self.recorded += 1
            return True
        return False

    def count(self, adapter_id: str) -> bool:
        """Count a suppressed refusal; True for the first of a window (arm the summary)."""
        self.suppressed += 1
        if len(self.samples) < SAMPLES and adapter_id not in self.samples:
            self.samples.append(adapter_id)
        return self.suppressed == 1

    def summary(self) -> dict[str, Any] | None:
        """The summary record of the window that ended (None when nothing was suppressed);
        the next refusal opens a new window."""
        if not self.suppressed:
            return None
        payload = {"adapter_id": "", "frame_type": "hello", "code": "attach_refused",
                   "reason": f"{self.suppressed} more refused hellos within {WINDOW:.0f} s (not recorded one by one)",
                   "suppressed": self.suppressed, "sample_adapter_ids": list(self.samples)}
        self.suppressed, self.samples, self.recorded = 0, [], 0
        self.window_end = float("-inf")
        return payload
