"""The actor runtime: mailboxes, ask, one_for_one supervision, intensity, backoff, passivation.

Time-dependent behaviour (timeouts, backoff, idle passivation) runs on trio's autojump clock,
so these tests take no real time and do not depend on the machine's load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from patchbay.actors import (
    Actor,
    ActorCrashed,
    ActorStopped,
    ActorSystem,
    AskTimeout,
    ChildSpec,
    Intensity,
    MailboxFull,
    Restart,
    Supervisor,
    SupervisorEscalation,
)
from patchbay.journal import JournalStore, NewEvent


class Recorder(Actor[Any]):
    """Keeps what it handled; 'crash' raises, ('sleep', s) waits, 'stop' stops it."""

    starts: list[float]

    def __init__(self, log: list[Any], starts: list[float] | None = None) -> None:
        self.log = log
        self.starts = starts if starts is not None else []
        self.handled: list[Any] = []

    async def on_start(self) -> None:
        self.starts.append(trio.current_time())

    async def handle(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("boom")
        if isinstance(message, tuple) and message[0] == "sleep":
            await trio.sleep(message[1])
        if message == "stop":
            self.stop()
        self.handled.append(message)
        self.log.append(message)
        return ("handled", message, len(self.handled))


async def start(nursery: trio.Nursery, supervisor: Supervisor) -> None:
    await nursery.start(supervisor.run)


async def test_ask_answers_with_the_handlers_value_and_tell_is_handled_in_order(autojump_clock: Any) -> None:
    log: list[Any] = []
    supervisor = Supervisor("test")
    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)
        ref = supervisor.start_child(ChildSpec("r", lambda: Recorder(log)))
        for n in range(5):
            await ref.tell(n)
        assert await ref.ask("last", timeout=1) == ("handled", "last", 6)
        assert log == [0, 1, 2, 3, 4, "last"]
        nursery.cancel_scope.cancel()


async def test_the_mailbox_is_bounded(autojump_clock: Any) -> None:
    supervisor = Supervisor("test")
    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)
        ref = supervisor.start_child(ChildSpec("r", lambda: Recorder([]), mailbox_size=2))
        await ref.tell(("sleep", 10))  # taken by the actor, which then sleeps
        await trio.testing.wait_all_tasks_blocked()
        ref.tell_nowait(1)
        ref.tell_nowait(2)
        with pytest.raises(MailboxFull):
            ref.tell_nowait(3)
        with trio.move_on_after(1) as waited:  # tell waits for room instead of growing the queue
            await ref.tell(3)
        assert waited.cancelled_caught
        nursery.cancel_scope.cancel()


async def test_ask_times_out_while_the_actor_is_busy_and_the_message_is_still_handled_later(
        autojump_clock: Any) -> None:
    log: list[Any] = []
    supervisor = Supervisor("test")
    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)
        ref = supervisor.start_child(ChildSpec("r", lambda: Recorder(log)))
        await ref.tell(("sleep", 5))
        with pytest.raises(AskTimeout, match="did not answer within 1"):
            await ref.ask("queued", timeout=1)
        await trio.sleep(10)
        assert log == [("sleep", 5), "queued"]  # AskTimeout never means "not done"
        nursery.cancel_scope.cancel()


async def test_one_for_one_restarts_only_the_crashed_child_on_a_fresh_instance_with_its_mailbox(
        autojump_clock: Any) -> None:
    instances: list[Recorder] = []
    sibling_log: list[Any] = []

    def crashing() -> Recorder:
        instances.append(Recorder([]))
        return instances[-1]

    supervisor = Supervisor("test")
    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)
        sibling = supervisor.start_child(ChildSpec("sibling", lambda: Recorder(sibling_log)))
        ref = supervisor.start_child(ChildSpec("crashy", crashing, restart=Restart.transient))
        await sibling.ask("before", timeout=1)
        await ref.ask("one", timeout=1)
        ref.tell_nowait("crash")
        ref.tell_nowait("queued behind the crash")
        with pytest.raises(ActorCrashed, match="boom"):
            await ref.ask("crash", timeout=5)
        assert await ref.ask("after", timeout=5) == ("handled", "after", 1)  # a fresh instance
        assert await sibling.ask("still here", timeout=1) == ("handled", "still here", 2)
        assert len(instances) == 3 and supervisor.restarts == 2
        assert instances[1].handled == ["queued behind the crash"]  # the mailbox survived the crash
        assert ref.alive and supervisor.child("sibling") is sibling
        nursery.cancel_scope.cancel()


async def test_restart_types_decide_what_comes_back(autojump_clock: Any) -> None:
    starts: dict[str, list[float]] = {"permanent": [], "transient": [], "temporary": []}
    supervisor = Supervisor("test")
    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)
        refs = {name: supervisor.start_child(ChildSpec(name, lambda n=name: Recorder([], starts[n]),  # type: ignore[misc]
                                                        restart=Restart(name)))
                for name in starts}
        for ref in refs.values():
            await ref.ask("stop", timeout=1)  # a normal stop
        await trio.sleep(1)
        assert [len(starts[n]) for n in starts] == [2, 1, 1]  # only permanent comes back after a stop
        assert refs["permanent"].alive and not refs["transient"].alive and not refs["temporary"].alive
        temporary = supervisor.start_child(ChildSpec("temp2", lambda: Recorder([]), restart=Restart.temporary))
        with pytest.raises(ActorCrashed):
            await temporary.ask("crash", timeout=1)
        await trio.sleep(1)
        assert not temporary.alive  # temporary: never restarted, even after a crash
        nursery.cancel_scope.cancel()


async def test_restarts_back_off_exponentially_up_to_the_maximum(autojump_clock: Any) -> None:
    starts: list[float] = []
    supervisor = Supervisor("test", Intensity(max_restarts=100, within=1000, backoff_initial=1.0, backoff_max=8.0))
    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)
        ref = supervisor.start_child(ChildSpec("r", lambda: Recorder([], starts)))
        for _ in range(6):
            with pytest.raises(ActorCrashed):
                await ref.ask("crash", timeout=100)
        await trio.sleep(100)
        gaps = [round(b - a, 3) for a, b in zip(starts, starts[1:], strict=False)]
        assert gaps == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
        nursery.cancel_scope.cancel()


async def test_exceeding_the_restart_intensity_escalates_to_the_supervisors_owner(autojump_clock: Any) -> None:
    log: list[Any] = []
    supervisor = Supervisor("core", Intensity(max_restarts=3, within=10, backoff_initial=0.1, backoff_max=0.1))
    escalations: list[SupervisorEscalation] = []
    try:
        async with trio.open_nursery() as nursery:
            await start(nursery, supervisor)
            healthy = supervisor.start_child(ChildSpec("healthy", lambda: Recorder(log)))
            flaky = supervisor.start_child(ChildSpec("flaky", lambda: Recorder([])))
            for _ in range(10):
                try:
                    await flaky.ask("crash", timeout=5)
                except (ActorCrashed, ActorStopped):
                    pass
            await trio.sleep_forever()
    except* SupervisorEscalation as group:
        escalations.extend(e for e in group.exceptions if isinstance(e, SupervisorEscalation))
    (escalation,) = escalations
    assert "child flaky exceeded its restart intensity" in str(escalation)
    assert escalation.child == "flaky" and isinstance(escalation.last_error, RuntimeError)
    assert supervisor.restarts == 3 and not healthy.alive  # the supervisor gave up on all its children


async def test_crashes_spread_out_in_time_stay_within_the_intensity(autojump_clock: Any) -> None:
    supervisor = Supervisor("core", Intensity(max_restarts=2, within=10, backoff_initial=0.1, backoff_max=0.1))
    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)
        flaky = supervisor.start_child(ChildSpec("flaky", lambda: Recorder([])))
        for _ in range(6):
            with pytest.raises(ActorCrashed):
                await flaky.ask("crash", timeout=5)
            await trio.sleep(6)
        assert supervisor.restarts == 6 and flaky.alive
        nursery.cancel_scope.cancel()


# -- passivation: an event-sourced counter that recovers from a real journal ---------------


class Counter(Actor[Any]):
    """decide -> persist -> apply; ``on_start`` recovers the count from the journal."""

    def __init__(self, store: JournalStore, name: str, activations: list[int]) -> None:
        self.store = store
        self.entity = name
        self.count = 0
        self.activations = activations

    async def on_start(self) -> None:
        for event in self.store.read(entity=self.entity):
            self.count = self.apply(self.count, event.payload)
        self.activations.append(self.count)

    @staticmethod
    def apply(count: int, payload: dict[str, Any]) -> int:
        return count + int(payload["by"])

    async def handle(self, message: Any) -> Any:
        if message == "read":
            return self.count
        payload = {"by": int(message)}  # decide
        self.store.append_batch([NewEvent(kind="counter.added", entity=self.entity, payload=payload, ts=0.0)])
        self.count = self.apply(self.count, payload)  # apply after persist
        return self.count


async def test_idle_actors_passivate_and_come_back_from_the_journal(tmp_path: Path, autojump_clock: Any) -> None:
    store = JournalStore.create(tmp_path / "journal.db", "dom-actors")
    activations: list[int] = []
    supervisor = Supervisor("entities")
    system = ActorSystem(supervisor)

    def spec() -> ChildSpec:
        return ChildSpec("counter:a", lambda: Counter(store, "counter:a", activations), idle_timeout=60)

    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)
        first = system.get_or_start("counter:a", spec)
        assert await first.ask(5, timeout=1) == 5
        assert await first.ask(2, timeout=1) == 7
        await trio.sleep(59)
        assert system.lookup("counter:a") is first  # not idle long enough yet
        await trio.sleep(2)
        assert system.lookup("counter:a") is None and not first.alive and system.live_count == 0
        with pytest.raises(ActorStopped):
            await first.ask("read", timeout=1)  # an old reference says so; it never loses silently
        again = system.get_or_start("counter:a", spec)
        assert await again.ask("read", timeout=1) == 7
        assert activations == [0, 7] and system.activations == 2
        nursery.cancel_scope.cancel()
    store.close()


async def test_a_message_racing_passivation_is_handled_or_refused_never_lost(autojump_clock: Any) -> None:
    supervisor = Supervisor("entities")
    logs: dict[int, list[Any]] = {n: [] for n in range(100)}
    refused: set[int] = set()
    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)
        refs = {n: supervisor.start_child(ChildSpec(f"a{n}", lambda n=n: Recorder(logs[n]),  # type: ignore[misc]
                                                     idle_timeout=10)) for n in logs}

        async def send_at_the_idle_deadline(n: int) -> None:
            await trio.sleep(10)
            try:
                refs[n].tell_nowait("late")
            except ActorStopped:
                refused.add(n)

        async with trio.open_nursery() as senders:
            for n in logs:
                senders.start_soon(send_at_the_idle_deadline, n)
        await trio.sleep(30)
        handled = {n for n, log in logs.items() if log == ["late"]}
        assert handled | refused == set(logs) and not handled & refused
        assert supervisor.children == {}  # everything passivated in the end
        nursery.cancel_scope.cancel()
