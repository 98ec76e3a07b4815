"""The adapter protocol, version 1: typed frames on websocket ``/adapter/v1`` (JSON text).

Every frame is a JSON object with a ``type``. Frames an adapter sends that change anything
carry ``seq``, a number that grows with every frame of one adapter generation; the core answers
each with ``ack`` (or ``error``) naming that seq, and an adapter resends what was not acked
after a reconnect. Parsing is strict: unknown fields are ignored, missing or mistyped fields
are a ``ProtocolError`` that names the field; nothing is applied from a malformed frame.
See docs/PROTOCOL.md for examples of every frame.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import cattrs
from cattrs.preconf.json import make_converter

from patchbay.errors import ProtocolError
from patchbay.registry import (
    IdempotencyStrength,
    SessionActivityState,
    SessionConnectivityState,
    SnapshotTier,
)

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 1024 * 1024

_converter = make_converter(forbid_extra_keys=False)


def _strict(kind: type, name: str) -> Any:
    def structure(value: Any, _: Any) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"expected {name}, got a boolean")
        if kind is float and isinstance(value, int):
            return float(value)
        if not isinstance(value, kind):
            raise TypeError(f"expected {name}, got {type(value).__name__}")
        return value

    return structure


# Strict scalars: a number is not silently turned into a string, nor a string into a number.
_converter.register_structure_hook(str, _strict(str, "a string"))
_converter.register_structure_hook(int, _strict(int, "an integer"))
_converter.register_structure_hook(float, _strict(float, "a number"))
_converter.register_structure_hook(bool, _strict(bool, "a boolean"))


@attrs.frozen
class Manifest:
    """What an adapter can do; advisory for the UI, never an authority or delivery gate."""

    kinds: list[str]
    streaming: bool = False
    snapshot_tier: str = SnapshotTier.none.value
    cancellation: bool = False
    session_replacement: bool = False
    idempotency: str = IdempotencyStrength.none.value
    attachment: str = "websocket"
    failure_modes: list[str] = attrs.field(factory=list)
    steer: bool = False
    spawn: bool = False


@attrs.frozen
class Hello:
    adapter_id: str
    credential: str
    adapter_generation: int
    deployment_scope: str
    manifest: Manifest
    protocol: int = PROTOCOL_VERSION
    last_seq: int = 0
    ack_ranges: bool = False  # the adapter understands {"type": "ack", "seq": N, "first": M}


@attrs.frozen
class SessionFrame:
    seq: int
    runtime_session_id: str
    generation: int
    label: str = ""
    metadata: dict[str, Any] = attrs.field(factory=dict)
    activity: str = SessionActivityState.unknown.value
    connectivity: str = SessionConnectivityState.live.value
    snapshot_tier: str = SnapshotTier.none.value


@attrs.frozen
class ReportFrame:
    seq: int
    command_id: str
    state: str
    failure: str | None = None
    result: dict[str, Any] | None = None
    reason: str | None = None


@attrs.frozen
class ObservationFrame:
    seq: int
    runtime_session_id: str
    generation: int
    observation: dict[str, Any]
    command_id: str | None = None
    activity: str | None = None


@attrs.frozen
class ElicitationFrame:
    seq: int
    runtime_session_id: str
    generation: int
    elicitation_id: str
    kind: str
    title: str = ""
    body: str = ""
    options: list[str] = attrs.field(factory=list)
    command_id: str | None = None
    expires_at: float | None = None


@attrs.frozen
class ElicitationClosedFrame:
    seq: int
    elicitation_id: str
    state: str
    reason: str = ""


@attrs.frozen
class ReplyFrame:
    seq: int
    runtime_session_id: str
    generation: int
    reply_id: str
    correlates_kind: str
    correlates_id: str
    content: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class LeaseFrame:
    seq: int
    op: str  # acquire | renew | release
    resource: str = ""
    scope: str = ""
    lease_id: str | None = None
    ttl: float = 60.0


@attrs.frozen
class HeartbeatFrame:
    seq: int = 0


FRAME_TYPES: dict[str, type] = {
    "hello": Hello,
    "session": SessionFrame,
    "report": ReportFrame,
    "observation": ObservationFrame,
    "elicitation": ElicitationFrame,
    "elicitation_closed": ElicitationClosedFrame,
    "reply": ReplyFrame,
    "lease": LeaseFrame,
    "heartbeat": HeartbeatFrame,
}

AdapterFrame = (Hello | SessionFrame | ReportFrame | ObservationFrame | ElicitationFrame
                | ElicitationClosedFrame | ReplyFrame | LeaseFrame | HeartbeatFrame)


def decode_frame(text: str | bytes) -> tuple[str, Any]:
    """Parse one adapter frame; raises ProtocolError naming what is wrong."""
    if len(text) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame is larger than {MAX_FRAME_BYTES} bytes")
    try:
        raw = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise ProtocolError(f"frame is not JSON: {error}") from None
    if not isinstance(raw, dict):
        raise ProtocolError("frame must be a JSON object")
    frame_type = raw.get("type")
    cls = FRAME_TYPES.get(frame_type) if isinstance(frame_type, str) else None
    if cls is None:
        raise ProtocolError(f"unknown frame type {frame_type!r}")
    frame: Any
    try:
        frame = _converter.structure(raw, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as error:
        raise ProtocolError(f"malformed {frame_type} frame: {describe(error)}") from None
    seq = getattr(frame, "seq", 0)
    if not isinstance(seq, int) or seq < 0:
        raise ProtocolError(f"{frame_type} frame needs a non-negative integer seq")
    return str(frame_type), frame


def describe(error: BaseException) -> str:
    if isinstance(error, cattrs.BaseValidationError):
        notes = cattrs.transform_error(error)
        return "; ".join(notes) if notes else str(error)
    return str(error)


def encode(frame_type: str, **fields: Any) -> str:
    return json.dumps({"type": frame_type, **fields}, separators=(",", ":"))


def unstructure(value: Any) -> Any:
    return _converter.unstructure(value)
