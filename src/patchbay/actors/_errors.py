"""Actor runtime errors: each tells the caller what happened to its message."""

from __future__ import annotations

from patchbay.errors import PatchbayError


class ActorError(PatchbayError):
    """Root of actor runtime errors."""


class MailboxFull(ActorError):
    """The bounded mailbox is full: back off (or use ``tell``, which waits for room)."""


class ActorStopped(ActorError):
    """The actor is gone or stopped before handling the message; it was not handled."""


class ActorCrashed(ActorError):
    """Handling the message raised; the message is not redelivered."""


class AskTimeout(ActorError):
    """No answer within the timeout; the message may still be handled later."""


class SupervisorEscalation(ActorError):
    """A child restarted more often than the intensity allows: the supervisor gave up."""

    def __init__(self, supervisor: str, child: str, last_error: BaseException | None) -> None:
        super().__init__(f"supervisor {supervisor}: child {child} exceeded its restart intensity "
                         f"(last error: {last_error!r})")
        self.child = child
        self.last_error = last_error
