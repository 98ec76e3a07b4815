"""The registries of SPEC §4: verbatim names, transition tables, observable axes, one spelling."""

from __future__ import annotations

import ast
from pathlib import Path

import patchbay_adapters
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
    ElicitationKind,
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
# ResumeVerdict ("ok", "snapshot") is left out: those words are also the stream's snapshot
# frame type and the admin answers' ``ok`` flag, so a scan for them would only find those.
REGISTRY_ENUMS = (CommandState, Failure, SubmissionOutcome, SessionConnectivityState, SessionActivityState,
                  ElicitationKind, ElicitationState, LeaseState, SnapshotTier, IdempotencyStrength,
                  registry.RevocationPolicy)
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


# The packages that speak the registries to the outside: the HTTP API and client stream, the
# adapter wire, the CLI, the conformance driver, and the adapters (plus the top-level modules). Each file is named by the
# package-relative path the allow-list below uses.
ADAPTERS = Path(patchbay_adapters.__file__).parent
SPEAKING_PACKAGES = [(SRC / "cli", "patchbay/cli"), (SRC / "web", "patchbay/web"),
                     (SRC / "wire", "patchbay/wire"), (SRC / "conformance", "patchbay/conformance"),
                     (ADAPTERS, "adapters")]

# Strings in those packages that coincide with a registry name but mean something else, with
# how many times each file may spell them: a further literal of the same word in the same file
# still fails. Every entry says what the word means there.
COINCIDENCES: dict[tuple[str, str], int] = {
    # The manifest's boolean ``spawn`` capability flag (a field name), not the command kind.
    ("adapters/shell/runtime.py", "spawn"): 1,
    ("adapters/pi/adapter.py", "spawn"): 2,  # and the planner's ``Plan.how == "spawn"`` verb
    ("adapters/pi/mapping.py", "spawn"): 1,  # the planner verb ``Plan("spawn")``
    ("patchbay/wire/api.py", "spawn"): 2,  # the session view's copy of that manifest flag
    # Pi's own RPC vocabulary: the ``cancelled`` field of an extension UI response / new-session
    # result, and ``"none"`` as the stop reason of a run with no assistant message.
    ("adapters/pi/commands.py", "cancelled"): 1,
    ("adapters/pi/mapping.py", "cancelled"): 1,
    ("adapters/pi/extras.py", "cancelled"): 1,  # the ``cancelled`` field of pi's bash result
    ("adapters/pi/mapping.py", "none"): 1,
    # ACP's vocabulary: the stop reason / permission outcome ``cancelled``, a tool call's last
    # statuses ``completed`` / ``failed``; and the manifest's ``spawn`` flag.
    ("adapters/acp/mapping.py", "cancelled"): 1,
    ("adapters/acp/mapping.py", "completed"): 1,
    ("adapters/acp/mapping.py", "failed"): 1,
    ("adapters/acp/adapter.py", "spawn"): 1,
    # The client stream's ``{"type": "live"}`` frame (the backlog is sent, live events follow).
    ("patchbay/web/_stream.py", "live"): 1,
    ("patchbay/conformance/_steps.py", "live"): 1,
    # Conformance vectors: the ``attach`` step operation, the ``origin: none`` header option,
    # the ``delivered`` result key of expect_deliveries, "none" for no mutant killed, and the
    # Quint model's own ``answered`` field and ``stale`` action outcome (ok / stale / refused).
    ("patchbay/conformance/_steps.py", "attach"): 1,
    ("patchbay/conformance/_vectors.py", "attach"): 1,
    ("patchbay/conformance/_steps.py", "none"): 1,
    ("patchbay/conformance/_steps.py", "delivered"): 1,
    ("patchbay/conformance/_report.py", "none"): 1,
    ("patchbay/conformance/_traces.py", "answered"): 1,
    ("patchbay/conformance/_traces.py", "stale"): 1,
}


def spelled_beyond_coincidence(hits: list[str]) -> list[str]:
    """The hits left once each file's allowed coincidences are used up (hits are ``path:line: 'word'``)."""
    allowance = dict(COINCIDENCES)
    left = []
    for hit in hits:
        path, _, word = hit.partition(": ")
        key = (path.rsplit(":", 1)[0], ast.literal_eval(word))
        if allowance.get(key, 0) > 0:
            allowance[key] -= 1
        else:
            left.append(hit)
    return left


def speaking_files() -> list[tuple[Path, Path, str]]:
    """Those packages' files, and the top-level modules (daemon, faults...) beside registry.py."""
    top_level = [(path, SRC, "patchbay") for path in sorted(SRC.glob("*.py")) if path.name != "registry.py"]
    return top_level + [(path, directory, label) for directory, label in SPEAKING_PACKAGES
                        for path in sorted(directory.rglob("*.py"))]


def speaking_hits() -> list[str]:
    return [f"{label}/{hit}" for path, directory, label in speaking_files()
            for hit in hand_spelled_registry_names(path, directory)]


def test_the_api_wire_cli_conformance_and_adapters_spell_no_registry_name_by_hand() -> None:
    assert len(speaking_files()) > 30
    assert spelled_beyond_coincidence(speaking_hits()) == []


def test_every_allowed_coincidence_is_still_there() -> None:
    """An entry whose word is gone from its file is stale: drop it so it cannot hide a new one."""
    counts: dict[tuple[str, str], int] = {}
    for hit in speaking_hits():
        path, _, word = hit.partition(": ")
        key = (path.rsplit(":", 1)[0], ast.literal_eval(word))
        counts[key] = counts.get(key, 0) + 1
    assert {key: counts.get(key, 0) for key in COINCIDENCES} == COINCIDENCES


def test_a_literal_beyond_the_allowance_is_reported() -> None:
    hits = ["adapters/pi/mapping.py:1: 'cancelled'", "adapters/pi/mapping.py:9: 'cancelled'",
            "patchbay/cli/__init__.py:3: 'completed'"]
    assert spelled_beyond_coincidence(hits) == ["adapters/pi/mapping.py:9: 'cancelled'",
                                                "patchbay/cli/__init__.py:3: 'completed'"]


def test_the_hand_spelling_check_can_fail(tmp_path: Path) -> None:
    sample = tmp_path / "patchbay" / "sample.py"
    sample.parent.mkdir()
    sample.write_text('"""Says "completed" in a docstring, which is fine."""\nSTATE = "completed"\n')
    assert hand_spelled_registry_names(sample, tmp_path) == ["patchbay/sample.py:2: 'completed'"]
