"""The root of Patchbay's own errors; each maps once, at the edge, to an exit code, an HTTP
status or a protocol frame. Messages name the thing and the fix."""

from __future__ import annotations


class PatchbayError(Exception):
    """Base class of every error Patchbay raises on purpose."""


class CoreStopped(PatchbayError):
    """The core is not running (stopped, or stopping after a journal failure): retry later and
    reconcile by idempotency key; nothing is known about operations that were in flight."""


class JournalUnavailable(CoreStopped):
    """The journal takes no writes for now (a full disk, an I/O error): nothing of this was
    recorded. Reads go on; writes are taken again, by themselves, once the journal commits."""


class NotFound(PatchbayError):
    """The named record does not exist."""


class Refused(PatchbayError):
    """The request was understood and refused; the message says why."""


class ProtocolError(PatchbayError):
    """A peer sent something the protocol does not allow; nothing was changed."""
