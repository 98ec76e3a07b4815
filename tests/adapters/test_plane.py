"""The adapter plane in process: every kind of bad frame, re-attachment, generations, leases.

Each bad frame must get an ``error`` answer with a precise code, leave one
``adapter.protocol_error`` audit record (or a ``session.stale_event`` one), and change nothing
else: the events journaled meanwhile are audit records only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from patchbay.core import CoreSettings
from patchbay.core.ports import ManualClock
from patchbay.domain.events import EventKind
from patchbay.errors import Refused
from patchbay.registry import CommandState, Failure, LeaseState, SessionConnectivityState
from patchbay.replay import replay_journal
from patchbay.wire import adapter as wire
from tests.core.harness import FakeAdapter, Harness, running_core

AUDIT_ONLY = {EventKind.protocol_error.value, EventKind.stale_event.value}


def kinds_after(h: Harness, lsn: int) -> list[str]:
    return [event.kind for event in h.core.events_after(lsn)]


async def raw(adapter: FakeAdapter, text: str) -> dict[str, Any]:
    assert adapter.connection is not None
    return dict(json.loads(await adapter.core.adapters.handle(adapter.connection, text)))


async def attached(h: Harness) -> FakeAdapter:
    await h.login()
    adapter = await h.adapter()
    await adapter.attach()
    assert (await adapter.session())["type"] == "ack"
    await h.submit("c1", "echo hi")
    assert (await adapter.report("c1", "delivered"))["type"] == "ack"
    adapter.received()
    return adapter


def frame(**fields: Any) -> str:
    return json.dumps(fields)


BAD_FRAMES = [
    ("not json", "{not json", "malformed"),
    ("not an object", "[1, 2]", "malformed"),
    ("unknown type", frame(type="deliver", seq=50), "malformed"),
    ("missing field", frame(type="report", seq=51, command_id="c1"), "malformed"),
    ("mistyped seq", frame(type="report", seq="52", command_id="c1", state="running"), "malformed"),
    ("negative seq", frame(type="report", seq=-1, command_id="c1", state="running"), "malformed"),
    ("zero seq", frame(type="report", seq=0, command_id="c1", state="running"), "malformed"),
    ("number as text", frame(type="session", seq=53, runtime_session_id=7, generation=1), "malformed"),
    ("oversized", frame(type="observation", seq=54, runtime_session_id="demo", generation=1,
                        observation={"type": "output", "text": "x" * (wire.MAX_FRAME_BYTES + 1)}), "oversized"),
    ("second hello", frame(type="hello", adapter_id="shell-1", credential="secret-shell-1", adapter_generation=1,
                           deployment_scope="x", manifest={"kinds": []}), "out_of_order"),
    ("unknown command", frame(type="report", seq=55, command_id="nope", state="completed"), "refused"),
    ("unknown session", frame(type="observation", seq=56, runtime_session_id="ghost", generation=1,
                              observation={"type": "output", "text": "x"}), "refused"),
    ("adapter may not report accepted", frame(type="report", seq=57, command_id="c1", state="accepted"), "refused"),
    ("illegal transition", frame(type="report", seq=58, command_id="c1", state="bogus-state"), "refused"),
    ("out of order", frame(type="report", seq=40, command_id="c1", state="running"), "out_of_order"),
    ("unknown lease", frame(type="lease", seq=59, op="renew", lease_id="lease-nope", ttl=5), "refused"),
    ("unknown elicitation", frame(type="elicitation_closed", seq=60, elicitation_id="eli-x", state="withdrawn"),
     "refused"),
    ("reply to an unknown command", frame(type="reply", seq=61, runtime_session_id="demo", generation=1,
                                          reply_id="rep-1", correlates_kind="command", correlates_id="nope",
                                          content={"text": "hi"}), "refused"),
]


@pytest.mark.parametrize(("label", "text", "code"), BAD_FRAMES, ids=[b[0] for b in BAD_FRAMES])
async def test_a_bad_frame_gets_an_error_and_an_audit_record_and_changes_nothing(
        tmp_path: Path, label: str, text: str, code: str) -> None:
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        if label == "out of order":
            assert (await raw(adapter, frame(type="report", seq=45, command_id="nope", state="running")))["code"] \
                == "refused"
        before_lsn = h.core.state.last_lsn
        before = (h.core.state.commands["c1"], h.core.state.sessions["shell-1/demo"])
        answer = await raw(adapter, text)
        assert answer["type"] == "error", label
        assert answer["code"] == code, answer
        assert answer["error"]
        assert kinds_after(h, before_lsn) == [EventKind.protocol_error.value]
        record = h.core.audit(kinds=[EventKind.protocol_error.value], limit=1)[0]
        assert record["details"]["code"] == code and record["details"]["adapter_id"] == "shell-1"
        assert (h.core.state.commands["c1"], h.core.state.sessions["shell-1/demo"]) == before
        # the attachment survives a bad frame: a good frame after it is applied
        adapter.seq = 100
        good = await adapter.report("c1", "running")
        assert good["type"] == "ack", good
        assert h.core.command("c1").state is CommandState.running


async def test_a_resent_frame_is_acknowledged_as_a_duplicate_and_not_applied_again(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        text = frame(type="observation", seq=adapter.seq + 1, runtime_session_id="demo", generation=1,
                     observation={"type": "output", "text": "once\n"})
        adapter.seq += 1
        assert (await raw(adapter, text)) == {"type": "ack", "seq": adapter.seq}
        lsn = h.core.state.last_lsn
        assert (await raw(adapter, text)) == {"type": "ack", "seq": adapter.seq, "duplicate": True}
        assert h.core.state.last_lsn == lsn
        # the same frame after a re-attach of the same process: still a duplicate
        await adapter.detach("network blip")
        welcome = await adapter.attach(generation=1)
        assert welcome["acked_seq"] == adapter.seq
        lsn = h.core.state.last_lsn
        assert (await raw(adapter, text))["duplicate"] is True
        assert h.core.state.last_lsn == lsn


async def test_an_older_adapter_generation_is_refused_and_audited(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await h.adapter()
        await adapter.attach(generation=3)
        lsn = h.core.state.last_lsn
        with pytest.raises(Refused, match="older"):
            await adapter.attach(generation=2)
        assert kinds_after(h, lsn) == [EventKind.protocol_error.value]
        assert h.core.state.adapters["shell-1"].adapter_generation == 3


async def test_wrong_credential_and_wrong_protocol_are_refused(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        await h.adapter("shell-1")
        intruder = FakeAdapter(h.core, "shell-1", "not-the-credential")
        with pytest.raises(Refused, match="wrong credential"):
            await intruder.attach()
        hello = wire.decode_frame(json.dumps({
            "type": "hello", "protocol": 2, "adapter_id": "shell-1", "credential": "secret-shell-1",
            "adapter_generation": 1, "deployment_scope": "x", "manifest": {"kinds": []}}))[1]
        with pytest.raises(Refused, match="protocol version 2"):
            await h.core.adapters.attach(hello)
        assert not h.core.state.adapters["shell-1"].attached
        refusals = h.core.audit(kinds=[EventKind.protocol_error.value])
        assert [r["details"]["code"] for r in refusals] == ["attach_refused", "attach_refused"]
        assert all("credential" not in r["details"] for r in refusals)


async def test_reattach_with_the_same_generation_resumes_delivery(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        await h.submit("c2", "sleep 1")
        await adapter.report("c2", "delivered")
        await adapter.report("c2", "running")
        await h.submit("c3", "echo queued")  # accepted, delivered while attached
        await adapter.detach("network blip")
        assert h.core.state.sessions["shell-1/demo"].connectivity is SessionConnectivityState.stale
        welcome = await adapter.attach(generation=1)
        assert welcome["acked_seq"] == adapter.seq
        redelivered = [f["command"]["command_id"] for f in adapter.received() if f["type"] == "deliver"]
        assert redelivered == ["c1", "c3"]  # accepted/delivered, in acceptance order; not the running c2
        assert h.core.command("c2").state is CommandState.running
        await adapter.session()
        assert h.core.state.sessions["shell-1/demo"].connectivity is SessionConnectivityState.live
        assert (await adapter.report("c2", "completed", result={"exit_code": 0}))["type"] == "ack"
        assert h.core.command("c2").state is CommandState.completed


async def test_a_higher_generation_settles_running_and_the_old_attachment_is_stale(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        old = await attached(h)
        await h.submit("c2", "sleep 1")
        await old.report("c2", "delivered")
        await old.report("c2", "running")
        lease = await old.send("lease", op="acquire", resource="dir:/srv/x", scope="shell-1", ttl=60)
        assert lease["type"] == "ack"
        new = FakeAdapter(h.core, "shell-1", "secret-shell-1")
        await new.attach(generation=2)
        assert old.connection is not None and old.connection.closed.is_set()
        assert old.connection.close_code == 4409 and "generation 2" in old.connection.close_reason
        c2 = h.core.command("c2")
        assert (c2.state, c2.failure) == (CommandState.failed, Failure.execution_outcome_unknown)
        assert [f["command"]["command_id"] for f in new.received() if f["type"] == "deliver"] == ["c1"]
        assert h.core.state.leases[lease["lease_id"]].state is LeaseState.released
        lsn = h.core.state.last_lsn
        late = await old.report("c1", "completed", result={"exit_code": 0})
        assert (late["type"], late["code"]) == ("error", Failure.stale_event.value)
        assert kinds_after(h, lsn) == [EventKind.protocol_error.value]
        assert h.core.command("c1").state is CommandState.delivered
        assert (await new.session())["type"] == "ack"
        assert (await new.report("c1", "running"))["type"] == "ack"


async def test_frames_for_an_old_session_generation_are_stale_events(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        assert (await adapter.session(generation=2))["type"] == "ack"
        lsn = h.core.state.last_lsn
        answer = await adapter.send("observation", runtime_session_id="demo", generation=1,
                                    observation={"type": "output", "text": "late"})
        assert (answer["type"], answer["code"]) == ("error", Failure.stale_event.value)
        assert kinds_after(h, lsn) == [EventKind.stale_event.value]
        lower = await adapter.session(generation=1)
        assert lower["type"] == "error"
        assert h.core.state.sessions["shell-1/demo"].generation == 2


async def test_failure_bounds_follow_the_configured_schedule(tmp_path: Path) -> None:
    clock = ManualClock()
    async with running_core(tmp_path, clock=clock, settings=CoreSettings(stale_after=1, offline_after=2)) as h:
        adapter = await attached(h)
        await h.submit("run", "sleep 100")
        await adapter.report("run", "delivered")
        await adapter.report("run", "running")
        await h.submit("queued", "echo later")
        lease = await adapter.send("lease", op="acquire", resource="dir:/srv/y", scope="shell-1", ttl=600)
        clock.advance(0.9)
        await h.settle()
        assert h.core.state.sessions["shell-1/demo"].connectivity is SessionConnectivityState.live
        clock.advance(0.2)
        await h.settle()
        assert h.core.state.sessions["shell-1/demo"].connectivity is SessionConnectivityState.stale
        assert h.core.command("run").state is CommandState.running
        clock.advance(2.0)
        await h.settle()
        assert h.core.state.sessions["shell-1/demo"].connectivity is SessionConnectivityState.offline
        outcomes = {c: (h.core.command(c).state, h.core.command(c).failure) for c in ("run", "queued", "c1")}
        assert outcomes == {"run": (CommandState.failed, Failure.execution_outcome_unknown),
                            "queued": (CommandState.failed, Failure.adapter_unavailable),
                            "c1": (CommandState.failed, Failure.adapter_unavailable)}
        assert h.core.state.leases[lease["lease_id"]].state is LeaseState.released
        assert all(c.terminal for c in h.core.state.commands.values())
    assert replay_journal(tmp_path / "journal.db").violations == []


async def test_a_second_lease_on_the_same_directory_names_its_holder(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        first = await adapter.send("lease", op="acquire", resource="dir:/srv/z", scope="shell-1", ttl=60)
        second = await adapter.send("lease", op="acquire", resource="dir:/srv/z", scope="shell-1", ttl=60)
        assert first["type"] == "ack" and first["lease_id"]
        assert (second["type"], second["code"]) == ("error", "lease_held")
        assert "adapter:shell-1#1" in second["error"]
        renewed = await adapter.send("lease", op="renew", lease_id=first["lease_id"], ttl=60)
        assert renewed["type"] == "ack"
        released = await adapter.send("lease", op="release", lease_id=first["lease_id"])
        assert released["type"] == "ack"
        again = await adapter.send("lease", op="acquire", resource="dir:/srv/z", scope="shell-1", ttl=60)
        assert again["type"] == "ack"


async def test_a_changed_manifest_is_audited_as_a_capability_change(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await h.adapter()
        await adapter.attach(generation=1, kinds=["instruct"])
        await adapter.detach("restart")
        await adapter.attach(generation=1, kinds=["instruct"])
        assert h.core.audit(kinds=[EventKind.adapter_capabilities_changed.value]) == []
        await adapter.detach("upgrade")
        await adapter.attach(generation=2, kinds=["instruct", "query"])
        changes = h.core.audit(kinds=[EventKind.adapter_capabilities_changed.value])
        assert len(changes) == 1 and changes[0]["details"]["manifest"]["kinds"] == ["instruct", "query"]
        assert changes[0]["details"]["previous"]["kinds"] == ["instruct"]
        assert h.core.state.adapters["shell-1"].manifest["kinds"] == ["instruct", "query"]
    assert replay_journal(tmp_path / "journal.db").violations == []


async def test_elicitations_and_replies_from_the_live_generation_are_recorded(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        opened = await adapter.send("elicitation", runtime_session_id="demo", generation=1, elicitation_id="eli-1",
                                    kind="approval", command_id="c1", title="Run bash?", body="rm -rf build")
        assert opened["type"] == "ack"
        assert h.core.state.elicitations["eli-1"].state.value == "pending"
        assert (await adapter.send("elicitation_closed", elicitation_id="eli-1", state="withdrawn",
                                   reason="the runtime moved on"))["type"] == "ack"
        assert h.core.state.elicitations["eli-1"].state.value == "withdrawn"
        lsn = h.core.state.last_lsn
        await adapter.send("elicitation_closed", elicitation_id="eli-1", state="expired")  # a race: a no-op
        assert h.core.state.elicitations["eli-1"].state.value == "withdrawn"  # resolved exactly once
        assert EventKind.elicitation_resolved.value not in kinds_after(h, lsn)
        reply = await adapter.send("reply", runtime_session_id="demo", generation=1, reply_id="rep-1",
                                   correlates_kind="command", correlates_id="c1", content={"text": "done"})
        assert reply["type"] == "ack"
        assert [e.kind for e in h.core.events_after(h.core.state.last_lsn - 1)] == [EventKind.reply_recorded.value]
        posing = await adapter.send("reply", runtime_session_id="demo", generation=1, reply_id="c1",
                                    correlates_kind="command", correlates_id="c1", content={})
        assert (posing["type"], posing["code"]) == ("error", "refused")  # a reply cannot pose as a command



async def test_reattaching_with_more_queued_commands_than_the_outbox_holds_is_paced_not_cut_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("patchbay.core._connection.OUTBOX_CAPACITY", 80)  # 16 slots for deliveries
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        await adapter.detach("network blip")
        queued = [f"q{index}" for index in range(120)]
        for command_id in queued:
            await h.submit(command_id, "true")  # the session is stale, not offline: accepted
        await adapter.attach(generation=1)
        connection = adapter.connection
        assert connection is not None
        delivered = [f["command"]["command_id"] for f in adapter.received() if f["type"] == "deliver"]
        assert not connection.closed.is_set(), connection.close_reason
        assert delivered == ["c1", *queued]  # every one, once, in acceptance order
        assert not connection.backlog
