"""An adapter connection's frames, pipelined (``AdapterPlane.serve``): frames are decided in
order without waiting for the previous one's commit, and answered in order once durable.

The transport is an in-memory channel (frames in) and a list (answers out); commits are held
or failed inside the journal's worker thread, where the real ``append_batch`` runs.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
import trio.testing

from patchbay.core import CoreSettings
from patchbay.core._connection import FRAME_WINDOW
from patchbay.domain.events import EventKind
from patchbay.journal import JournalStore
from patchbay.registry import CommandState, SessionActivityState
from patchbay.replay import replay_journal
from patchbay.wire import adapter as wire
from tests.core.harness import FakeAdapter, Harness, running_core
from tests.journal.test_store import poison


class Transport:
    """Frames in through a channel the plane reads; answers collected as they are sent."""

    def __init__(self) -> None:
        self.inbound, self._inbox = trio.open_memory_channel[str](math.inf)
        self.answers: list[dict[str, Any]] = []
        self._sent = trio.Event()

    async def send(self, text: str) -> None:
        self.answers.append(json.loads(text))
        self._sent.set()

    async def answered(self, count: int) -> None:
        """Until ``count`` answers were sent."""
        while len(self.answers) < count:
            self._sent = trio.Event()
            await self._sent.wait()

    async def answered_through(self, seq: int) -> None:
        """Until the answer naming ``seq`` was sent."""
        while not any(answer.get("seq") == seq for answer in self.answers):
            self._sent = trio.Event()
            await self._sent.wait()

    async def receive(self) -> str:
        return await self._inbox.receive()

    def unread(self) -> int:
        return self.inbound.statistics().current_buffer_used


class Hold:
    """Holds every commit in the journal's worker thread until released (a test seam on the
    store the writer uses)."""

    def __init__(self, store: JournalStore) -> None:
        self.released = threading.Event()
        self.released.set()
        self.inside = threading.Event()  # a commit reached the worker thread
        real: Callable[..., Any] = store.append_batch

        def append_batch(events: Any) -> Any:
            self.inside.set()
            self.released.wait(timeout=30)
            return real(events)

        store.append_batch = append_batch  # type: ignore[method-assign]

    def hold(self) -> None:
        self.released.clear()

    def release(self) -> None:
        self.released.set()

    async def held(self) -> None:
        """Until a commit is held in the worker thread."""
        await trio.to_thread.run_sync(self.inside.wait, 30)


def observation(seq: int, text: str, activity: str | None = None) -> str:
    return json.dumps({"type": "observation", "seq": seq, "runtime_session_id": "demo", "generation": 1,
                       "observation": {"type": "output", "text": text}, "activity": activity})


def report(seq: int, command_id: str, state: str) -> str:
    return json.dumps({"type": "report", "seq": seq, "command_id": command_id, "state": state})


async def attached(h: Harness) -> FakeAdapter:
    await h.login()
    adapter = await h.adapter()
    await adapter.attach()
    assert (await adapter.session(activity="idle"))["type"] == "ack"
    return adapter


def observed(h: Harness) -> list[tuple[int, str]]:
    """(frame seq, text) of every journaled observation, in LSN order."""
    return [(event.payload["adapter_frame"][2], event.payload["observation"]["text"])
            for event in h.core.events_after(0) if event.kind == EventKind.session_observation.value]


async def test_frames_sent_without_waiting_are_decided_in_order_and_acked_in_order(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        await h.submit("c1", "make")
        adapter.received()
        transport = Transport()
        first = adapter.seq + 1
        frames = []
        # Each frame depends on the ones before it: 'running' is legal only after 'delivered',
        # and an activity changes only if the previous frame left it different.
        for index in range(2 * FRAME_WINDOW + 10):
            seq = first + index
            if index == 3:
                frames.append(report(seq, "c1", "delivered"))
            elif index == 4:
                frames.append(report(seq, "c1", "running"))
            elif index == 2 * FRAME_WINDOW:
                frames.append(report(seq, "c1", "completed"))
            else:
                frames.append(observation(seq, f"delta {seq}\n", "working" if index % 3 else "idle"))
        for text in frames:
            transport.inbound.send_nowait(text)
        assert adapter.connection is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(h.core.adapters.serve, adapter.connection, transport.receive, transport.send)
            await transport.answered(len(frames))
            nursery.cancel_scope.cancel()
        assert transport.answers == [{"type": "ack", "seq": first + i} for i in range(len(frames))]
        expected = [(first + i, f"delta {first + i}\n") for i in range(len(frames))
                    if i not in (3, 4, 2 * FRAME_WINDOW)]
        assert observed(h) == expected
        assert [t.state for t in h.core.command("c1").history] == [
            CommandState.accepted, CommandState.delivered, CommandState.running, CommandState.completed]
        activities = [event.payload["activity"] for event in h.core.events_after(0)
                      if event.kind == EventKind.session_activity.value]
        changes = [("working" if i % 3 else "idle") for i in range(len(frames)) if i not in (3, 4, 2 * FRAME_WINDOW)]
        collapsed = [a for k, a in enumerate(changes) if a != (changes[k - 1] if k else "idle")]
        assert activities == collapsed
        assert replay_journal(h.path).violations == []


async def test_no_answer_before_the_commit_is_durable_and_the_window_stops_reading(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        hold = Hold(h.core.journal.store)
        transport = Transport()
        first = adapter.seq + 1
        count = 2 * FRAME_WINDOW
        for index in range(count):
            transport.inbound.send_nowait(observation(first + index, f"delta {index}\n"))
        assert adapter.connection is not None
        committed_before = h.core.state.last_lsn
        hold.hold()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(h.core.adapters.serve, adapter.connection, transport.receive, transport.send)
            await hold.held()
            await trio.testing.wait_all_tasks_blocked()
            assert transport.answers == []  # decided, but nothing is durable yet
            assert h.core.state.last_lsn == committed_before  # nothing visible either
            assert adapter.connection.in_flight == FRAME_WINDOW  # the window is full...
            assert transport.unread() == count - FRAME_WINDOW  # ...so the rest is left unread
            assert h.core.journal.speculative.last_lsn == committed_before + FRAME_WINDOW
            hold.release()
            await transport.answered(count)
            nursery.cancel_scope.cancel()
        assert transport.answers == [{"type": "ack", "seq": first + i} for i in range(count)]
        assert adapter.connection.in_flight == 0
        assert [seq for seq, _ in observed(h)] == [first + i for i in range(count)]


async def test_the_frames_of_a_failed_commit_are_not_answered_and_not_applied(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        first = adapter.seq + 1
        before = h.core.state.last_lsn
    poison(tmp_path / "journal.db")  # an insert mentioning 'poison' aborts its transaction
    transport = Transport()
    errors: list[BaseException] = []
    try:
        async with running_core(tmp_path, settings=CoreSettings(stale_after=1e6, offline_after=1e6)) as h:
            adapter.core = h.core
            await adapter.attach()
            hold = Hold(h.core.journal.store)
            assert adapter.connection is not None
            hold.hold()
            transport.inbound.send_nowait(observation(first, "fine 1\n"))  # the batch in the writer
            async with trio.open_nursery() as nursery:
                nursery.start_soon(h.core.adapters.serve, adapter.connection, transport.receive, transport.send)
                await hold.held()  # its commit is inside the writer thread
                await trio.testing.wait_all_tasks_blocked()
                # queued behind it, committed together in one batch that will fail
                for seq, text in ((first + 1, "fine 2\n"), (first + 2, "poison\n"), (first + 3, "fine 3\n")):
                    transport.inbound.send_nowait(observation(seq, text))
                await trio.testing.wait_all_tasks_blocked()
                assert adapter.connection.in_flight == 4 and transport.answers == []
                hold.release()
                await trio.sleep_forever()
    except* Exception as group:
        errors.extend(group.exceptions)
    assert errors, "a failed commit ends the attachment (its frames are never answered)"
    assert transport.answers == [{"type": "ack", "seq": first}]  # none of the failed batch
    replayed = replay_journal(tmp_path / "journal.db")
    assert replayed.violations == []
    texts = [event.payload["observation"]["text"] for event in JournalStore.open(tmp_path / "journal.db", read_only=True).read()
             if event.kind == EventKind.session_observation.value]
    assert texts == ["fine 1\n"]
    assert replayed.state.last_lsn > before
    assert replayed.state.adapter_frames["shell-1"] == (1, first)


async def test_a_frame_resent_while_its_commit_is_in_flight_is_acked_once_durable_and_applied_once(
        tmp_path: Path) -> None:
    async with running_core(tmp_path, settings=CoreSettings(stale_after=15, offline_after=30,
                                                            ask_timeout=0.2)) as h:
        adapter = await attached(h)
        hold = Hold(h.core.journal.store)
        transport = Transport()
        seq = adapter.seq + 1
        text = observation(seq, "once\n", "working")
        assert adapter.connection is not None
        hold.hold()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(h.core.adapters.serve, adapter.connection, transport.receive, transport.send)
            transport.inbound.send_nowait(text)
            await transport.answered(1)  # the commit is held past the ask timeout
            retry = transport.answers[0]
            assert (retry["type"], retry["code"], retry["seq"]) == ("error", "retry", seq)
            transport.inbound.send_nowait(text)  # the adapter sends it again
            transport.inbound.send_nowait(observation(seq + 1, "next\n"))
            await trio.testing.wait_all_tasks_blocked()
            assert len(transport.answers) == 1  # the duplicate waits for the held commit
            hold.release()
            await transport.answered(3)
            nursery.cancel_scope.cancel()
        assert transport.answers[1:] == [{"type": "ack", "seq": seq, "duplicate": True},
                                         {"type": "ack", "seq": seq + 1}]
        assert observed(h) == [(seq, "once\n"), (seq + 1, "next\n")]
        assert h.core.state.sessions["shell-1/demo"].activity is SessionActivityState.working


async def test_an_adapter_that_takes_ack_ranges_gets_one_ack_for_a_run_committed_together(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        hello = wire.decode_frame(json.dumps({
            "type": "hello", "protocol": 1, "adapter_id": "shell-1", "credential": adapter.credential,
            "adapter_generation": 1, "deployment_scope": "test-host", "manifest": {"kinds": ["instruct"]},
            "ack_ranges": True}))[1]
        connection = adapter.connection = await h.core.adapters.attach(hello)
        assert connection.ack_ranges
        hold = Hold(h.core.journal.store)
        transport = Transport()
        first = adapter.seq + 1
        count = FRAME_WINDOW
        hold.hold()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(h.core.adapters.serve, connection, transport.receive, transport.send)
            transport.inbound.send_nowait(observation(first, "alone\n"))  # held in the writer
            await hold.held()
            await trio.testing.wait_all_tasks_blocked()
            for index in range(1, count):  # queued behind it: the next group commit
                transport.inbound.send_nowait(observation(first + index, f"delta {index}\n"))
            transport.inbound.send_nowait(report(first + count, "nope", "completed"))  # refused
            await trio.testing.wait_all_tasks_blocked()
            assert transport.answers == []
            hold.release()
            await transport.answered_through(first + count)
            nursery.cancel_scope.cancel()
        *acks, refused = transport.answers
        # The held frame's commit and the next group commit can both be durable before the
        # answers go out (the writer thread commits back to back): then one range holds all.
        assert len(acks) <= 2 and all(set(ack) <= {"type", "seq", "first"} and ack["type"] == "ack" for ack in acks)
        assert [seq for ack in acks for seq in range(ack.get("first", ack["seq"]), ack["seq"] + 1)] == [
            first + index for index in range(count)]  # each frame acked once, in order
        assert (refused["seq"], refused["code"]) == (first + count, "refused")
        assert [seq for seq, _ in observed(h)] == [first + i for i in range(count)]


def batch(*frames: str) -> str:
    return json.dumps({"type": "batch", "frames": [json.loads(frame) for frame in frames]})


async def test_a_batch_is_taken_frame_by_frame_in_order_even_past_the_window(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        await h.submit("c1", "make")
        first = adapter.seq + 1
        count = FRAME_WINDOW + 10  # more frames than the window: the batch waits for room midway
        frames = [observation(first + i, f"delta {i}\n") for i in range(count)]
        frames[3] = report(first + 3, "c1", "delivered")  # depends on the frames before it
        frames[4] = report(first + 4, "c1", "running")
        transport = Transport()
        for start in range(0, count, wire.BATCH_MAX):
            transport.inbound.send_nowait(batch(*frames[start:start + wire.BATCH_MAX]))
        assert adapter.connection is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(h.core.adapters.serve, adapter.connection, transport.receive, transport.send)
            await transport.answered(count)
            nursery.cancel_scope.cancel()
        assert transport.answers == [{"type": "ack", "seq": first + i} for i in range(count)]
        assert observed(h) == [(first + i, f"delta {i}\n") for i in range(count) if i not in (3, 4)]
        assert h.core.command("c1").state is CommandState.running


async def test_a_bad_frame_in_a_batch_is_refused_alone_and_a_bad_batch_whole(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        adapter = await attached(h)
        first = adapter.seq + 1
        transport = Transport()
        bad_inner = json.dumps({"type": "observation", "seq": first + 1, "runtime_session_id": "demo"})  # no generation
        hello = json.dumps({"type": "hello", "protocol": 1})
        transport.inbound.send_nowait(batch(observation(first, "one\n"), bad_inner, hello,
                                            observation(first + 1, "two\n")))
        too_many = {"type": "batch", "frames": [json.loads(observation(first + 2 + i, "x\n"))
                                                for i in range(wire.BATCH_MAX + 1)]}
        for whole in (json.dumps(too_many), '{"type": "batch", "frames": []}', '{"type": "batch", "frames": 7}'):
            transport.inbound.send_nowait(whole)
        transport.inbound.send_nowait(observation(first + 2, "three\n"))
        assert adapter.connection is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(h.core.adapters.serve, adapter.connection, transport.receive, transport.send)
            await transport.answered(8)
            nursery.cancel_scope.cancel()
        codes = [(a["type"], a.get("seq"), a.get("code")) for a in transport.answers]
        assert codes == [("ack", first, None), ("error", None, "malformed"), ("error", None, "malformed"),
                         ("ack", first + 1, None), ("error", None, "malformed"), ("error", None, "malformed"),
                         ("error", None, "malformed"), ("ack", first + 2, None)]
        assert "cannot be part of a batch" in transport.answers[2]["error"]
        assert "at most 64" in transport.answers[4]["error"]
        assert observed(h) == [(first, "one\n"), (first + 1, "two\n"), (first + 2, "three\n")]
        audited = [e for e in h.core.events_after(0) if e.kind == EventKind.protocol_error.value]
        assert len(audited) == 5


async def test_the_welcome_says_how_many_frames_a_batch_may_hold(tmp_path: Path) -> None:
    async with running_core(tmp_path) as h:
        await h.login()
        adapter = await h.adapter()
        welcome = await adapter.attach()
        assert (welcome["type"], welcome["batch_max"]) == ("welcome", wire.BATCH_MAX)
