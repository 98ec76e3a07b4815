"""Checkpoints: the reducer state at an LSN, serialized so recovery replays only the tail.

A checkpoint is a cache of ``apply`` over the prefix ``LSN <= checkpoint.lsn``; it is never a
second ordering, and one from another authority domain is never loaded (the store filters).

Format 2: the records kept in full (live work and the window of recently settled commands,
sessions, grants, ...) go through cattrs; the archived commands, which grow with history, are
stored by column (one JSON list per field; targets, adapters, states and failures as indexes
into small tables; the rare elicitation lists sparse) and rebuilt with no per-record
converter: about a microsecond per archived command instead of the 50-70 us a full record
costs, and no small temporary object per command (they would fragment the heap for good).
A checkpoint of another format, or one that does not read or build, is ignored: recovery
replays from LSN 0 (the journal is the truth). JSON as in ``_codec``: exact for anything.

The document is stored zlib-compressed (``pack``; level 1: ~11x smaller, ~2 ms per MB in a
worker thread, which zlib runs without the GIL). A checkpoint is written in the journal
writer's turn, so its size is time every commit behind it waits: 15 MB of JSON took ~55 ms to
write, 1.3 MB compressed takes a few. ``decode_state`` reads both (a JSON document starts
with ``{``, a zlib stream never does).

Most checkpoints are deltas (see "deltas" below): only the entries that changed since the
previous checkpoint, naming it as their ``base``; ``load_checkpoint`` follows the chain back to
its full checkpoint. A delta's size follows what changed, not the size of the live state.
"""

from __future__ import annotations

import sys
import time
import weakref
import zlib
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from functools import partial
from itertools import islice
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import attrs
from cattrs.preconf.json import make_converter

from patchbay.core._codec import EXACT_KEY, Encoder, decode
from patchbay.domain.model import ArchivedCommand, CoreState
from patchbay.registry import CommandState, Failure

if TYPE_CHECKING:
    from patchbay.journal import JournalStore

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


def _dump_list(values: Sequence[Any], out: list[bytes], dumps: Encoder,
               field: Callable[[Any], Any] | None = None) -> Iterator[None]:
    """A JSON list of ``values`` (or of ``field`` of each) into ``out``, a chunk at a time."""
    out.append(b"[")
    for start in range(0, len(values), _ITEMS_PER_CHUNK):
        if start:
            out.append(b",")
        chunk = values[start:start + _ITEMS_PER_CHUNK]
        out.append(dumps(chunk if field is None else list(map(field, chunk)))[1:-1])
        yield
    out.append(b"]")


def _archive_columns(archived: dict[str, ArchivedCommand], out: list[bytes], dumps: Encoder,
                     head: bytes = b'"archived":{') -> Iterator[None]:
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
    out.append(head)
    fields = attrgetter("command_id"), attrgetter("idempotency_key"), attrgetter("payload_digest")
    for index, (name, field) in enumerate(zip(("ids", "keys", "digests"), fields, strict=True)):
        out.append(b'%s"%s":' % (b"," if index else b"", name.encode()))
        yield from _dump_list(entries, out, dumps, field)
    for name, table, column in zip(("target", "adapter", "state", "failure"), tables, indexes, strict=True):
        out += [b',"%s_table":' % name.encode(), dumps(list(table)), b',"%ss":' % name.encode()]
        yield from _dump_list(column, out, dumps)
    out.append(b',"accepted_lsns":')
    yield from _dump_list(entries, out, dumps, attrgetter("accepted_lsn"))
    out += [b',"elicitations":', dumps(elicitations), b"}"]


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


def _encode_entries(items: Sequence[tuple[str, Any]], out: list[bytes], previous: dict[int, Any],
                    current: dict[int, Any], cached_ok: bool, dumps: Encoder) -> Iterator[None]:
    """``"key":value`` pieces of a dict's ``items``, comma-separated, into ``out``; a record
    encoded by the previous run and still the same object is reused (see ``EncodedRecords``).
    A record orjson could not encode is never cached: the document holding it must say so."""
    encoded = reused = 0  # since the last yield
    for count, (key, record) in enumerate(items):
        cached = cached_ok and type(record).__weakrefoffset__ != 0
        hit = previous.get(id(record)) if cached else None
        if hit is not None and hit[0]() is record and hit[1] == key:
            piece = hit[2]
            current[id(record)] = hit
            reused += 1
        else:
            fallbacks = dumps.fallbacks
            piece = dumps({key: _converter.unstructure(record)})[1:-1]
            if cached and dumps.fallbacks == fallbacks:
                current[id(record)] = (weakref.ref(record), key, piece)
            encoded += 1
        out.append(b"," + piece if count else piece)
        if encoded >= _RECORDS_PER_STEP or reused >= _ITEMS_PER_CHUNK:
            encoded = reused = 0
            yield


def encode_state_steps(state: CoreState, out: list[bytes], cache: EncodedRecords | None = None,
                       changes: Changes | None = None) -> Generator[None, None, None]:
    """Encode ``state`` into ``out`` (join it for the document), yielding after each bounded
    piece of work (about a millisecond: a few dozen full records, or a chunk of an archive
    column). With ``cache``, records encoded by the previous run are taken from it (the
    cache then holds this run's entries, once the run has finished). With ``changes`` (from
    ``changes_steps``), the document is a delta: only what changed since that base.

    The core drives it from the event loop with a checkpoint at every yield, so a checkpoint
    of a large state (tens of thousands of live commands: about a second of CPU) is spread
    over many short steps between requests, stream sends and adapter frames. Encoding in a
    worker thread instead stalled them: the encoder held the GIL for the interpreter's 5 ms
    switch interval at a time, and every step of a request waited for it again (acceptance
    p99 57-148 ms while streaming, against under 10 without a checkpoint).
    """
    previous = cache.entries if cache is not None else {}
    current: dict[int, tuple[weakref.ref[Any], str, bytes]] = {}
    dumps = Encoder()
    if changes is None:
        out.append(b'{"format":%d,"state":{' % FORMAT_VERSION)
    else:
        out.append(b'{"format":%d,"base":%d,"state":{' % (FORMAT_VERSION, changes.base_lsn))
    for field in attrs.fields(CoreState):
        if field.name in _OWN_FIELDS:
            continue
        out.append(b'"%s":' % field.name.encode())
        value = getattr(state, field.name)
        if isinstance(value, dict):
            if changes is None:
                items: Sequence[tuple[str, Any]] = list(value.items())
                out.append(b"{")
            else:
                items = [(key, value[key]) for key in changes.changed[field.name]]
                out += [b'{"del":', dumps(changes.removed[field.name]), b',"set":{']
            yield from _encode_entries(items, out, previous, current, cache is not None, dumps)
            out.append(b"}," if changes is None else b"}},")
            if items:
                yield
        else:
            out += [dumps(_converter.unstructure(value)), b","]
    yield
    if changes is None:
        yield from _archive_columns(state.archived, out, dumps)
    else:
        out += [b'"archived":{"del":', dumps(changes.removed["archived"]), b',"set":']
        archived = {key: state.archived[key] for key in changes.changed["archived"]}
        yield from _archive_columns(archived, out, dumps, b"{")
        out.append(b"}")
    out += [b',"settled":', dumps(list(state.settled)), b'},"%s":true}' % EXACT_KEY.encode() if dumps.fallbacks else b"}}"]
    if cache is not None:
        if changes is None:
            cache.entries = current  # what this full run encoded: entries of dead records go
        else:
            # A delta encodes only what changed since the last checkpoint (no hits), so it
            # adds to the cache rather than replace it; the next full run prunes it.
            previous.update(current)


# -- deltas ---------------------------------------------------------------------------------
#
# A checkpoint of a large state (tens of thousands of live commands) is tens of MB of JSON to
# join, compress and write, while between two checkpoints little of it changes. So most
# checkpoints are deltas: the scalar fields and the settle order in full, and for every dict
# field only the entries that are new or replaced since the previous checkpoint (its *base*),
# and the keys removed since. A delta names its base's LSN, so checkpoints form chains that
# start at a full one; recovery loads the chain of the latest checkpoint in order and replays
# the tail. A checkpoint is written full instead when a delta would not rebuild the state
# exactly (a key removed and added again moves to the end of its dict, which a delta cannot
# express), when the chain's deltas would hold more than half as many entries as the state
# (so recovery reads at most about 1.5 times the state), or after ``MAX_CHAIN`` deltas.

MAX_CHAIN = 64
_DICT_FIELDS = tuple(f.name for f in attrs.fields(CoreState) if f.name != "settled"
                     and f.name not in ("authority_domain_id", "core_generation", "last_lsn", "lockdown"))


@attrs.define
class Base:
    """The last checkpoint this process wrote: its LSN, the state it encoded (a ``clone``:
    copied containers holding the same immutable records), and its chain: the LSNs from the
    full checkpoint up to it, and the entries the chain's deltas hold."""

    lsn: int
    state: CoreState
    chain: tuple[int, ...]
    entries: int = 0


@attrs.define
class Changes:
    """What a delta holds, per dict field: the keys new or replaced since the base (in the
    state's order) and the keys removed."""

    base_lsn: int
    changed: dict[str, list[str]]
    removed: dict[str, list[str]]

    def count(self) -> int:
        return sum(map(len, self.changed.values())) + sum(map(len, self.removed.values()))


def _entries(state: CoreState) -> int:
    return sum(len(getattr(state, name)) for name in _DICT_FIELDS)


def changes_steps(state: CoreState, base: Base) -> Generator[None, None, Changes | None]:
    """What changed in ``state`` since ``base``, a chunk of entries per step; None when the
    checkpoint should be a full one instead (see above)."""
    if len(base.chain) > MAX_CHAIN:
        return None
    changes = Changes(base.lsn, {}, {})
    budget = _entries(state) // 2 - base.entries
    for name in _DICT_FIELDS:
        now: dict[str, Any] = getattr(state, name)
        then: dict[str, Any] = getattr(base.state, name)  # the base's own copy: never changes
        changed: list[str] = []
        removed: list[str] = []
        earlier = iter(then)  # the base's keys, passed in step with the state's
        added = False
        entries = iter(now.items())
        while chunk := list(islice(entries, _ITEMS_PER_CHUNK)):
            for key, value in chunk:
                old = then.get(key, _MISSING)
                if old is _MISSING:
                    changed.append(key)
                    added = True
                    continue
                # Applying a delta keeps the base's keys in place and appends new ones, so the
                # base's keys must come first, in the base's order.
                if added:
                    return None
                for passed in earlier:
                    if passed == key:
                        break
                    if passed in now:  # kept, but after this key now: the order changed
                        return None
                    removed.append(passed)
                if old is not value:
                    changed.append(key)
            yield
        while rest := list(islice(earlier, _ITEMS_PER_CHUNK)):  # the rest of the base's keys are gone
            removed += rest
            yield
        changes.changed[name], changes.removed[name] = changed, removed
        budget -= len(changed) + len(removed)
        if budget < 0:
            return None
    return changes


_MISSING = object()


def encode_state(state: CoreState) -> bytes:
    """The state as one JSON document (``encode_state_steps`` run to the end)."""
    out: list[bytes] = []
    for _ in encode_state_steps(state, out):
        pass
    return b"".join(out)


def pack(document: bytes) -> bytes:
    """A checkpoint document as stored: zlib level 1."""
    return zlib.compress(document, 1)


_PACK_GROUP = 256 * 1024  # bytes of pieces joined at a time by ``pack_pieces``


def pause_after(took: float, share: float) -> float:
    """How long to rest after ``took`` seconds of work so the work takes ``share`` of the time."""
    return took * (1 - share) / share


def pack_pieces(pieces: Sequence[bytes], share: float = 1.0) -> bytes:
    """``pack(b"".join(pieces))``, the same bytes, without holding the GIL for long: pieces
    are joined about 256 KB at a time and compressed (zlib releases the GIL meanwhile), so
    it runs in a worker thread beside the event loop. Joining a 30 MB document at once held
    the GIL ~15 ms, and the loop stood still for it. With ``share`` below 1, it sleeps
    between groups so that it uses about that share of a CPU (a large checkpoint then does
    not take a whole core from a busy machine at once)."""
    compressor = zlib.compressobj(1)
    out: list[bytes] = []
    group: list[bytes] = []
    size = 0
    for piece in pieces:
        group.append(piece)
        size += len(piece)
        if size >= _PACK_GROUP:
            started = time.perf_counter()
            out.append(compressor.compress(b"".join(group)))
            group, size = [], 0
            if share < 1:
                time.sleep(pause_after(time.perf_counter() - started, share))
    out += [compressor.compress(b"".join(group)), compressor.flush()]
    return b"".join(out)


def unpack(data: bytes) -> bytes:
    """The document of a stored checkpoint, compressed (``pack``) or not (older checkpoints)."""
    return data if data[:1] == b"{" else zlib.decompress(data)


def read_document(data: bytes) -> dict[str, Any] | None:
    """The parsed document of a stored checkpoint, or None when its format is not this code's
    or it cannot be read (recovery then replays the journal: it is the truth)."""
    try:
        document = decode(unpack(data))
    except (ValueError, RecursionError, zlib.error):
        return None
    return document if isinstance(document, dict) and document.get("format") == FORMAT_VERSION else None


def base_of(document: dict[str, Any]) -> int | None:
    """The LSN of the checkpoint a delta applies to; None for a full checkpoint."""
    base = document.get("base")
    return int(base) if base is not None else None


def state_of(document: dict[str, Any], base: CoreState | None = None) -> CoreState:
    """The state a document holds: a full one by itself, a delta applied to (and mutating)
    ``base``, the state of the checkpoint it names."""
    fields: dict[str, Any] = document["state"]
    columns = fields.pop("archived")
    settled = fields.pop("settled")
    if base_of(document) is None:
        state = _converter.structure(fields, CoreState)
        state.archived = _archive_from_columns(columns)
        state.settled = deque(settled)
        return state
    if base is None:
        raise ValueError(f"a delta checkpoint needs its base (LSN {base_of(document)})")
    removed = {name: fields[name]["del"] for name in _DICT_FIELDS if name != "archived"}
    patch = _converter.structure({name: (value["set"] if name in removed else value)
                                  for name, value in fields.items()}, CoreState)
    patch.archived = _archive_from_columns(columns["set"])
    removed["archived"] = columns["del"]
    for name in _DICT_FIELDS:
        target: dict[str, Any] = getattr(base, name)
        for key in removed[name]:
            del target[key]
        target.update(getattr(patch, name))
    for field in attrs.fields(CoreState):
        if field.name not in _DICT_FIELDS and field.name != "settled":
            setattr(base, field.name, getattr(patch, field.name))
    base.settled = deque(settled)
    return base


def decode_state(data: bytes, *bases: bytes) -> CoreState | None:
    """The state in a stored checkpoint, or None when its format is not this code's (then
    replay from 0). A delta needs its chain: the stored checkpoints it builds on, from the
    full one up to its own base, as ``bases``; a chain that does not start full is None too."""
    return _fold_chain([read_document(data) for data in (*bases, data)])


def _fold_chain(documents: list[dict[str, Any] | None]) -> CoreState | None:
    """A chain's state: the full checkpoint first, then each delta applied in order; None if
    a document is unreadable or does not build, the first is a delta, or a later one is not."""
    if any(d is None for d in documents) or base_of(documents[0] or {}) is not None:
        return None
    if any(base_of(d or {}) is None for d in documents[1:]):
        return None
    state = None
    try:
        for document in documents:
            state = state_of(document or {}, state)
    except Exception:  # noqa: BLE001 - a cache that does not build: replay the journal instead
        return None
    return state


def load_checkpoint(store: JournalStore, max_lsn: int | None = None) -> tuple[CoreState, int, tuple[int, ...]] | None:
    """The state of the latest checkpoint (at or below ``max_lsn``), its LSN, and its chain
    (the LSNs of the checkpoints it was built from, full one first, itself last); None when
    there is none this code can read (recovery then replays from LSN 0). A delta whose chain
    is broken (a base gone or unreadable) counts as unreadable."""
    checkpoint = store.latest_checkpoint(max_lsn)
    if checkpoint is None:
        return None
    documents = [read_document(checkpoint.state)]
    lsns = [checkpoint.lsn]  # each base fetched by the LSN its delta names: linked by construction
    while documents[0] is not None and (base := base_of(documents[0])) is not None and len(lsns) <= MAX_CHAIN + 1:
        stored = store.checkpoint_at(base)
        if stored is None or base >= lsns[0]:
            return None
        documents.insert(0, read_document(stored.state))
        lsns.insert(0, base)
    state = _fold_chain(documents)
    if state is None:
        return None
    return state, checkpoint.lsn, tuple(lsns)
