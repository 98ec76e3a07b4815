"""Checkpoints: the reducer state at an LSN, serialized so recovery replays only the tail.

A checkpoint is a cache of ``apply`` over the prefix ``LSN <= checkpoint.lsn``; it is never a
second ordering, and one from another authority domain is never loaded (the store filters).

Format 2: the records kept in full (live work and the window of recently settled commands,
sessions, grants, ...) go through cattrs; the archived commands, which grow with history, are
stored by column (one JSON list per field; targets, adapters, states and failures as indexes
into small tables; the rare elicitation lists sparse) and rebuilt with no per-record
converter: about a microsecond per archived command instead of the 50-70 us a full record
costs, and no small temporary object per command (they would fragment the heap for good). A
format-1 checkpoint is ignored (recovery then replays from LSN 0 and the next checkpoint is
written in format 2).
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Hashable, Sequence
from functools import partial
from typing import Any

import attrs
import orjson
from cattrs.preconf.json import make_converter

from patchbay.domain.model import ArchivedCommand, CoreState
from patchbay.registry import CommandState, Failure

FORMAT_VERSION = 2
_converter = make_converter()
# The archive never goes through cattrs (see ``_archive_columns``); this hook only lets cattrs
# build the structure function of ``CoreState``, whose ``archived`` field it then skips.
_converter.register_structure_hook(ArchivedCommand, lambda value, _: ArchivedCommand(*value))
_ITEMS_PER_CHUNK = 10_000
# Encoded apart from the cattrs fields: the archive by column, the settle order as a list.
_OWN_FIELDS = ("archived", "settled")


def _dump_list(values: Sequence[Any]) -> bytes:
    """A JSON list, encoded in chunks so no single encoder call holds the GIL for long."""
    chunks = (orjson.dumps(values[i:i + _ITEMS_PER_CHUNK])[1:-1] for i in range(0, len(values), _ITEMS_PER_CHUNK))
    return b"[" + b",".join(chunks) + b"]"


def _indexed(values: list[Hashable]) -> tuple[list[Any], list[int]]:
    """A column as (table of distinct values, index of each value in the table)."""
    table: dict[Hashable, int] = {}
    indexes = [table.setdefault(value, len(table)) for value in values]
    return list(table), indexes


def _archive_columns(archived: dict[str, ArchivedCommand]) -> list[bytes]:
    entries = list(archived.values())
    targets, target_ix = _indexed([a.target for a in entries])
    adapters, adapter_ix = _indexed([a.adapter_id for a in entries])
    states, state_ix = _indexed([a.state.value for a in entries])
    failures, failure_ix = _indexed([a.failure.value if a.failure else None for a in entries])
    elicitations = {str(i): list(a.elicitations) for i, a in enumerate(entries) if a.elicitations}
    columns: dict[str, bytes] = {
        "ids": _dump_list([a.command_id for a in entries]),
        "keys": _dump_list([a.idempotency_key for a in entries]),
        "digests": _dump_list([a.payload_digest for a in entries]),
        "target_table": orjson.dumps(targets), "targets": _dump_list(target_ix),
        "adapter_table": orjson.dumps(adapters), "adapters": _dump_list(adapter_ix),
        "state_table": orjson.dumps(states), "states": _dump_list(state_ix),
        "failure_table": orjson.dumps(failures), "failures": _dump_list(failure_ix),
        "accepted_lsns": _dump_list([a.accepted_lsn for a in entries]),
        "elicitations": orjson.dumps(elicitations),
    }
    pieces = [b'"archived":{']
    for index, (name, encoded) in enumerate(columns.items()):
        pieces += [b"," if index else b"", b'"%s":' % name.encode(), encoded]
    pieces.append(b"}")
    return pieces


def _archive_from_columns(columns: dict[str, Any]) -> dict[str, ArchivedCommand]:
    ids: list[str] = columns["ids"]
    targets = [sys.intern(target) for target in columns["target_table"]]
    adapters = [sys.intern(adapter) for adapter in columns["adapter_table"]]
    states = [CommandState(state) for state in columns["state_table"]]
    failures = [Failure(failure) if failure else None for failure in columns["failure_table"]]
    elicitations: list[tuple[str, ...]] = [()] * len(ids)
    for index, listed in columns["elicitations"].items():
        elicitations[int(index)] = tuple(listed)
    fields = zip(ids, columns["keys"], columns["digests"],
                 map(targets.__getitem__, columns["targets"]), map(adapters.__getitem__, columns["adapters"]),
                 map(states.__getitem__, columns["states"]), map(failures.__getitem__, columns["failures"]),
                 columns["accepted_lsns"], elicitations, strict=True)
    # tuple.__new__ straight from C: the named tuple's own __new__ is Python code, 3x slower here
    return dict(zip(ids, map(partial(tuple.__new__, ArchivedCommand), fields), strict=True))


def encode_state(state: CoreState) -> bytes:
    """The state as one JSON document, built piece by piece and joined once.

    The core encodes checkpoints in a worker thread, but one encoder call over the whole state
    holds the GIL for its whole run, freezing the event loop anyway. Encoding each entry of the
    big maps, and the archive's columns in chunks, lets the interpreter switch threads between
    pieces.
    """
    pieces = [b'{"format":%d,"state":{' % FORMAT_VERSION]
    for field in attrs.fields(CoreState):
        if field.name in _OWN_FIELDS:
            continue
        pieces.append(b'"%s":' % field.name.encode())
        value = getattr(state, field.name)
        if isinstance(value, dict):
            pieces.append(b"{" + b",".join(orjson.dumps({k: _converter.unstructure(v)})[1:-1]
                                           for k, v in value.items()) + b"},")
        else:
            pieces += [orjson.dumps(_converter.unstructure(value)), b","]
    pieces += _archive_columns(state.archived)
    pieces += [b',"settled":', orjson.dumps(list(state.settled)), b"}}"]
    return b"".join(pieces)


def decode_state(data: bytes) -> CoreState | None:
    """The state in a checkpoint, or None when its format is not this code's (then replay from 0)."""
    document: dict[str, Any] = orjson.loads(data)
    if document.get("format") != FORMAT_VERSION:
        return None
    fields: dict[str, Any] = document["state"]
    columns = fields.pop("archived")
    settled = fields.pop("settled")
    state = _converter.structure(fields, CoreState)
    state.archived = _archive_from_columns(columns)
    state.settled = deque(settled)
    return state
