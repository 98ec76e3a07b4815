"""The two websockets: the client stream (``/api/stream``) and the adapter link (``/adapter/v1``).

Client stream: the client sends its cursor (the LSN up to which it has authoritative
knowledge). The server subscribes to the bus *first*, then sends the journal events after the
cursor (verdict ``ok``) — or, when the cursor is unknown, from another authority domain, or too
far behind, a snapshot materialized at the current LSN (verdict ``snapshot``) — and then live
events, skipping any LSN already sent. Cost grows with the missed events, not with history.
A client too slow for the bus is cut off with close code 4408 and resumes from its cursor.
"""

from __future__ import annotations

import json
from typing import Any

import trio

from patchbay import faults
from patchbay.core import AdapterConnection, Core
from patchbay.domain.events import AUDIT_REDACTED_FIELDS, EventKind
from patchbay.errors import ProtocolError, Refused
from patchbay.journal import StoredEvent
from patchbay.registry import ElicitationState, ResumeVerdict
from patchbay.web._fast import encode
from patchbay.web._guard import Caller
from patchbay.web._input import InputRefused, int_arg
from patchbay.wire import adapter as wire
from patchbay.wire import api
from patchbay.wire._admit import INT_MAX

MAX_BACKLOG = 5_000
SEND_INTERVAL = 0.01  # seconds between two events messages to one subscriber, at least
HELLO_TIMEOUT = 10.0
HIDDEN_FIELDS = AUDIT_REDACTED_FIELDS - {"payload", "content"}


def event_view(event: StoredEvent) -> dict[str, Any]:
    payload = {k: v for k, v in event.payload.items() if k not in HIDDEN_FIELDS}
    return {"lsn": event.lsn, "kind": event.kind, "ts": event.ts, "entity": event.entity, "payload": payload}


def _with_views(core: Core, event: StoredEvent) -> dict[str, Any]:
    """An event plus the current view of the record it changed (clients keep the max revision)."""
    view = event_view(event)
    state = core.state
    entity_type, _, entity_id = event.entity.partition(":")
    if entity_type == "command" and entity_id in state.commands:
        view["command"] = api.command_view(state.commands[entity_id], state)
    elif entity_type == "session" and entity_id in state.sessions:
        if event.kind != EventKind.session_observation:
            view["session"] = api.session_view(state.sessions[entity_id], state)
    elif entity_type == "elicitation" and entity_id in state.elicitations:
        view["elicitation"] = api.elicitation_view(state.elicitations[entity_id])
        command_id = state.elicitations[entity_id].command_id
        if command_id and command_id in state.commands:
            view["command"] = api.command_view(state.commands[command_id], state)
    return view


class EncodedEvents:
    """Each committed event's stream view, encoded once and shared by every subscriber.

    The view (the event plus the current view of the record it changed, see ``_with_views``)
    does not depend on who reads it, so the first subscriber to send an event encodes it and
    the others send the same text; the cost of an event no longer grows with the subscribers.
    A later subscriber may get a view a few revisions older than the state at its send time;
    clients keep the highest revision of each record, and the event that made the newer
    revision carries it. The newest ``capacity`` encodings are kept.
    """

    def __init__(self, core: Core, capacity: int = 2_048) -> None:
        self._core = core
        self._capacity = capacity
        self._texts: dict[int, str] = {}

    def text(self, event: StoredEvent) -> str:
        text = self._texts.get(event.lsn)
        if text is None:
            text = encode(_with_views(self._core, event)).decode()
            self._texts[event.lsn] = text
            if len(self._texts) > self._capacity:
                del self._texts[next(iter(self._texts))]
        return text

    def message(self, events: list[StoredEvent]) -> str:
        """One ``events`` message, joined from the shared encodings."""
        return '{"type":"events","events":[' + ",".join([self.text(e) for e in events]) + "]}"


def snapshot(core: Core) -> dict[str, Any]:
    state = core.state
    recent = sorted(state.commands.values(), key=lambda c: c.accepted_lsn, reverse=True)[:300]
    live = [c for c in state.commands.values() if not c.terminal and c not in recent]
    return {
        "type": "snapshot",
        "lsn": state.last_lsn,
        "authority_domain_id": core.domain_id,
        "core_generation": core.core_generation,
        "sessions": [api.session_view(s, state) for s in state.sessions.values()],
        "commands": [api.command_view(c, state) for c in (*recent, *live)],
        "elicitations": [api.elicitation_view(e) for e in state.elicitations.values()
                         if e.state is ElicitationState.pending or e.revision > state.last_lsn - 5_000],
        "lockdown": {"active": state.lockdown.active, "reason": state.lockdown.reason,
                     "since_ts": state.lockdown.since_ts},
    }


async def serve_stream(core: Core, ws: Any, caller: Caller, encoded: EncodedEvents) -> None:
    """The client stream until the client leaves, falls behind, or the core stops (then the
    websocket is closed with 1001 and a reason; the client resumes from its cursor)."""
    stopping = False
    async with trio.open_nursery() as nursery:
        async def watch_stopping() -> None:
            nonlocal stopping
            await core.stopping.wait()
            stopping = True
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch_stopping)
        await _stream_events(core, ws, caller, encoded)
        nursery.cancel_scope.cancel()
    if stopping:
        with trio.move_on_after(CLOSE_TIMEOUT):
            await ws.close(1001, "patchbay core is shutting down")


async def _stream_events(core: Core, ws: Any, caller: Caller, encoded: EncodedEvents) -> None:
    await ws.accept()
    try:  # a cursor that is not an LSN (not an integer, past 64 bits) is unknown: a snapshot
        cursor = int_arg(ws.args, "cursor", -1, low=-1, high=INT_MAX)
    except InputRefused:
        cursor = -1
    domain = ws.args.get("domain")
    with core.bus.subscribe(capacity=8192) as subscription:
        head = core.state.last_lsn
        if domain == core.domain_id and cursor > head:  # the client saw events the journal lacks
            core.history_beyond_head("a client's stream cursor", cursor)
        same_domain = domain in (None, "", core.domain_id) or faults.active("stale_cursor_ok")
        fresh = (0 <= cursor <= head or (cursor > head and faults.active("stale_snapshot_ok"))) \
            and head - cursor <= MAX_BACKLOG and same_domain
        verdict = ResumeVerdict.ok if fresh else ResumeVerdict.snapshot
        await ws.send(json.dumps({"type": "hello", "verdict": verdict.value, "lsn": head, "cursor": cursor,
                                  "authority_domain_id": core.domain_id,
                                  "core_generation": core.core_generation}))
        sent = cursor
        if fresh:
            backlog = list(core.events_after(cursor))
            for start in range(0, len(backlog), 200):
                await ws.send(encoded.message(backlog[start:start + 200]))
            if backlog:
                sent = backlog[-1].lsn
        else:
            snap = snapshot(core)
            await ws.send(json.dumps(snap))
            sent = snap["lsn"]
        await ws.send(json.dumps({"type": "live", "lsn": max(sent, head)}))
        sent = max(sent, head)
        last_send = trio.current_time() - SEND_INTERVAL
        async for event in subscription.receive:
            if event.lsn <= sent:
                continue
            # At most one message per SEND_INTERVAL: under a burst (a streaming session) the
            # events that arrive meanwhile go out together instead of one message each.
            if trio.current_time() < last_send + SEND_INTERVAL:
                await trio.sleep_until(last_send + SEND_INTERVAL)
            batch = [event]
            while True:
                try:
                    more = subscription.receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                if more.lsn > sent:
                    batch.append(more)
            sent = batch[-1].lsn
            if not _still_signed_in(core, caller):
                await ws.close(4401, "your session ended: log in again")
                return
            await ws.send(encoded.message(batch))
            last_send = trio.current_time()
        if subscription.overflowed:
            await ws.close(4408, "too slow: reconnect with your cursor")


def _still_signed_in(core: Core, caller: Caller) -> bool:
    """Whether the stream's operator session may still read: a revoked, expired or logged-out
    session, or a revoked endpoint, is cut off at the next committed event (close 4401)."""
    session = core.state.operator_sessions.get(caller.session.session_id)
    endpoint = core.state.endpoints.get(caller.session.endpoint_id)
    return (session is not None and not session.revoked and core.clock.now() < session.absolute_expiry
            and endpoint is not None and not endpoint.revoked)


async def serve_adapter(core: Core, ws: Any) -> None:
    """One adapter attachment: hello, then frames in, answers and deliveries out.

    When the attachment ends for a reason of the core's (shutting down, replaced by a newer
    attachment, heartbeat lost, outbox overflow), the websocket is closed with a code and that
    reason, so the adapter can log why and reconnect (or, when replaced, give up).
    """
    await ws.accept()
    try:
        with trio.fail_after(HELLO_TIMEOUT):
            first = await ws.receive()
        frame_type, hello = wire.decode_frame(first)
        if frame_type != "hello":
            raise ProtocolError("the first frame must be hello")
        connection = await core.adapters.attach(hello)
    except trio.TooSlowError:
        await ws.close(4408, "no hello within the time limit")
        return
    except (ProtocolError, Refused) as problem:
        await ws.send(wire.encode("error", seq=None, error=str(problem), code="attach_refused"))
        await ws.close(4403, str(problem)[:120])
        return
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pump_outbox, ws, connection, nursery.cancel_scope)
            nursery.start_soon(_watch_closed, connection, nursery.cancel_scope)
            nursery.start_soon(_close_when_stopping, core, connection)
            await core.adapters.serve(connection, ws.receive, ws.send)  # frames in, answers out, pipelined
    finally:
        with trio.CancelScope(shield=True):
            await core.adapters.detached(connection, connection.close_reason or "connection closed")
    if connection.close_reason:
        with trio.move_on_after(CLOSE_TIMEOUT):
            await ws.close(connection.close_code, connection.close_reason[:120])


CLOSE_TIMEOUT = 2.0


async def _close_when_stopping(core: Core, connection: AdapterConnection) -> None:
    await core.stopping.wait()
    connection.close("patchbay core is shutting down", 1001)


async def _pump_outbox(ws: Any, connection: AdapterConnection, scope: trio.CancelScope) -> None:
    while True:
        try:
            frame = await connection.receive()
        except trio.EndOfChannel:
            break
        await ws.send(frame)
    scope.cancel()


async def _watch_closed(connection: AdapterConnection, scope: trio.CancelScope) -> None:
    await connection.closed.wait()
    scope.cancel()
