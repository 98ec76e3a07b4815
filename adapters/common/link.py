"""The adapter side of ``/adapter/v1``: a reliable link to the core, shared by every adapter.

``AdapterLink.run`` connects, says hello, and keeps the attachment alive: heartbeats, answers
to every frame, and reconnection with backoff when the core goes away. Frames that change
anything are numbered (``seq``) and kept until the core acknowledges them; after a reconnect
they are sent again in order and the core deduplicates them. Sending does not wait for the
answer (the core pipelines a connection's frames and answers them in order once durable, one
``ack`` per run of frames since the hello says ``ack_ranges``); at most ``MAX_UNACKED`` frames
wait for answers before ``send`` does. When the core's ``welcome`` names ``batch_max``, frames
are sent by a task of their own, and those queued while a message goes out go out together
as one ``batch`` message (up to ``batch_max`` frames, about ``BATCH_BYTES``). Deliveries are
handed to the runtime once per command id (redeliveries after a reconnect are dropped here).

Partitions: the link hears from the core at least every heartbeat (the core answers each one);
when nothing at all arrives for the heartbeat interval plus the core's ``stale_after`` (both from
the ``welcome``), the connection is taken for dead although no one closed it: it is dropped and
the link reconnects with backoff, like after a close. ``wss://`` is verified with
``ssl_context`` (see ``trust``: a pinned fingerprint, a CA file or the system store); a
certificate refused there stops the adapter with the reason (reconnecting cannot help).

The adapter generation grows with every process start (a counter file beside the
credential), so the core can tell a reconnect of this process from a new process.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import trio
from patchbay_adapters.common.credential import CredentialFileError, read_credential_file
from patchbay_adapters.common.trust import (
    check_certificate,
    client_context,
    describe_refusal,
    untrusted,
)
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from patchbay.registry import SessionActivityState, SessionConnectivityState, SnapshotTier

log = logging.getLogger("patchbay.adapter")

SEEN_LIMIT = 10_000
MAX_UNACKED = 10_000
BATCH_MAX = 64  # frames per batch message at most (and what the core's welcome allows)
BATCH_BYTES = 256 * 1024  # about this much frame text per batch message at most


class Runtime(Protocol):
    """What an adapter implements; the link calls it."""

    def manifest(self) -> dict[str, Any]: ...
    async def attached(self) -> None: ...  # (re)attached: report every session again
    async def deliver(self, command: dict[str, Any]) -> None: ...  # a new command; must not block long
    async def withdraw(self, command_id: str, reason: str) -> None: ...


class LinkError(Exception):
    """The core refused this adapter (bad credential, old generation, protocol version)."""


class CoreSilent(Exception):
    """Nothing came from the core for the silence bound: the connection is dead, though open."""


class ResendRequested(Exception):
    """The core could not handle a frame (``retry``): reconnect and resend the unacked ones in order."""


def next_generation(credential_file: Path) -> int:
    """Bump and return this adapter's generation, kept in ``<credential>.generation``."""
    counter = credential_file.with_name(credential_file.name + ".generation")
    try:
        current = int(counter.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        current = 0
    generation = current + 1
    tmp = counter.with_name(counter.name + ".tmp")
    tmp.write_text(f"{generation}\n")
    tmp.replace(counter)
    return generation


class AdapterLink:
    def __init__(self, *, adapter_id: str, core_url: str, credential: str, deployment_scope: str,
                 generation: int, runtime: Runtime, reconnect_max: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.adapter_id = adapter_id
        self.url = core_url.rstrip("/").replace("http://", "ws://").replace("https://", "wss://") + "/adapter/v1"
        self.credential = credential
        self.deployment_scope = deployment_scope
        self.generation = generation
        self.runtime = runtime
        self.reconnect_max = reconnect_max
        self.heartbeat_interval = 5.0
        self.stale_after = 15.0  # the core's bound for silence (its welcome says; this is its default)
        self.ssl_context = ssl_context
        if self.url.startswith("wss://") and ssl_context is None:
            self.ssl_context = client_context()
        self._seq = 0
        self._unacked: OrderedDict[int, str] = OrderedDict()
        self._waiters: dict[int, trio.Event] = {}
        self._answers: dict[int, dict[str, Any]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._send_lock = trio.Lock()
        self._drained = trio.Event()
        self._ws: Any = None
        self._batch_max = 0  # frames per message the core takes (its welcome says; 0: one each)
        self._outgoing: list[str] = []  # numbered frames not yet sent on this attachment
        self._has_outgoing = trio.Event()
        self.attached = trio.Event()
        self.attach_count = 0

    # -- sending ---------------------------------------------------------------------------

    async def send(self, frame_type: str, *, wait: bool = False, timeout: float = 30.0,
                   **fields: Any) -> dict[str, Any] | None:
        """Queue a numbered frame; with ``wait``, return the core's answer (ack or error).

        A frame survives disconnects: it is resent on every reconnect until acknowledged.
        Without ``wait`` this returns at once (the frame is already in the resend queue).
        """
        while len(self._unacked) >= MAX_UNACKED:  # backpressure while the core is away
            self._drained = trio.Event()
            await self._drained.wait()
        self._seq += 1
        seq = self._seq
        text = json.dumps({"type": frame_type, "seq": seq, **fields}, separators=(",", ":"))
        self._unacked[seq] = text
        done = None
        if wait:
            done = self._waiters[seq] = trio.Event()
        if self._batch_max > 1:
            # Queued for the sender task, which sends it with whatever else is queued by then;
            # no checkpoint here, so a burst of frames from one step goes out as one message.
            if self._ws is not None:
                self._outgoing.append(text)
                self._has_outgoing.set()
        else:
            await self._transmit(text)
        if done is None:
            return None
        with trio.move_on_after(timeout):
            await done.wait()
        return self._answers.pop(seq, None)

    async def _transmit(self, text: str) -> None:
        ws = self._ws
        if ws is None:
            return  # resent after the next attach
        async with self._send_lock:
            try:
                await ws.send_message(text)
            except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    async def session(self, runtime_session_id: str, generation: int, *, label: str = "",
                      metadata: dict[str, Any] | None = None,
                      activity: str = SessionActivityState.unknown, snapshot_tier: str = SnapshotTier.none,
                      connectivity: str = SessionConnectivityState.live, wait: bool = False) -> dict[str, Any] | None:
        return await self.send("session", wait=wait, runtime_session_id=runtime_session_id, generation=generation,
                               label=label, metadata=metadata or {}, activity=activity,
                               snapshot_tier=snapshot_tier, connectivity=connectivity)

    async def report(self, command_id: str, state: str, *, failure: str | None = None,
                     result: dict[str, Any] | None = None, reason: str | None = None,
                     wait: bool = False) -> dict[str, Any] | None:
        return await self.send("report", wait=wait, command_id=command_id, state=state, failure=failure,
                               result=result, reason=reason)

    async def observe(self, runtime_session_id: str, generation: int, observation: dict[str, Any], *,
                      command_id: str | None = None, activity: str | None = None) -> None:
        await self.send("observation", runtime_session_id=runtime_session_id, generation=generation,
                        observation=observation, command_id=command_id, activity=activity)

    # -- connection --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Stay attached until cancelled; raises LinkError if the core refuses this adapter."""
        backoff = 0.2
        started = False
        while True:
            try:
                if self.ssl_context is not None:
                    await check_certificate(self.url, self.ssl_context, max(self.silence_bound, 5.0))
                async with open_websocket_url(self.url, self.ssl_context, max_message_size=4 * 1024 * 1024,
                                              connect_timeout=max(self.silence_bound, 5.0),
                                              disconnect_timeout=min(self.heartbeat_interval, 2.0)) as ws:
                    await self._attach(ws)
                    backoff = 0.2
                    if not started:
                        task_status.started()
                        started = True
                    await self._serve(ws)
            except* (OSError, HandshakeError, ConnectionClosed, trio.BrokenResourceError, ResendRequested,
                     CoreSilent, trio.TooSlowError) as lost:
                refused = untrusted(lost.exceptions[0])
                if refused is not None:
                    raise LinkError(f"refusing {self.url}: {describe_refusal(refused)}") from None
                log.warning("adapter %s: link to %s lost (%s); retrying in %.1f s", self.adapter_id,
                            self.url, lost.exceptions[0], backoff)
            finally:
                self._ws = None
                self.attached = trio.Event() if self.attached.is_set() else self.attached
            await trio.sleep(backoff)
            backoff = min(backoff * 2, self.reconnect_max)

    async def _attach(self, ws: Any) -> None:
        hello = {"type": "hello", "protocol": 1, "adapter_id": self.adapter_id, "credential": self.credential,
                 "adapter_generation": self.generation, "deployment_scope": self.deployment_scope,
                 "manifest": self.runtime.manifest(), "ack_ranges": True}
        await ws.send_message(json.dumps(hello))
        welcome = json.loads(await ws.get_message())
        if welcome.get("type") != "welcome":
            raise LinkError(f"core refused adapter {self.adapter_id}: {welcome.get('error', welcome)}")
        self.heartbeat_interval = float(welcome.get("heartbeat_interval", 5.0))
        self.stale_after = float(welcome.get("stale_after") or 3 * self.heartbeat_interval)
        try:
            self._batch_max = min(BATCH_MAX, int(welcome.get("batch_max") or 0))
        except (TypeError, ValueError):  # not a number: send one frame per message
            self._batch_max = 0
        acked = int(welcome.get("acked_seq") or 0)
        for seq in [s for s in self._unacked if s <= acked]:
            self._acknowledge(seq, {"type": "ack", "seq": seq, "duplicate": True})
        self._ws = ws
        self.attach_count += 1
        async with self._send_lock:
            pending = list(self._unacked.values())
            self._outgoing.clear()  # all in ``pending``; what is sent from now on queues anew
            for message in self._messages(pending):
                await ws.send_message(message)
        self.attached.set()

    def _messages(self, texts: list[str]) -> list[str]:
        """Frames as websocket messages: batches of up to ``batch_max`` frames (and about
        ``BATCH_BYTES``) when the core takes them, else one message each."""
        if self._batch_max <= 1:
            return texts
        messages: list[str] = []
        group: list[str] = []
        size = 0
        for text in texts:
            if group and (len(group) >= self._batch_max or size + len(text) > BATCH_BYTES):
                messages.append(_batch(group))
                group, size = [], 0
            group.append(text)
            size += len(text)
        if group:
            messages.append(_batch(group))
        return messages

    async def _send_outgoing(self, ws: Any) -> None:
        """Send queued frames in order, as few messages as they fit in: what is queued while
        one message goes out goes out together in the next."""
        while True:
            await self._has_outgoing.wait()
            self._has_outgoing = trio.Event()
            texts, self._outgoing = self._outgoing, []
            async with self._send_lock:
                for message in self._messages(texts):
                    await ws.send_message(message)

    async def _serve(self, ws: Any) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._heartbeat, ws)
            if self._batch_max > 1:
                nursery.start_soon(self._send_outgoing, ws)
            nursery.start_soon(self.runtime.attached)
            while True:
                with trio.move_on_after(self.silence_bound) as silence:
                    message = await ws.get_message()
                if silence.cancelled_caught:
                    raise CoreSilent(f"heard nothing from the core for {self.silence_bound:.1f} s")
                await self._dispatch(json.loads(message))

    @property
    def silence_bound(self) -> float:
        """How long the core may stay silent before the connection counts as dead (the same
        bound after which the core marks this adapter's sessions stale, plus a heartbeat)."""
        return self.heartbeat_interval + self.stale_after

    async def _heartbeat(self, ws: Any) -> None:
        while True:
            await trio.sleep(self.heartbeat_interval)
            async with self._send_lock:
                await ws.send_message('{"type":"heartbeat"}')

    def _acknowledge(self, seq: int, frame: dict[str, Any]) -> None:
        self._unacked.pop(seq, None)
        if len(self._unacked) < MAX_UNACKED:
            self._drained.set()
        waiter = self._waiters.pop(seq, None)
        if waiter is not None:
            self._answers[seq] = frame
            waiter.set()

    def _acknowledge_range(self, first: int, last: int) -> None:
        """One ack for the run of frames ``first``..``last`` (answered in order, so they are the
        oldest unanswered ones)."""
        if last - first < len(self._unacked):
            seqs: Any = range(first, last + 1)
        else:
            seqs = [seq for seq in self._unacked if first <= seq <= last]
        for seq in seqs:
            if seq in self._unacked or seq in self._waiters:
                self._acknowledge(seq, {"type": "ack", "seq": seq})

    async def _dispatch(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind in ("ack", "error"):
            seq = frame.get("seq")
            if frame.get("code") == "retry":
                raise ResendRequested(f"the core asked to resend from frame {seq}: {frame.get('error')}")
            first = frame.get("first")
            if kind == "ack" and isinstance(seq, int) and isinstance(first, int) and 0 < first < seq:
                self._acknowledge_range(first, seq)
            elif isinstance(seq, int) and seq > 0:
                self._acknowledge(seq, frame)
            if kind == "error":
                log.warning("adapter %s: core answered an error: %s", self.adapter_id, frame.get("error"))
        elif kind == "deliver":
            command = frame["command"]
            command_id = command["command_id"]
            if command_id in self._seen:
                return
            self._seen[command_id] = None
            while len(self._seen) > SEEN_LIMIT:
                self._seen.popitem(last=False)
            await self.runtime.deliver(command)
        elif kind == "withdraw":
            await self.runtime.withdraw(frame["command_id"], frame.get("reason", ""))


def _batch(texts: list[str]) -> str:
    """One message for ``texts`` (each a frame's JSON object): the frame itself if alone."""
    if len(texts) == 1:
        return texts[0]
    return '{"type":"batch","frames":[' + ",".join(texts) + "]}"


def read_credential(path: Path) -> str:
    """The credential of a credential file (plain, or with the core's URL and pin after it)."""
    try:
        return read_credential_file(path).credential
    except CredentialFileError as problem:
        raise LinkError(str(problem)) from None


OnDeliver = Callable[[dict[str, Any]], Awaitable[None]]
