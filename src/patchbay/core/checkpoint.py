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

The document is stored zlib-compressed (``pack``; level 1: ~11x smaller, ~2 ms per MB in a
worker thread, which zlib runs without the GIL). A checkpoint is written in the journal
writer's turn, so its size is time every commit behind it waits: 15 MB of JSON took ~55 ms to
write, 1.3 MB compressed takes a few. ``decode_state`` reads both (a JSON document starts
with ``{``, a zlib stream never does).
"""

from __future__ import annotations

import sys
import weakref
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from operator import attrgetter
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
# Work between two yields of ``encode_state_steps``: about a millisecond each on this stack.
_ITEMS_PER_CHUNK = 1_000  # archived entries indexed, or list items encoded
_RECORDS_PER_STEP = 16  # full records through cattrs and orjson
# Encoded apart from the cattrs fields: the archive by column, the settle order as a list.
_OWN_FIELDS = ("archived", "settled")


def _dump_list(values: Sequence[Any], out: list[bytes], field: Callable[[Any], Any] | None = None) -> Iterator[None]:
    """A JSON list of ``values`` (or of ``field`` of each) into ``out``, a chunk at a time."""
    out.append(b"[")
    for start in range(0, len(values), _ITEMS_PER_CHUNK):
        if start:
            out.append(b",")
        chunk = values[start:start + _ITEMS_PER_CHUNK]
        out.append(orjson.dumps(chunk if field is None else list(map(field, chunk)))[1:-1])
        yield
    out.append(b"]")


def _archive_columns(archived: dict[str, ArchivedCommand], out: list[bytes]) -> Iterator[None]:
    entries = list(archived.values())
    tables: tuple[dict[Any, int], ...] = ({}, {}, {}, {})  # targets, adapters, states, failures
    indexes: tuple[list[int], ...] = ([], [], [], [])
    elicitations: dict[str, list[str]] = {}
    for start in range(0, len(entries), _ITEMS_PER_CHUNK):
        for offset, a in enumerate(entries[start:start + _ITEMS_PER_CHUNK]):
            for table, column, value in zip(tables, indexes, (a.target, a.adapter_id, a.state.value,
                                                               a.failure.value if a.failure else None), strict=True):
                column.append(table.setdefault(value, len(table)))
            if a.elicitations:
                elicitations[str(start + offset)] = list(a.elicitations)
        yield
    out.append(b'"archived":{')
    fields = attrgetter("command_id"), attrgetter("idempotency_key"), attrgetter("payload_digest")
    for index, (name, field) in enumerate(zip(("ids", "keys", "digests"), fields, strict=True)):
        out.append(b'%s"%s":' % (b"," if index else b"", name.encode()))
        yield from _dump_list(entries, out, field)
    for name, table, column in zip(("target", "adapter", "state", "failure"), tables, indexes, strict=True):
        out += [b',"%s_table":' % name.encode(), orjson.dumps(list(table)), b',"%ss":' % name.encode()]
        yield from _dump_list(column, out)
    out.append(b',"accepted_lsns":')
    yield from _dump_list(entries, out, attrgetter("accepted_lsn"))
    out += [b',"elicitations":', orjson.dumps(elicitations), b"}"]


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


class EncodedRecords:
    """The encoded entry of every full record the last checkpoint wrote, by record object.

    Records are immutable and a changed record is a new object, so an entry whose record is
    still the very same object (held by a weak reference: the cache keeps nothing alive) is
    reused as it is. A checkpoint then costs what changed since the last one, not the size of
    the live state: a thousand sessions or a long queue of waiting commands are encoded once.
    """

    def __init__(self) -> None:
        self.entries: dict[int, tuple[weakref.ref[Any], str, bytes]] = {}

    def __len__(self) -> int:
        return len(self.entries)


def encode_state_steps(state: CoreState, out: list[bytes], cache: EncodedRecords | None = None) -> Iterator[None]:
    """Encode ``state`` into ``out`` (join it for the document), yielding after each bounded
    piece of work (about a millisecond: a few dozen full records, or a chunk of an archive
    column). With ``cache``, records encoded by the previous run are taken from it (the
    cache then holds this run's entries, once the run has finished).

    The core drives it from the event loop with a checkpoint at every yield, so a checkpoint
    of a large state (tens of thousands of live commands: about a second of CPU) is spread
    over many short steps between requests, stream sends and adapter frames. Encoding in a
    worker thread instead stalled them: the encoder held the GIL for the interpreter's 5 ms
    switch interval at a time, and every step of a request waited for it again (acceptance
    p99 57-148 ms while streaming, against under 10 without a checkpoint).
    """
    previous = cache.entries if cache is not None else {}
    current: dict[int, tuple[weakref.ref[Any], str, bytes]] = {}
    out.append(b'{"format":%d,"state":{' % FORMAT_VERSION)
    encoded = reused = 0  # since the last yield
    for field in attrs.fields(CoreState):
        if field.name in _OWN_FIELDS:
            continue
        out.append(b'"%s":' % field.name.encode())
        value = getattr(state, field.name)
        if isinstance(value, dict):
            out.append(b"{")
            for count, (key, record) in enumerate(value.items()):
                cached = cache is not None and type(record).__weakrefoffset__ != 0
                hit = previous.get(id(record)) if cached else None
                if hit is not None and hit[0]() is record and hit[1] == key:
                    piece = hit[2]
                    current[id(record)] = hit
                    reused += 1
                else:
                    piece = orjson.dumps({key: _converter.unstructure(record)})[1:-1]
                    if cached:
                        current[id(record)] = (weakref.ref(record), key, piece)
                    encoded += 1
                out.append(b"," + piece if count else piece)
                if encoded >= _RECORDS_PER_STEP or reused >= _ITEMS_PER_CHUNK:
                    encoded = reused = 0
                    yield
            out.append(b"},")
        else:
            out += [orjson.dumps(_converter.unstructure(value)), b","]
    yield
    yield from _archive_columns(state.archived, out)
    out += [b',"settled":', orjson.dumps(list(state.settled)), b"}}"]
    if cache is not None:
        cache.entries = current


def encode_state(state: CoreState) -> bytes:
    """The state as one JSON document (``encode_state_steps`` run to the end)."""
    out: list[bytes] = []
    for _ in encode_state_steps(state, out):
        pass
    return b"".join(out)


def pack(document: bytes) -> bytes:
    """A checkpoint document as stored: zlib level 1."""
    return zlib.compress(document, 1)


def unpack(data: bytes) -> bytes:
    """The document of a stored checkpoint, compressed (``pack``) or not (older checkpoints)."""
    return data if data[:1] == b"{" else zlib.decompress(data)


def decode_state(data: bytes) -> CoreState | None:
    """The state in a stored checkpoint, or None when its format is not this code's (then
    replay from 0)."""
    document: dict[str, Any] = orjson.loads(unpack(data))
    if document.get("format") != FORMAT_VERSION:
        return None
    fields: dict[str, Any] = document["state"]
    columns = fields.pop("archived")
    settled = fields.pop("settled")
    state = _converter.structure(fields, CoreState)
    state.archived = _archive_from_columns(columns)
    state.settled = deque(settled)
    return state
