"""The actor system: entity actors found by name and started on demand.

Entity actors (one per command, session or lease) passivate when idle or stop when their
entity is finished; the next message to that name starts a fresh instance, which recovers its
state in ``on_start``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from patchbay.actors._actor import ActorRef
from patchbay.actors._supervisor import ChildSpec, Supervisor


class ActorSystem:
    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.activations = 0

    def lookup(self, name: str) -> ActorRef[Any] | None:
        ref = self.supervisor.child(name)
        return ref if ref is not None and ref.alive else None

    def get_or_start(self, name: str, spec_factory: Callable[[], ChildSpec]) -> ActorRef[Any]:
        ref = self.lookup(name)
        if ref is None:
            self.activations += 1
            ref = self.supervisor.start_child(spec_factory())
        return ref

    @property
    def live_count(self) -> int:
        return len(self.supervisor.children)
