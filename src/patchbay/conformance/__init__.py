"""Conformance: SPEC §10 vectors run against the real core, each proven able to fail.

``load_vectors`` reads ``vectors/*.json``; ``run_vector`` runs one on a fresh journal, with
or without one fault of ``patchbay.faults`` active; ``run_with_mutant`` does both (a promoted
vector must pass clean and fail under its named fault). ``python -m patchbay.conformance``
runs everything and prints the property → vectors → killed-mutant report.

This lives in the package (not under tests/) so it is type-checked with the product and an
operator can run the same vectors against a build; it only ever activates faults inside its
own run, through ``faults.injected``.
"""

from patchbay.conformance._match import VectorFailure, match
from patchbay.conformance._properties import PROPERTIES, UnknownProperty, require_property
from patchbay.conformance._runner import VectorResult, run_vector, run_with_mutant
from patchbay.conformance._vectors import (
    Vector,
    VectorError,
    by_property,
    load_vector,
    load_vectors,
    parse_vector,
)

__all__ = [
    "PROPERTIES", "UnknownProperty", "Vector", "VectorError", "VectorFailure", "VectorResult", "by_property",
    "load_vector", "load_vectors", "match", "parse_vector", "require_property", "run_vector", "run_with_mutant",
]
