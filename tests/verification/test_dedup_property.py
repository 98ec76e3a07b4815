"""A property test of BoundaryDedup on the pure acceptance pipeline, and proof it can go red.

Any sequence of submissions drawn from a few command ids and keys must leave at most one
command per key, answer every repeat of an accepted (id, key) pair with that same command,
and never let the journal checker see a second acceptance of a key. With the ``dedup_off``
fault (a duplicate key creates a new command) Hypothesis must find a counterexample: the same
broken rule also turns the vector ``boundary-dedup.json`` red.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchbay import faults
from patchbay.domain.acceptance import Submission, decide_submission
from patchbay.domain.events import EventKind, Fact
from patchbay.domain.invariants import JournalChecker
from patchbay.domain.model import CoreState, Issuer
from patchbay.domain.reducer import apply

NOW = 1_800_000_000.0
ISSUER = Issuer("operator", "end-1", "ses-1", "web")


class _Event:
    def __init__(self, lsn: int, fact: Fact) -> None:
        self.lsn, self.kind, self.ts, self.payload = lsn, fact.kind.value, NOW, fact.payload
        self.core_generation = 1


def _initial() -> tuple[CoreState, JournalChecker, int]:
    state, checker, lsn = CoreState(), JournalChecker(), 0
    facts = [
        Fact(EventKind.domain_initialized, "domain", {"authority_domain_id": "dom"}),
        Fact(EventKind.operator_created, "operator:operator", {"operator_id": "operator", "password_hash": "x"}),
        Fact(EventKind.grant_created, "grant:g", {
            "grant_id": "g", "subject": "operator", "scope": {"type": "all"}, "kinds": ["instruct"],
            "expires_at": None, "revocation_policy": "continue", "provenance": "test", "endpoint_id": None}),
        Fact(EventKind.endpoint_enrolled, "endpoint:end-1", {
            "endpoint_id": "end-1", "endpoint_kind": "browser", "label": "t", "operator_id": "operator"}),
        Fact(EventKind.operator_session_created, "operator_session:ses-1", {
            "session_id": "ses-1", "operator_id": "operator", "endpoint_id": "end-1", "session_kind": "browser",
            "token_hash": "h", "idle_timeout": 1e9, "absolute_expiry": NOW + 1e9, "address": "127.0.0.1"}),
        Fact(EventKind.session_reported, "session:shell-1/demo", {
            "target": "shell-1/demo", "adapter_id": "shell-1", "deployment_scope": "h", "runtime_session_id": "demo",
            "generation": 1, "label": "", "metadata": {}, "connectivity": "live", "activity": "idle",
            "snapshot_tier": "authoritative"}),
    ]
    for fact in facts:
        lsn += 1
        event = _Event(lsn, fact)
        apply(state, event)
        checker.check(event)
    return state, checker, lsn


submissions = st.lists(st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.sampled_from(["k1", "k2"])),
                       min_size=1, max_size=12)


@settings(max_examples=150, deadline=None, database=None, derandomize=True, report_multiple_bugs=False,
          suppress_health_check=[HealthCheck.too_slow])
@given(submissions)
def check_one_command_per_key(sequence: list[tuple[str, str]]) -> None:
    state, checker, lsn = _initial()
    first_owner: dict[str, str] = {}
    for command_id, key in sequence:
        decision = decide_submission(state, Submission(command_id, key, "instruct", "shell-1/demo", {"text": "t"}),
                                     ISSUER, NOW)
        for fact in decision.facts:
            lsn += 1
            event = _Event(lsn, fact)
            apply(state, event)
            checker.check(event)
        if decision.outcome.value == "accepted":
            first_owner.setdefault(key, command_id)
            assert decision.command_id == first_owner[key], "a key answered for a different command"
    keys = [record.idempotency_key for record in state.commands.values()]
    assert len(keys) == len(set(keys)), "one idempotency key created two commands"
    assert [v for v in checker.violations if v.property == "BoundaryDedup"] == []


def test_boundary_dedup_holds_for_any_sequence_of_submissions() -> None:
    check_one_command_per_key()


def test_breaking_dedup_turns_the_property_test_red() -> None:
    with faults.injected("dedup_off"), pytest.raises(AssertionError):
        check_one_command_per_key()
