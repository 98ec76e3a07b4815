"""A small reference model of one operator, one adapter and one runtime session.

It is written from SPEC §3–§5 and §9 alone, without importing the domain's deciders or
reducer, so a bug there is caught rather than repeated. It predicts what the core must answer
and which state every command, the session and every lease must be in.
"""

from __future__ import annotations

from typing import Final

import attrs

TERMINAL: Final = frozenset({"completed", "rejected", "failed", "expired", "cancelled", "superseded"})
ALLOWED: Final = {
    "accepted": {"delivered", "rejected", "failed", "expired", "cancelled", "superseded"},
    "delivered": {"running", "completed", "rejected", "failed", "expired", "cancelled", "superseded"},
    "running": {"completed", "failed", "expired", "cancelled", "superseded"},
}
DEFAULT_FAILURE: Final = {"failed": "execution_failed", "rejected": "delivery_rejected"}


@attrs.define
class ModelCommand:
    command_id: str
    key: str
    kind: str
    text: str
    generation: int
    expires_at: float | None
    target_command: str | None = None
    grant: int = 0  # which grant (in order of creation) authorized it
    state: str = "accepted"
    failure: str | None = None
    late: int = 0

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


@attrs.define
class ModelLease:
    lease_id: str
    resource: str
    expires_at: float
    state: str = "held"

    def live(self, now: float) -> bool:
        return self.state == "held" and now < self.expires_at


@attrs.define
class Model:
    now: float
    core_generation: int
    generation: int = 1
    connectivity: str = "live"
    label: str = "demo"
    logged_in: bool = True
    grant_live: bool = True
    granted_kinds: frozenset[str] = frozenset({"instruct", "cancel"})
    grant: int = 0
    grant_policy: str = "continue"
    tombstoned: list[int] = attrs.field(factory=list)
    lockdown: bool = False
    commands: dict[str, ModelCommand] = attrs.field(factory=dict)
    leases: dict[str, ModelLease] = attrs.field(factory=dict)

    # -- submissions -------------------------------------------------------------------

    def acceptance(self, kind: str, *, pin: int | None, expires_at: float | None) -> tuple[str, str | None]:
        """SPEC §5 for a new command id and key: (outcome, failure)."""
        if not self.logged_in:
            return "rejected", "authorization_denied"
        if pin is not None and pin != self.generation:
            return "rejected", "target_not_found"
        if self.connectivity in ("offline", "failed"):
            return "rejected", "target_offline"
        if expires_at is not None and expires_at <= self.now:
            return "rejected", "expired"
        if not self.grant_live or kind not in self.granted_kinds or self.lockdown:
            return "rejected", "authorization_denied"
        return "accepted", None

    def accept(self, command: ModelCommand) -> None:
        self.commands[command.command_id] = command
        if command.kind == "cancel" and command.target_command is not None:
            target = self.commands.get(command.target_command)
            if target is not None and target.state == "accepted":
                target.state, target.failure = "cancelled", "cancelled"
                command.state = "completed"  # the core settles it: nothing left to deliver
            elif target is not None and target.terminal:
                command.state = "completed"  # too late, and it says so in its result

    # -- adapter reports ---------------------------------------------------------------

    def report(self, command_id: str, state: str) -> str:
        """An adapter's report; returns "moved", "late", "same" or "refused"."""
        command = self.commands[command_id]
        failure = DEFAULT_FAILURE.get(state)
        if command.terminal:
            if state == command.state and failure == command.failure:
                return "same"
            command.late += 1
            return "late"
        if state == command.state:
            return "same"
        if state not in ALLOWED[command.state]:
            return "same" if (command.state, state) == ("running", "delivered") else "refused"
        command.state, command.failure = state, failure
        return "moved"

    # -- time, sessions and adapters -----------------------------------------------------

    def new_grant(self, kinds: frozenset[str], policy: str) -> None:
        self.grant += 1
        self.grant_live, self.granted_kinds, self.grant_policy = True, kinds, policy

    def revoke_grant(self) -> None:
        """Revocation stops future authority; its policy decides about what it authorized and
        has not started running (a running command is the adapter's to stop)."""
        if self.grant_live and self.grant_policy != "continue":
            for command in self.commands.values():
                if command.grant == self.grant and command.state in ("accepted", "delivered"):
                    if self.grant_policy == "cancel":
                        command.state, command.failure = "cancelled", "cancelled"
                    else:
                        command.state, command.failure = "failed", "authorization_denied"
        self.grant_live = False

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for command in self.commands.values():
            if not command.terminal and command.expires_at is not None and command.expires_at <= self.now:
                command.state, command.failure = "expired", "expired"
        for lease in self.leases.values():
            if lease.state == "held" and lease.expires_at <= self.now:
                lease.state = "expired"

    def bump_generation(self, by: int) -> None:
        self.tombstoned.append(self.generation)
        self.generation += by
        self.connectivity = "live"
        for command in self.commands.values():
            if command.state in ("accepted", "delivered") and command.generation < self.generation:
                command.state, command.failure = "superseded", "superseded"

    def adapter_lost(self) -> None:
        """Silent for longer than the bound: an honest outcome for everything in flight."""
        self.connectivity = "offline"
        for command in self.commands.values():
            if command.state == "running":
                command.state, command.failure = "failed", "execution_outcome_unknown"
            elif command.state in ("accepted", "delivered"):
                command.state, command.failure = "failed", "adapter_unavailable"

    def not_fresh(self) -> None:
        """Core restart or lockdown: what the core holds is no longer fresh."""
        if self.connectivity == "live":
            self.connectivity = "stale"

    # -- leases --------------------------------------------------------------------------

    def live_lease(self, resource: str) -> ModelLease | None:
        return next((lease for lease in self.leases.values()
                     if lease.resource == resource and lease.live(self.now)), None)
