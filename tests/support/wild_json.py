"""Hypothesis strategies for JSON text no boundary may trust: lone surrogates, integers far
past 64 bits (and negative), NaN and Infinity, deep nesting, duplicate keys, huge strings.

Values are Python objects plus two markers, ``Dup`` (an object whose keys repeat) and ``Deep``
(a value wrapped in N arrays); ``encode`` writes them as JSON text the way a careless or hostile
client would (the standard library's ``NaN``/``Infinity`` and ``\\udXXX`` escapes).
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from hypothesis import strategies as st


@attrs.frozen
class Dup:
    pairs: tuple[tuple[str, Any], ...]


@attrs.frozen
class Deep:
    depth: int
    inner: Any


def encode(value: Any) -> str:
    if isinstance(value, Dup):
        return "{" + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value.pairs) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(encode(v) for v in value) + "]"
    if isinstance(value, Deep):
        return "[" * value.depth + encode(value.inner) + "]" * value.depth
    return json.dumps(value)


any_text = st.text(st.characters(exclude_categories=()), max_size=12)
odd_texts = st.sampled_from(["\ud83d", "a\udc00b", "\x00", "\u202e", "x" * 70_000, "é" * 5])
odd_ints = st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**30, -(10**30), 10**400])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), odd_ints,
                    st.floats(allow_nan=True, allow_infinity=True), any_text, odd_texts)
keys = st.one_of(st.text(max_size=8), st.sampled_from(["\ud83d", "", "type", "seq", "x" * 100]))


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(keys, inner, max_size=4),
        st.lists(st.tuples(keys, inner), min_size=2, max_size=4).map(lambda p: Dup(tuple(p))),
        st.builds(Deep, st.integers(1, 300), inner),
    )


values = st.recursive(scalars, _containers, max_leaves=8)
