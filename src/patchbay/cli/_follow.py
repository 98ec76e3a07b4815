"""Following one command live over the client stream (``send --wait``, ``cancel --wait``…).

Output the command produces goes to stdout as it arrives (flushed chunk by chunk); state
changes and the approvals or questions it waits on go to stderr, each with the command that
answers it. Following is push, not polling: the stream from the command's acceptance LSN.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import attrs
import trio

from patchbay.cli._client import Client
from patchbay.cli._errors import OutcomeUnknown
from patchbay.cli._render import err_console, one_line
from patchbay.domain.events import EventKind
from patchbay.registry import ElicitationKind, ElicitationState

# Observation types whose text is the command's own output (shell output, assistant text).
OUTPUT_TYPES = frozenset({"output", "assistant_delta", "text_delta"})
SLOW_CONSUMER = 4408  # the stream's close code for a client that could not keep up


def elicitation_prompt(e: dict[str, Any]) -> str:
    """``waiting for approval: Allow bash? — patchbay approve el-3f2a --allow``."""
    title = one_line(e.get("title"), 160)
    if e["kind"] == ElicitationKind.approval:
        return (f"waiting for approval: {title} — patchbay approve {e['elicitation_id']} --allow "
                f"(or --deny)")
    return f"waiting for an answer: {title} — patchbay answer {e['elicitation_id']} TEXT"


class Follower:
    """Folds stream messages into the latest view of one command, printing as it goes."""

    def __init__(self, record: dict[str, Any], *, write: Callable[[str], None], note: Callable[[str], None]) -> None:
        self.latest = dict(record)
        self.write = write
        self.note = note
        self.streamed = False
        self._ends_with_newline = True
        self._announced: dict[str, str] = {}
        self.seen_lsn = -1

    @property
    def command_id(self) -> str:
        return str(self.latest["command_id"])

    @property
    def done(self) -> bool:
        """Terminal, and every event up to the terminal one was read (so no output is left)."""
        return bool(self.latest["terminal"]) and self.seen_lsn >= self.latest["revision"]

    def feed(self, message: dict[str, Any]) -> None:
        if message.get("type") == "snapshot":
            for command in message.get("commands", []):
                self._command(command)
            for e in message.get("elicitations", []):
                self._elicitation(e)
            self.seen_lsn = max(self.seen_lsn, int(message.get("lsn", -1)))
            return
        for event in message.get("events", []):
            self.seen_lsn = max(self.seen_lsn, int(event.get("lsn", -1)))
            payload = event.get("payload") or {}
            if event.get("kind") == EventKind.session_observation and payload.get("command_id") == self.command_id:
                self._observation(payload.get("observation") or {})
            if event.get("elicitation"):
                self._elicitation(event["elicitation"])
            if event.get("command"):
                self._command(event["command"])

    def finish(self) -> None:
        if self.streamed and not self._ends_with_newline:
            self.write("\n")

    def _observation(self, observation: dict[str, Any]) -> None:
        text = observation.get("text")
        if observation.get("type") in OUTPUT_TYPES and isinstance(text, str) and text:
            self.write(text)
            self.streamed = True
            self._ends_with_newline = text.endswith("\n")
        elif observation.get("type") == "tool_start" and observation.get("tool"):
            self.note(f"· tool {observation['tool']}")

    def _command(self, command: dict[str, Any]) -> None:
        if command.get("command_id") != self.command_id or command["revision"] < self.latest["revision"]:
            return
        before = self.latest["state"]
        self.latest = command
        if command["state"] != before and not command["terminal"]:  # the caller prints the end
            failure = f" ({command['failure']})" if command.get("failure") else ""
            self.note(f"{self.command_id}: {command['state']}{failure}")
        for e in command.get("elicitations", []):
            self._elicitation(e)

    def _elicitation(self, e: dict[str, Any]) -> None:
        if e.get("command_id") != self.command_id:
            return
        seen = self._announced.get(e["elicitation_id"])
        if seen == e["state"]:
            return
        self._announced[e["elicitation_id"]] = e["state"]
        if e["state"] == ElicitationState.pending:
            self.note(elicitation_prompt(e))
        elif seen is not None:
            self.note(f"{e['elicitation_id']}: {e['state']}")


@attrs.frozen
class Followed:
    record: dict[str, Any]  # the latest view of the command
    timed_out: bool  # not terminal after the timeout
    streamed: bool  # some of its output was printed while following


def follow(http: Client, record: dict[str, Any], timeout: float, *, live: bool) -> Followed:
    """The command's latest view once terminal, or as it was after ``timeout`` s.

    ``live``: print output and progress while following (text mode); JSON mode prints nothing.
    """
    from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    def note(line: str) -> None:
        err_console.print(line, markup=False)

    def quiet(_text: str) -> None:
        return None

    follower = Follower(record, write=write if live else quiet, note=note if live else quiet)

    async def run() -> None:
        cursor = record["accepted_lsn"]
        while not follower.done:
            url = f"{http.stream_url}?cursor={cursor}"
            try:
                async with open_websocket_url(url, http.ssl_context, extra_headers=http.stream_headers,
                                              max_message_size=16 * 1024 * 1024) as ws:
                    while not follower.done:
                        follower.feed(json.loads(await ws.get_message()))
            except ConnectionClosed as closed:
                if getattr(closed.reason, "code", None) != SLOW_CONSUMER:
                    raise
                cursor = max(cursor, follower.seen_lsn)  # fell behind: resume where it was

    async def bounded() -> bool:
        with trio.move_on_after(timeout):
            await run()
            return True
        return False

    try:
        finished = trio.run(bounded)
    except (OSError, HandshakeError, ConnectionClosed) as problem:
        follower.finish()
        raise OutcomeUnknown(f"{follower.command_id} was accepted, but the stream was lost while waiting for its "
                             f"outcome ({type(problem).__name__}); follow with: patchbay inspect "
                             f"{follower.command_id}") from None
    follower.finish()
    if not finished:
        err_console.print(f"still {follower.latest['state']} after {timeout:.0f} s; follow with: patchbay inspect "
                          f"{follower.command_id}", markup=False)
    return Followed(follower.latest, not finished, follower.streamed)
