"""Small builders for pure-domain tests: a state assembled through the real reducer."""

from __future__ import annotations

from typing import Any

import attrs

from patchbay.domain.events import EventKind, Fact
from patchbay.domain.model import CoreState, Issuer
from patchbay.domain.reducer import apply
from patchbay.registry import CommandKind

ISSUER = Issuer(operator_id="operator", endpoint_id="end-1", session_id="ses-1", transport="web")


@attrs.frozen
class Ev:
    lsn: int
    core_generation: int
    kind: str
    ts: float
    payload: dict[str, Any]
    entity: str = ""


class World:
    """A CoreState grown by folding facts through ``apply``, with a visible clock."""

    def __init__(self, now: float = 1000.0) -> None:
        self.state = CoreState()
        self.now = now
        self.events: list[Ev] = []

    def fold(self, facts: Any) -> list[Ev]:
        folded = []
        for fact in facts:
            event = Ev(self.state.last_lsn + 1, 1, fact.kind.value, self.now, dict(fact.payload), fact.entity)
            apply(self.state, event)
            self.events.append(event)
            folded.append(event)
        return folded

    def operator(self, *, grant_kinds: list[str] | None = None, scope: dict[str, Any] | None = None) -> World:
        kinds = grant_kinds if grant_kinds is not None else [k.value for k in CommandKind]
        self.fold([
            Fact(EventKind.operator_created, "operator", {"operator_id": "operator", "password_hash": "h"}),
            Fact(EventKind.endpoint_enrolled, "endpoint", {"endpoint_id": "end-1", "endpoint_kind": "browser",
                                                           "label": "test", "operator_id": "operator"}),
            Fact(EventKind.operator_session_created, "s", {
                "session_id": "ses-1", "operator_id": "operator", "endpoint_id": "end-1",
                "session_kind": "browser", "token_hash": "t", "idle_timeout": 1e9, "absolute_expiry": 1e12}),
            Fact(EventKind.grant_created, "grant", {
                "grant_id": "grant-1", "subject": "operator", "endpoint_id": None,
                "scope": scope or {"type": "all"}, "kinds": kinds, "expires_at": None,
                "revocation_policy": "continue", "provenance": "test"}),
        ])
        return self

    def adapter(self, adapter_id: str = "shell-1") -> World:
        self.fold([
            Fact(EventKind.adapter_registered, "a", {"adapter_id": adapter_id, "adapter_kind": "shell",
                                                     "credential_hash": "c"}),
            Fact(EventKind.adapter_attached, "a", {"adapter_id": adapter_id, "adapter_generation": 1,
                                                   "deployment_scope": "host", "manifest": {}, "connection_id": "c1"}),
        ])
        return self

    def session(self, target: str = "shell-1/demo", generation: int = 1, connectivity: str = "live") -> World:
        adapter_id, _, rsid = target.partition("/")
        self.fold([Fact(EventKind.session_reported, f"session:{target}", {
            "target": target, "adapter_id": adapter_id, "deployment_scope": "host", "runtime_session_id": rsid,
            "generation": generation, "label": rsid, "metadata": {}, "connectivity": connectivity,
            "activity": "idle", "snapshot_tier": "authoritative"})])
        return self


def ready_world() -> World:
    return World().operator().adapter().session()
