"""Stateful property test: the real core against the reference model in ``tests.core.model``.

Hypothesis drives one in-process core (journal on disk, manual clock) with random submissions,
retries, adapter reports, cancels, expiries, generation bumps, lockdowns, grant revocations,
adapter loss, leases and core restarts. After every step the committed state must match the
model; at the end the journal must pass the independent checker and replay to the live state.

SPEC §10 properties checked here: CommandDurability, CrashNoAcceptedLost (restarts),
TerminalFinality, LsnDeterminesTerminalWinner, BoundaryDedup, RetryReusesIdAndKey,
RetryAfterTerminalReturnsExisting, SessionIdentityTuple, LabelsCannotOverrideIdentity,
GenerationMonotonic, LateGenerationInert, TypedCorrelation, NoCommandWithoutGrant,
CompoundIssuer, GrantAuthorityIsCommandKinds, RevocationPreventsFuture (with each revocation
policy), RevokedSessionCannotCommand, lockdown, SnapshotConsistentPrefix, LateEventNoRewrite,
IdempotentLogReplay, LeaseExclusive, ExpiredLeaseInert.

Profiles: ``PATCHBAY_HYPOTHESIS=core-thorough`` runs many more and longer programs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from patchbay import faults
from patchbay.core import Core, CoreSettings
from patchbay.core.checkpoint import load_checkpoint
from patchbay.core.ports import ManualClock, SequentialIds
from patchbay.domain import model as domain_model
from patchbay.domain.acceptance import Submission
from patchbay.domain.invariants import JournalChecker
from patchbay.domain.model import Issuer
from patchbay.journal import JournalStore
from patchbay.replay import replay_journal
from tests.core.harness import DOMAIN, FakeAdapter, Harness, new_journal
from tests.core.model import Model, ModelCommand, ModelLease
from tests.core.trio_thread import TrioThread

settings.register_profile("core-default", max_examples=120, stateful_step_count=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("core-thorough", max_examples=400, stateful_step_count=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
PROFILE = settings.get_profile(os.environ.get("PATCHBAY_HYPOTHESIS", "core-default"))

TARGET = "shell-1/demo"
HOLDER = "adapter:shell-1"
OFFLINE_AFTER = 100.0
SETTINGS = CoreSettings(stale_after=1e6, offline_after=OFFLINE_AFTER, checkpoint_every=15)
REPORTABLE = ["delivered", "running", "completed", "failed", "rejected"]


class CoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="patchbay-model-"))
        self.path = new_journal(self.directory / "journal.db")
        self.clock = ManualClock()
        self.trio = TrioThread()
        self.ids = SequentialIds()  # deterministic ids, so hypothesis can replay a program exactly
        self.core: Core | None = None
        self.harness: Harness | None = None
        self.adapter: FakeAdapter | None = None
        self.counter = 0
        self.model = Model(now=self.clock.now(), core_generation=1)

    # -- plumbing ----------------------------------------------------------------------

    def run(self, function: Any, *args: Any) -> Any:
        return self.trio.run(function, *args)

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def open_core(self) -> None:
        self.core = Core(self.path, expected_domain=DOMAIN, clock=self.clock, ids=self.ids,
                         settings=SETTINGS, synchronous="OFF")
        self.run(self.trio.start_core, self.core)
        self.model.core_generation += 1
        self.harness = Harness(self.core, self.clock, self.path)
        self.harness.issuer = getattr(self, "issuer", None)

    async def settle(self) -> None:
        assert self.harness is not None
        await self.harness.settle()

    def step(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one action on the trio thread, then wait until the core is quiet."""

        async def go() -> Any:
            result = await function(*args, **kwargs)
            await self.settle()
            return result

        answer = self.run(go)
        assert self.trio.core_error is None, f"the core crashed: {self.trio.core_error!r}"
        return answer

    async def attach_and_report(self) -> None:
        assert self.adapter is not None
        await self.adapter.attach()
        await self.adapter.session(generation=self.model.generation, label=self.model.label)

    @initialize()
    def start(self) -> None:
        self.open_core()
        assert self.harness is not None
        self.issuer = self.run(self.harness.login)
        self.adapter = self.run(self.harness.adapter)
        self.step(self.attach_and_report)

    def teardown(self) -> None:
        try:
            if self.core is not None and self.trio.core_error is None:
                live = attrs.evolve(self.core.state)
                self.run(self.trio.stop_core)
                result = replay_journal(self.path)
                assert [str(v) for v in result.violations] == []
                assert result.state == live  # IdempotentLogReplay: the journal is the state
                self.check_checkpoint()
        finally:
            self.trio.close()
            shutil.rmtree(self.directory, ignore_errors=True)

    def check_checkpoint(self) -> None:
        store = JournalStore.open(self.path, read_only=True)
        try:
            loaded = load_checkpoint(store)
            if loaded is not None:  # SnapshotConsistentPrefix (a delta checkpoint with its base)
                state, lsn, _ = loaded
                assert state == replay_journal(self.path, until_lsn=lsn).state
        finally:
            store.close()

    def submit(self, submission: Submission, issuer: Issuer | None = None) -> Any:
        assert self.core is not None
        return self.step(self.core.submit, submission, issuer or self.issuer)

    # -- submissions -------------------------------------------------------------------

    @rule(request=st.tuples(st.sampled_from(["echo a", "make test", "ls"]),
                            st.sampled_from([None, None, 0.0, 5.0, 20.0]),
                            st.sampled_from(["none", "live", "old"])))
    def submit_new(self, request: tuple[str, float | None, str]) -> None:
        text, window, pin = request
        command_id = self.fresh("c")
        generation = {"none": None, "live": self.model.generation, "old": self.model.generation - 1}[pin]
        expires_at = None if window is None else self.model.now + window
        answer = self.submit(Submission(command_id, f"key-{command_id}", "instruct", TARGET, {"text": text},
                                        generation=generation, expires_at=expires_at))
        outcome, failure = self.model.acceptance("instruct", pin=generation, expires_at=expires_at)
        assert (answer.outcome.value, answer.failure.value if answer.failure else None) == (outcome, failure), \
            answer.reason
        if outcome == "accepted":
            assert answer.command.generation == self.model.generation  # bound to the live generation
            self.model.accept(ModelCommand(command_id, f"key-{command_id}", "instruct", text,
                                           self.model.generation, expires_at, grant=self.model.grant))

    @precondition(lambda self: self.model.commands)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        target = data.draw(st.sampled_from(sorted(self.model.commands)))
        command_id = self.fresh("x")
        answer = self.submit(Submission(command_id, f"key-{command_id}", "cancel", TARGET,
                                        {"command_id": target}))
        outcome, failure = self.model.acceptance("cancel", pin=None, expires_at=None)
        assert (answer.outcome.value, answer.failure.value if answer.failure else None) == (outcome, failure)
        if outcome == "accepted":
            self.model.accept(ModelCommand(command_id, f"key-{command_id}", "cancel", target,
                                           self.model.generation, None, target_command=target,
                                           grant=self.model.grant))

    @precondition(lambda self: self.model.commands)
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        """Same id, same key, same request: the existing record, whatever its state."""
        command = self.model.commands[data.draw(st.sampled_from(sorted(self.model.commands)))]
        payload = {"command_id": command.text} if command.kind == "cancel" else {"text": command.text}
        answer = self.submit(Submission(command.command_id, command.key, command.kind, TARGET, payload))
        if not self.model.logged_in:
            assert answer.failure is not None and answer.failure.value == "authorization_denied"
            return
        assert answer.outcome.value == "accepted", answer.reason
        assert (answer.command.command_id, answer.command.state.value) == (command.command_id, command.state)

    @precondition(lambda self: self.model.commands and self.model.logged_in)
    @rule(data=st.data(), new_id=st.booleans())
    def misuse_key(self, data: st.DataObject, new_id: bool) -> None:
        """Same key with another id or another request: refused, and nothing is created."""
        command = self.model.commands[data.draw(st.sampled_from(sorted(self.model.commands)))]
        command_id = self.fresh("c") if new_id else command.command_id
        answer = self.submit(Submission(command_id, command.key, "instruct", TARGET, {"text": "something else"}))
        assert (answer.outcome.value, answer.failure.value) == ("rejected", "validation_failed")

    @rule(forge=st.sampled_from(["endpoint", "session", "operator"]))
    def forged_issuer(self, forge: str) -> None:
        """CompoundIssuer: the endpoint and the operator session must both be the real ones."""
        issuer = attrs.evolve(self.issuer, **{f"{forge}_id": "forged"})
        command_id = self.fresh("c")
        answer = self.submit(Submission(command_id, f"key-{command_id}", "instruct", TARGET, {"text": "x"}), issuer)
        assert (answer.outcome.value, answer.failure.value) == ("rejected", "authorization_denied")

    @rule(name=st.sampled_from(["label", "other-adapter"]))
    def submit_to_a_name_that_is_not_the_identity(self, name: str) -> None:
        """LabelsCannotOverrideIdentity: neither a label nor another adapter's slot is the target."""
        command_id = self.fresh("c")
        target = self.model.label if name == "label" else "shell-2/demo"
        answer = self.submit(Submission(command_id, f"key-{command_id}", "instruct", target, {"text": "x"}))
        assert answer.outcome.value == "rejected"

    # -- the adapter -------------------------------------------------------------------

    @rule()
    def submit_plain(self) -> None:
        """Everyday use: one more instruction, no window, no generation pin.

        This rule and ``report_progress`` take no arguments, which puts them first in
        hypothesis' rule order, where it falls back when a random pick is not enabled: so a
        program reads like a working session with disruptions in it.
        """
        self.submit_new(("echo plain", None, "none"))

    @precondition(lambda self: any(not c.terminal for c in self.model.commands.values()))
    @rule()
    def report_progress(self) -> None:
        """The adapter moves the oldest open command one step: delivered, running, completed."""
        assert self.adapter is not None
        command = next(c for c in self.model.commands.values() if not c.terminal)
        following = {"accepted": "delivered", "delivered": "running", "running": "completed"}[command.state]
        answer = self.step(self.adapter.report, command.command_id, following)
        assert answer["type"] == "ack", answer
        assert self.model.report(command.command_id, following) == "moved"

    @precondition(lambda self: self.model.commands)
    @rule(report=st.tuples(st.integers(0, 1000), st.sampled_from(REPORTABLE)))
    def adapter_report(self, report: tuple[int, str]) -> None:
        assert self.adapter is not None
        index, state = report
        known = sorted(self.model.commands)
        command_id = known[index % len(known)]
        answer = self.step(self.adapter.report, command_id, state)
        expected = self.model.report(command_id, state)
        if expected in ("moved", "same"):
            assert answer["type"] == "ack", answer
        else:
            assert (answer["type"], answer.get("code")) == ("error", "settled" if expected == "late" else "refused")

    @rule(by=st.sampled_from([1, 1, 2]))
    def bump_generation(self, by: int) -> None:
        """A strictly greater generation supersedes (it need not be the next number)."""
        assert self.adapter is not None
        answer = self.step(self.adapter.session, "demo", self.model.generation + by, label=self.model.label)
        assert answer["type"] == "ack"
        self.model.bump_generation(by)

    @precondition(lambda self: self.model.generation > 1)
    @rule(frame=st.sampled_from(["session", "observation", "reply"]))
    def old_generation_frame(self, frame: str) -> None:
        """GenerationMonotonic and LateGenerationInert: an old generation changes nothing."""
        assert self.adapter is not None
        old = self.model.generation - 1
        if frame == "session":
            answer = self.step(self.adapter.session, "demo", old, label="hijack")
        elif frame == "observation":
            answer = self.step(self.adapter.send, "observation", runtime_session_id="demo", generation=old,
                               observation={"type": "output", "text": "late"}, activity="working")
        else:
            answer = self.step(self.adapter.send, "reply", runtime_session_id="demo", generation=old,
                               reply_id=self.fresh("r"), correlates_kind="command",
                               correlates_id=next(iter(self.model.commands), "none"), content={})
        assert (answer["type"], answer.get("code")) == ("error", "stale_event")

    @rule(known=st.booleans(), kind=st.sampled_from(["command", "message"]))
    def reply(self, known: bool, kind: str) -> None:
        """TypedCorrelation: a reply names a known command of this session, as a command."""
        assert self.adapter is not None
        correlates = next(iter(self.model.commands), None) if known else "nobody"
        answer = self.step(self.adapter.send, "reply", runtime_session_id="demo", generation=self.model.generation,
                           reply_id=self.fresh("r"), correlates_kind=kind, correlates_id=correlates or "nobody",
                           content={"text": "ok"})
        ok = known and correlates is not None and kind == "command"
        assert answer["type"] == ("ack" if ok else "error"), answer

    @rule(label=st.sampled_from(["demo", "api", "shell-1/prod"]))
    def refresh_session(self, label: str) -> None:
        """A fresh report of the live generation: live again, new label, same identity."""
        assert self.adapter is not None
        assert self.step(self.adapter.session, "demo", self.model.generation, label=label)["type"] == "ack"
        self.model.connectivity, self.model.label = "live", label

    @rule(gone_for=st.sampled_from([10.0, OFFLINE_AFTER + 1]),
          reason=st.sampled_from(["connection lost", "process died"]))
    def adapter_lost(self, gone_for: float, reason: str) -> None:
        """The adapter disconnects: stale at once; past the bound, offline with every command in
        flight settled honestly. Then it re-attaches (same adapter generation)."""
        assert self.adapter is not None
        self.step(self.adapter.detach, reason)
        self.model.not_fresh()
        self.check_state()  # stale at once: never shown live from cache
        self.step(self.advance_clock_async, gone_for)
        self.model.advance(gone_for)
        if gone_for > OFFLINE_AFTER:
            self.model.adapter_lost()
        self.step(self.adapter.attach)

    # -- time, authority, restarts -------------------------------------------------------

    async def advance_clock_async(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def run_sync_clock(self, seconds: float) -> None:
        self.trio.run_sync(self.clock.advance, seconds)

    @rule(seconds=st.sampled_from([1.0, 4.0, 6.0, 25.0]))
    def advance_clock(self, seconds: float) -> None:
        self.step(self.advance_clock_async, seconds)
        self.model.advance(seconds)

    @precondition(lambda self: not self.model.lockdown)
    @rule(reason=st.sampled_from(["lost phone", "suspicious login"]))
    def enter_lockdown(self, reason: str) -> None:
        assert self.core is not None
        self.step(self.core.enter_lockdown, reason, "operator")
        self.model.lockdown, self.model.logged_in = True, False
        self.model.not_fresh()

    @precondition(lambda self: self.model.lockdown)
    @rule(log_in=st.booleans())
    def exit_lockdown(self, log_in: bool) -> None:
        """Only the local channel exits; sessions revoked by the lockdown stay revoked."""
        assert self.core is not None
        self.step(self.core.exit_lockdown, "local")
        self.model.lockdown = False
        if log_in:
            self.log_in("browser")

    @precondition(lambda self: not self.model.logged_in)
    @rule(endpoint=st.sampled_from(["browser", "cli"]))
    def log_in(self, endpoint: str) -> None:
        """A fresh login, also during a lockdown: the lockdown itself must still refuse."""
        assert self.core is not None and self.harness is not None
        login = self.step(self.core.create_operator_session, session_kind=endpoint, address="127.0.0.1",
                          label="model")
        self.issuer = Issuer(login.operator_id, login.endpoint_id, login.session_id,
                             "web" if endpoint == "browser" else "cli")
        self.harness.issuer = self.issuer
        self.model.logged_in = True

    @precondition(lambda self: self.model.grant_live)
    @rule(reason=st.sampled_from(["rotated", "device lost"]))
    def revoke_grants(self, reason: str) -> None:
        """RevocationPreventsFuture, and the grant's policy for what it already authorized."""
        self.revoke_all(reason)

    def revoke_all(self, reason: str) -> None:
        assert self.core is not None
        for grant in list(self.core.state.grants.values()):
            if not grant.revoked:
                self.step(self.core.revoke_grant, grant.grant_id, reason)
        self.model.revoke_grant()

    @rule(kinds=st.sampled_from([("instruct", "cancel"), ("instruct",), ("query",)]),
          policy=st.sampled_from(["continue", "cancel", "require-reauthorization"]))
    def replace_grants(self, kinds: tuple[str, ...], policy: str) -> None:
        """GrantAuthorityIsCommandKinds: a grant authorizes exactly its kinds."""
        assert self.core is not None
        self.revoke_all("replaced")
        self.step(self.core.add_grant, scope={"type": "session", "target": TARGET},
                  kinds=list(kinds), expires_at=None, revocation_policy=policy,
                  provenance="model test")
        self.model.new_grant(frozenset(kinds), policy)

    @rule(down_for=st.sampled_from([0.0, 30.0]))
    def restart(self, down_for: float) -> None:
        """Stop the core and open the journal again: nothing accepted may vanish, and deadlines
        that passed while it was down are honoured at recovery."""
        self.run(self.trio.stop_core)
        self.run_sync_clock(down_for)
        self.model.advance(down_for)
        self.open_core()
        self.run(self.settle)
        self.model.not_fresh()
        self.check_state()  # before anything re-attaches: stale, never live from cache
        assert self.adapter is not None
        self.adapter.core = self.core
        self.step(self.adapter.attach)

    # -- leases ----------------------------------------------------------------------------

    @rule(resource=st.sampled_from(["repo", "deploy"]), ttl=st.sampled_from([3.0, 10.0]))
    def lease_acquire(self, resource: str, ttl: float) -> None:
        assert self.adapter is not None
        answer = self.step(self.adapter.send, "lease", op="acquire", resource=resource, scope="write", ttl=ttl)
        if self.model.live_lease(resource) is not None:
            assert (answer["type"], answer.get("code")) == ("error", "lease_held")  # LeaseExclusive
            return
        assert answer["type"] == "ack", answer
        for lease in self.model.leases.values():
            if lease.resource == resource and lease.state == "held":
                lease.state = "expired"
        self.model.leases[answer["lease_id"]] = ModelLease(answer["lease_id"], resource, self.model.now + ttl)

    @precondition(lambda self: self.model.leases)
    @rule(request=st.tuples(st.integers(0, 1000), st.sampled_from(["renew", "release"])))
    def lease_renew_or_release(self, request: tuple[int, str]) -> None:
        assert self.adapter is not None
        index, op = request
        known = sorted(self.model.leases)
        lease = self.model.leases[known[index % len(known)]]
        answer = self.step(self.adapter.send, "lease", op=op, lease_id=lease.lease_id, ttl=10.0)
        if op == "release":
            assert answer["type"] == "ack"
            lease.state = "released" if lease.state == "held" else lease.state
        elif lease.live(self.model.now):
            assert answer["type"] == "ack"
            lease.expires_at = self.model.now + 10.0
        else:
            assert answer["type"] == "error"  # ExpiredLeaseInert: renewal of a dead lease

    # -- what must hold after every step ---------------------------------------------------

    @invariant()
    def check_state(self) -> None:
        if self.core is None:
            return
        assert self.trio.core_error is None, f"the core crashed: {self.trio.core_error!r}"
        state = self.run(self.snapshot)
        model = self.model
        assert self.core.core_generation == model.core_generation
        # nothing accepted vanished, nothing invented; settled ones beyond the window are archived
        assert set(state.commands) | set(state.archived) == set(model.commands)
        assert not set(state.commands) & set(state.archived)
        assert sum(record.terminal for record in state.commands.values()) <= max(1, domain_model.SETTLED_WINDOW)
        records = self.run(self.full_records)
        for command_id, expected in model.commands.items():
            record = records[command_id]
            assert (record.state.value, record.failure.value if record.failure else None) == (
                expected.state, expected.failure), (command_id, record, expected, model.now)
            assert record.generation == expected.generation and record.idempotency_key == expected.key
            history = [t.state.value for t in record.history]
            terminals = [t for t in record.history if t.state.terminal]
            assert history[0] == "accepted" and history.count("accepted") == 1
            assert len(terminals) <= 1 and (not terminals or record.history[-1] is terminals[0])
            assert len(record.late_outcomes) == expected.late  # late candidates never rewrite
            if terminals:
                assert all(late["lsn"] > terminals[0].lsn for late in record.late_outcomes)
        assert {key: command for key, command in state.idempotency.items()} == {
            c.key: c.command_id for c in model.commands.values()}  # BoundaryDedup
        session = state.sessions[TARGET]
        assert (session.adapter_id, session.runtime_session_id, session.generation) == (
            "shell-1", "demo", model.generation)  # SessionIdentityTuple, GenerationMonotonic
        assert session.tombstoned == tuple(model.tombstoned)
        assert (session.connectivity.value, session.label) == (model.connectivity, model.label)
        assert state.lockdown.active == model.lockdown
        leases = {lease_id: (lease.state.value, lease.expires_at) for lease_id, lease in state.leases.items()}
        expected_leases = {lease.lease_id: (lease.state, lease.expires_at) for lease in model.leases.values()}
        assert leases == expected_leases, (leases, expected_leases, model.now, self.clock.now())

    async def full_records(self) -> dict[str, Any]:
        """Every command's full record as the core's API answers it (archived ones rebuilt)."""
        assert self.core is not None
        return {command_id: self.core.command(command_id) for command_id in self.model.commands}

    async def snapshot(self) -> Any:
        """The committed state once the core is quiet; the journal so far must pass the checker."""
        await self.settle()
        assert self.core is not None
        checker = JournalChecker()
        assert [str(v) for v in checker.check_all(self.core.events_after(0))] == []
        return self.core.state


TestCoreAgainstModel = CoreMachine.TestCase
TestCoreAgainstModel.settings = PROFILE


class ArchivingCoreMachine(CoreMachine):
    """The same machine with a window of two settled commands, so most settled commands are
    archived: dedup, late outcomes, supersede/cancel and recovery then run against archived
    entries, and every check reads their full records rebuilt from the journal."""

    WINDOW = 2

    def __init__(self) -> None:
        self.window_before = domain_model.SETTLED_WINDOW
        domain_model.SETTLED_WINDOW = self.WINDOW
        super().__init__()

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            domain_model.SETTLED_WINDOW = self.window_before


TestArchivingCoreAgainstModel = ArchivingCoreMachine.TestCase
TestArchivingCoreAgainstModel.settings = PROFILE


# -- the model test can fail: each rule broken in the core turns a short program red ----------

Program = list[tuple[str, tuple[Any, ...]]]


def run_program(program: Program) -> None:
    """Run fixed steps of the machine, checking the invariant after each, then tear down."""
    machine = CoreMachine()
    try:
        machine.start()
        machine.check_state()
        for name, args in program:
            getattr(machine, name)(*args)
            machine.check_state()
    finally:
        machine.teardown()


COMPLETE_THEN_FAIL: Program = [("submit_plain", ()), ("report_progress", ()), ("report_progress", ()),
                               ("report_progress", ()), ("adapter_report", ((0, "failed"),))]
BROKEN_RULES: list[tuple[str, Program]] = [
    ("terminal_overwrite", COMPLETE_THEN_FAIL),
    ("lockdown_off", [("enter_lockdown", ("x",)), ("log_in", ("browser",)), ("submit_plain", ())]),
    ("session_check_off", [("enter_lockdown", ("x",)), ("exit_lockdown", (False,)), ("submit_plain", ())]),
    ("revocation_off", [("revoke_grants", ("rotated",)), ("submit_plain", ())]),
    ("grant_kinds_off", [("replace_grants", (("query",), "continue")), ("submit_plain", ())]),
    ("label_routing", [("refresh_session", ("shell-1/prod",)), ("submit_to_a_name_that_is_not_the_identity", ("label",))]),
    ("generation_regress", [("bump_generation", (1,)), ("old_generation_frame", ("session",))]),
    ("generation_check_off", [("bump_generation", (1,)), ("old_generation_frame", ("observation",))]),
    ("reply_correlation_off", [("reply", (False, "command"))]),
    ("expiry_off", [("submit_new", (("ls", 0.0, "none"),))]),
    ("lease_exclusive_off", [("lease_acquire", ("repo", 10.0)), ("lease_acquire", ("repo", 10.0))]),
    ("lease_expiry_off", [("lease_acquire", ("repo", 3.0)), ("advance_clock", (4.0,)),
                          ("lease_renew_or_release", ((0, "renew"),))]),
]


@pytest.mark.parametrize(("fault", "program"), BROKEN_RULES, ids=[fault for fault, _ in BROKEN_RULES])
def test_the_model_test_goes_red_when_the_core_breaks_a_rule(fault: str, program: Program) -> None:
    run_program(program)  # green on the real core
    with faults.injected(fault), pytest.raises(AssertionError):
        run_program(program)
