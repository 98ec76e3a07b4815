"""A small actor runtime on trio: bounded mailboxes, tell/ask, one_for_one supervision with
restart intensity and backoff, escalation, and on-demand activation with passivation.

It knows nothing about Patchbay's entities; the core's command, session and lease actors are
built on it.
"""

from patchbay.actors._actor import Actor, ActorRef
from patchbay.actors._errors import (
    ActorCrashed,
    ActorError,
    ActorStopped,
    AskTimeout,
    MailboxFull,
    SupervisorEscalation,
)
from patchbay.actors._supervisor import ChildSpec, Intensity, Restart, Supervisor
from patchbay.actors._system import ActorSystem

__all__ = [
    "Actor",
    "ActorCrashed",
    "ActorError",
    "ActorRef",
    "ActorStopped",
    "ActorSystem",
    "AskTimeout",
    "ChildSpec",
    "Intensity",
    "MailboxFull",
    "Restart",
    "Supervisor",
    "SupervisorEscalation",
]
