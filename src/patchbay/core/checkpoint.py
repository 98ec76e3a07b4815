"""Checkpoints: the reducer state at an LSN, serialized so recovery replays only the tail.

A checkpoint is a cache of ``apply`` over the prefix ``LSN <= checkpoint.lsn``; it is never a
second ordering, and one from another authority domain is never loaded (the store filters).
"""

from __future__ import annotations

import json

import attrs
from cattrs.preconf.json import make_converter

from patchbay.domain.model import CoreState

FORMAT_VERSION = 1
_converter = make_converter()


def encode_state(state: CoreState) -> bytes:
    """The state as JSON, built record by record.

    The core encodes checkpoints in a worker thread, but a single ``unstructure`` or
    ``json.dumps`` over the whole state holds the GIL for its whole run (over 300 ms for
    30,000 commands), freezing the event loop anyway. Converting and encoding each entry of
    the big maps separately lets the interpreter switch threads between entries. The text is
    the same JSON document a single ``json.dumps`` would produce.
    """
    parts = []
    for field in attrs.fields(CoreState):
        value = getattr(state, field.name)
        if isinstance(value, dict):
            entries = ",".join(json.dumps({k: _converter.unstructure(v)}, separators=(",", ":"))[1:-1]
                               for k, v in value.items())
            parts.append(f"{json.dumps(field.name)}:{{{entries}}}")
        else:
            encoded = json.dumps(_converter.unstructure(value), separators=(",", ":"))
            parts.append(f"{json.dumps(field.name)}:{encoded}")
    return f'{{"format":{FORMAT_VERSION},"state":{{{",".join(parts)}}}}}'.encode()


def decode_state(data: bytes) -> CoreState | None:
    """The state in a checkpoint, or None when its format is not this code's (then replay from 0)."""
    document = json.loads(data)
    if document.get("format") != FORMAT_VERSION:
        return None
    return _converter.structure(document["state"], CoreState)
