"""Checkpoints: the reducer state at an LSN, serialized so recovery replays only the tail.

A checkpoint is a cache of ``apply`` over the prefix ``LSN <= checkpoint.lsn``; it is never a
second ordering, and one from another authority domain is never loaded (the store filters).
"""

from __future__ import annotations

import json

from cattrs.preconf.json import make_converter

from patchbay.domain.model import CoreState

FORMAT_VERSION = 1
_converter = make_converter()


def encode_state(state: CoreState) -> bytes:
    document = {"format": FORMAT_VERSION, "state": _converter.unstructure(state)}
    return json.dumps(document, separators=(",", ":")).encode()


def decode_state(data: bytes) -> CoreState | None:
    """The state in a checkpoint, or None when its format is not this code's (then replay from 0)."""
    document = json.loads(data)
    if document.get("format") != FORMAT_VERSION:
        return None
    return _converter.structure(document["state"], CoreState)
