"""The adapter protocol, version 1: typed frames on websocket ``/adapter/v1`` (JSON text).

Every frame is a JSON object with a ``type``. Frames an adapter sends that change anything
carry ``seq``, a number that grows with every frame of one adapter generation; the core answers
each with ``ack`` (or ``error``) naming that seq, and an adapter resends what was not acked
after a reconnect. Parsing is strict: unknown fields are ignored, missing or mistyped fields
are a ``ProtocolError`` that names the field; nothing is applied from a malformed frame.
Since the core's ``welcome`` names ``batch_max``, an adapter may send several frames in one
message, ``{"type": "batch", "frames": [...]}``; each is taken as if it had come alone.
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
from patchbay.wire import _admit

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 1024 * 1024

converter = _converter = make_converter(forbid_extra_keys=False)  # strict, shared by wire/requests.py


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
    features: list[str] = attrs.field(factory=list)  # adapter-named extras (e.g. session actions)
    runtime: dict[str, Any] = attrs.field(factory=dict)  # what the adapter drives (versions)


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


BATCH_MAX = 64  # frames in one batch message (the core says so in ``welcome``)


def parse_message(text: str | bytes) -> dict[str, Any]:
    """One websocket message as a JSON object; raises ProtocolError naming what is wrong."""
    if len(text) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame is larger than {MAX_FRAME_BYTES} bytes")
    try:
        raw = _admit.loads(text)
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ProtocolError(f"frame is not JSON: {_admit.printable(str(error))}") from None
    if not isinstance(raw, dict):
        raise ProtocolError("frame must be a JSON object")
    return raw


def batch_frames(raw: dict[str, Any]) -> list[Any]:
    """The frames of a ``batch`` message: a non-empty list of at most ``BATCH_MAX``."""
    frames = raw.get("frames")
    if not isinstance(frames, list) or not frames:
        raise ProtocolError("malformed batch frame: frames must be a non-empty list of frames")
    if len(frames) > BATCH_MAX:
        raise ProtocolError(f"malformed batch frame: {len(frames)} frames, at most {BATCH_MAX}")
    return frames


def structure_frame(raw: Any, *, in_batch: bool = False) -> tuple[str, Any]:
    """One parsed frame as its type and attrs value; raises ProtocolError naming what is wrong.
    In a batch, ``hello`` and ``batch`` are refused (they only come alone)."""
    if not isinstance(raw, dict):
        raise ProtocolError("frame must be a JSON object")
    frame_type = raw.get("type")
    if in_batch and frame_type in ("hello", "batch"):
        raise ProtocolError(f"a {frame_type} frame cannot be part of a batch")
    cls = FRAME_TYPES.get(frame_type) if isinstance(frame_type, str) else None
    if cls is None:
        shown = _admit.printable(frame_type, 40) if isinstance(frame_type, str) else type(frame_type).__name__
        raise ProtocolError(f"unknown frame type {shown!r}")
    refusal = _admit.problem(raw)
    if refusal is not None:
        raise ProtocolError(f"malformed {frame_type} frame: {refusal}")
    frame: Any
    try:
        frame = _converter.structure(raw, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as error:
        raise ProtocolError(f"malformed {frame_type} frame: {_admit.printable(describe(error), 300)}") from None
    seq = getattr(frame, "seq", 0)
    if not isinstance(seq, int) or seq < 0:
        raise ProtocolError(f"{frame_type} frame needs a non-negative integer seq")
    bounds = _out_of_bounds(frame)
    if bounds is not None:
        raise ProtocolError(f"malformed {frame_type} frame: {bounds}")
    return str(frame_type), frame


MAX_TTL = 7 * 24 * 3600.0  # seconds a lease may be taken or renewed for at once
MAX_TIMESTAMP = 253_402_300_799.0  # 9999-12-31T23:59:59Z: any later expiry cannot be displayed


def _out_of_bounds(frame: Any) -> str | None:
    """Field bounds the types alone do not say: a generation is 1 or more, a lease ttl and an
    expiry are finite and displayable (the checks every later stage relies on)."""
    generation = getattr(frame, "generation", None)
    if generation is not None and generation < 1:
        return "generation: must be an integer of 1 or more"
    if isinstance(frame, Hello) and frame.adapter_generation < 1:
        return "adapter_generation: must be an integer of 1 or more"
    if isinstance(frame, LeaseFrame) and not 0 < frame.ttl <= MAX_TTL:
        return f"ttl: must be more than 0 and at most {MAX_TTL:.0f} seconds"
    expires_at = getattr(frame, "expires_at", None)
    if expires_at is not None and not 0 <= expires_at <= MAX_TIMESTAMP:
        return "expires_at: must be seconds since the epoch, before the year 10000"
    return None


def decode_frame(text: str | bytes) -> tuple[str, Any]:
    """Parse one adapter frame; raises ProtocolError naming what is wrong."""
    return structure_frame(parse_message(text))


def describe(error: BaseException) -> str:
    if isinstance(error, cattrs.BaseValidationError):
        notes = cattrs.transform_error(error)
        return "; ".join(notes) if notes else str(error)
    return str(error)


def encode(frame_type: str, **fields: Any) -> str:
    return json.dumps({"type": frame_type, **fields}, separators=(",", ":"))


def unstructure(value: Any) -> Any:
    return _converter.unstructure(value)
