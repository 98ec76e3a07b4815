"""The registries of SPEC §4: verbatim names, transition tables, observable axes, one spelling."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from patchbay import registry
from patchbay.registry import (
    ACTIVITY_TRUSTED_WHEN,
    COMMAND_TRANSITIONS,
    LEASE_TRANSITIONS,
    OBSERVABLE_ACTIVITY,
    OBSERVABLE_CONNECTIVITY,
    TERMINAL_COMMAND_STATES,
    CommandKind,
    CommandState,
    ElicitationState,
    Failure,
    IdempotencyStrength,
    LeaseState,
    LocalSubmissionState,
    SessionActivityState,
    SessionConnectivityState,
    SnapshotTier,
    SubmissionOutcome,
    command_transition_allowed,
    presentation_label,
    registry_document,
)

SRC = Path(registry.__file__).parent

SPEC_NAMES = {
    CommandKind: "instruct cancel interrupt query approval-response elicitation-response reconfigure "
                 "session-management spawn attach",
    CommandState: "accepted delivered running completed rejected failed expired cancelled superseded",
    SubmissionOutcome: "accepted rejected failed unknown",
    LocalSubmissionState: "draft submitting submit_failed unknown",
    SessionConnectivityState: "live stale offline unknown failed",
    SessionActivityState: "idle working unknown",
    Failure: "validation_failed authorization_denied target_not_found unsupported_command target_offline "
             "adapter_unavailable transport_timeout delivery_rejected execution_failed "
             "execution_outcome_unknown expired cancelled superseded stale_event",
    ElicitationState: "pending answered declined expired cancelled withdrawn superseded stale",
    SnapshotTier: "authoritative partial none",
    IdempotencyStrength: "none at-patchbay-boundary end-to-end",
}


@pytest.mark.parametrize("enum", list(SPEC_NAMES), ids=lambda e: e.__name__)
def test_registry_values_are_the_spec_names_verbatim_and_in_order(enum: type) -> None:
    assert [member.value for member in enum] == SPEC_NAMES[enum].split()  # type: ignore[attr-defined]


def test_command_transition_table_is_the_spec_table() -> None:
    spec = {
        "accepted": "delivered rejected failed expired cancelled superseded",
        "delivered": "running completed rejected failed expired cancelled superseded",
        "running": "completed failed expired cancelled superseded",
    }
    for state in CommandState:
        allowed = {t.value for t in COMMAND_TRANSITIONS[state]}
        assert allowed == set(spec.get(state.value, "").split()), state
        assert state.terminal == (state in TERMINAL_COMMAND_STATES) == (not allowed)
    assert not command_transition_allowed(CommandState.running, CommandState.delivered)
    assert not command_transition_allowed(CommandState.completed, CommandState.failed)


def test_lease_lifecycle_is_its_own_registry_with_final_release_and_expiry() -> None:
    assert {s.value for s in LeaseState}.isdisjoint({s.value for s in CommandState} - {"expired"})
    assert LEASE_TRANSITIONS[LeaseState.held] == {LeaseState.held, LeaseState.released, LeaseState.expired}
    assert all(not LEASE_TRANSITIONS[s] for s in LeaseState if s.terminal)


def test_adapters_may_observe_every_axis_value_except_the_cores_stale_judgment() -> None:
    assert set(SessionConnectivityState) - OBSERVABLE_CONNECTIVITY == {SessionConnectivityState.stale}
    assert OBSERVABLE_ACTIVITY == set(SessionActivityState)
    assert ACTIVITY_TRUSTED_WHEN == {SessionConnectivityState.live}


def test_stale_or_unknown_connectivity_dominates_activity_in_labels() -> None:
    working = SessionActivityState.working
    assert presentation_label(SessionConnectivityState.live, working) == "Working"
    assert presentation_label(SessionConnectivityState.live, SessionActivityState.idle) == "Live idle"
    assert presentation_label(SessionConnectivityState.stale, working) == "Stale working"
    for connectivity in set(SessionConnectivityState) - ACTIVITY_TRUSTED_WHEN:
        assert presentation_label(connectivity, working) != "Working"
    assert presentation_label(SessionConnectivityState.offline, working) == "Offline"


def test_registry_document_is_plain_json_of_every_registry() -> None:
    document = registry_document()
    assert document["command_transitions"]["running"] == sorted(  # type: ignore[index]
        ["completed", "failed", "expired", "cancelled", "superseded"])
    assert document["observable_connectivity"] == ["failed", "live", "offline", "unknown"]
    assert document["lease_transitions"]["released"] == []  # type: ignore[index]


# -- one spelling ---------------------------------------------------------------------------

# The packages of the durable core. Every registry name they use must come from registry.py.
CORE_PACKAGES = ["domain", "core", "journal", "actors", "replay"]
REGISTRY_ENUMS = (CommandState, Failure, SubmissionOutcome, SessionConnectivityState, SessionActivityState,
                  ElicitationState, LeaseState, SnapshotTier, IdempotencyStrength, registry.RevocationPolicy)
# Multi-word names that are registry words and nothing else; single common words such as
# "none" or "unknown" are checked too, since in these packages they only ever mean the registry.
REGISTRY_WORDS = {member.value for enum in REGISTRY_ENUMS for member in enum} | {k.value for k in CommandKind}


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def hand_spelled_registry_names(path: Path, root: Path = SRC.parent) -> list[str]:
    tree = ast.parse(path.read_text())
    docstrings = _docstring_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in REGISTRY_WORDS
                and id(node) not in docstrings):
            found.append(f"{path.relative_to(root)}:{node.lineno}: {node.value!r}")
    return found


def test_the_durable_core_spells_no_registry_name_by_hand() -> None:
    files = [p for package in CORE_PACKAGES for p in sorted((SRC / package).rglob("*.py"))]
    assert len(files) > 10
    found = [hit for path in files for hit in hand_spelled_registry_names(path)]
    assert found == []


def test_the_hand_spelling_check_can_fail(tmp_path: Path) -> None:
    sample = tmp_path / "patchbay" / "sample.py"
    sample.parent.mkdir()
    sample.write_text('"""Says "completed" in a docstring, which is fine."""\nSTATE = "completed"\n')
    assert hand_spelled_registry_names(sample, tmp_path) == ["patchbay/sample.py:2: 'completed'"]
