"""The Pi adapter's deciding rules, without pi: kinds, outcomes, transcript, dialogs, environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from patchbay_adapters.pi.mapping import (
    SUPPORTED_KINDS,
    TEXT_FLUSH_BYTES,
    TEXT_FLUSH_SECONDS,
    ConfigurationError,
    Transcript,
    bound,
    check_pi_args,
    elicitation_for,
    pi_argv,
    pi_environment,
    plan_command,
    run_outcome,
    ui_response,
)
from patchbay_adapters.pi.state import SlotState

from patchbay.registry import CommandKind, CommandState, Failure


def test_every_command_kind_is_planned_or_refused_as_unsupported() -> None:
    for kind in CommandKind:
        plan = plan_command(kind.value, {}, busy=False, spawn_enabled=False)
        if kind.value in SUPPORTED_KINDS:
            assert plan.failure is not Failure.unsupported_command, kind
        else:
            assert (plan.how, plan.failure) == ("reject", Failure.unsupported_command), kind
    assert plan_command("spawn", {}, busy=False, spawn_enabled=True).how == "spawn"
    assert "--spawn-root" in (plan_command("spawn", {}, busy=False, spawn_enabled=False).reason or "")


def test_instruct_queues_a_follow_up_by_default_and_steers_only_while_busy() -> None:
    idle = plan_command("instruct", {"text": "hi"}, busy=False, spawn_enabled=False)
    assert (idle.how, idle.rpc, idle.fields) == ("queue", "prompt", {"message": "hi"})
    assert plan_command("instruct", {"text": "hi"}, busy=True, spawn_enabled=False).how == "queue"
    steer = plan_command("instruct", {"text": "hi", "mode": "steer"}, busy=True, spawn_enabled=False)
    assert (steer.how, steer.fields["streamingBehavior"]) == ("steer", "steer")
    assert plan_command("instruct", {"text": "hi", "mode": "steer"}, busy=False, spawn_enabled=False).how == "queue"
    for payload in ({}, {"text": "  "}, {"text": "x", "mode": "now"}):
        assert plan_command("instruct", payload, busy=False, spawn_enabled=False).failure is Failure.validation_failed


@pytest.mark.parametrize(("kind", "payload", "how", "rpc", "fields"), [
    ("cancel", {}, "stop", "abort", {}),
    ("interrupt", {"command_id": "c1"}, "stop", "abort", {}),
    ("query", {}, "now", "get_state", {}),
    ("attach", {}, "resync", "get_state", {}),
    ("reconfigure", {"model": {"provider": "p", "model_id": "m"}}, "now", "set_model", {"provider": "p", "modelId": "m"}),
    ("reconfigure", {"thinking_level": "high"}, "now", "set_thinking_level", {"level": "high"}),
    ("reconfigure", {"list_models": True}, "now", "get_available_models", {}),
    ("session-management", {"action": "new_session"}, "queue", "new_session", {}),
    ("session-management", {"action": "compact", "instructions": "keep code"}, "queue", "compact",
     {"customInstructions": "keep code"}),
    ("approval-response", {"elicitation_id": "e", "decision": "approve"}, "answer", "extension_ui_response", {}),
])
def test_kind_mapping(kind: str, payload: dict[str, object], how: str, rpc: str, fields: dict[str, object]) -> None:
    plan = plan_command(kind, payload, busy=True, spawn_enabled=False)
    assert (plan.how, plan.rpc, plan.fields) == (how, rpc, fields)


@pytest.mark.parametrize("payload", [{}, {"model": {"provider": "p"}}, {"thinking_level": "extreme"}])
def test_malformed_reconfigure_is_refused_at_delivery(payload: dict[str, object]) -> None:
    assert plan_command("reconfigure", payload, busy=False, spawn_enabled=False).failure is Failure.validation_failed
    assert plan_command("session-management", {"action": "fork"}, busy=False,
                        spawn_enabled=False).failure is Failure.validation_failed


def _assistant(text: str, stop: str, **extra: object) -> dict[str, object]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}], "stopReason": stop, **extra}


def test_run_outcome_takes_the_final_assistant_text() -> None:
    messages = [{"role": "user", "content": "q"}, _assistant("first", "toolUse"),
                {"role": "toolResult", "content": []}, _assistant("final", "stop")]
    done = run_outcome(messages)
    assert (done.state, done.failure, done.result) == (CommandState.completed, None,
                                                        {"text": "final", "stop_reason": "stop"})
    aborted = run_outcome([_assistant("par", "aborted")], cancelled_by="cancelled by c9")
    assert (aborted.state, aborted.failure, aborted.reason) == (CommandState.cancelled, Failure.cancelled,
                                                                "cancelled by c9")
    error = run_outcome([_assistant("", "error", errorMessage="429 rate limited")])
    assert (error.state, error.failure, error.reason) == (CommandState.failed, Failure.execution_failed,
                                                          "429 rate limited")
    assert run_outcome([]).state is CommandState.completed


def _delta(text: str) -> dict[str, object]:
    return {"type": "message_update", "assistantMessageEvent": {"type": "text_delta", "delta": text}}


def test_text_deltas_are_batched_and_flushed_before_the_next_observation() -> None:
    transcript = Transcript()
    assert transcript.feed(_delta("Hel"), now=10.0) == []
    assert transcript.feed(_delta("lo"), now=10.01) == []
    assert transcript.due() == pytest.approx(10.0 + TEXT_FLUSH_SECONDS)
    observed = transcript.feed({"type": "message_end", "message": _assistant("Hello", "stop")}, now=10.02)
    assert observed == [{"type": "assistant_delta", "text": "Hello"},
                        {"type": "assistant_message", "text": "Hello", "stop_reason": "stop"}]
    assert transcript.due() is None
    big = transcript.feed(_delta("x" * TEXT_FLUSH_BYTES), now=12.0)
    assert big == [{"type": "assistant_delta", "text": "x" * TEXT_FLUSH_BYTES}]


def test_tool_events_are_bounded_and_updates_throttled() -> None:
    transcript = Transcript()
    start = transcript.feed({"type": "tool_execution_start", "toolCallId": "t1", "toolName": "bash",
                             "args": {"command": "ls"}}, now=0.0)
    assert start == [{"type": "tool_start", "tool_call_id": "t1", "tool": "bash", "args": "ls"}]
    update = {"type": "tool_execution_update", "toolCallId": "t1", "toolName": "bash",
              "partialResult": {"content": [{"type": "text", "text": "a"}]}}
    assert transcript.feed(update, now=0.1) == []
    assert transcript.feed(update, now=1.0)[0]["output"] == "a"
    end = transcript.feed({"type": "tool_execution_end", "toolCallId": "t1", "toolName": "bash", "isError": True,
                           "result": {"content": [{"type": "text", "text": "y" * 10_000}]}}, now=1.1)
    assert end[0]["is_error"] is True and len(end[0]["output"]) < 4200 and end[0]["output"].endswith("y")
    assert bound("abc", 2) == "[…1 characters cut…]bc"


def test_user_echo_compaction_and_unknown_events() -> None:
    transcript = Transcript()
    user = {"role": "user", "content": [{"type": "text", "text": "do it"}]}
    assert transcript.feed({"type": "message_start", "message": user}, now=0) == [
        {"type": "user_message", "text": "do it"}]
    assert transcript.feed({"type": "message_end", "message": user}, now=0) == []
    compaction = transcript.feed({"type": "compaction_end", "reason": "manual", "result": {"summary": "S"}}, now=0)
    assert compaction[0]["phase"] == "end" and compaction[0]["summary"] == "S"
    assert transcript.feed({"type": "something_new"}, now=0) == []


def test_dialogs_become_elicitations_and_answers_become_ui_responses() -> None:
    confirm = {"type": "extension_ui_request", "id": "u1", "method": "confirm", "title": "Allow bash?",
               "message": "rm -rf build", "timeout": 3000}
    approval = elicitation_for(confirm, now=100.0)
    assert approval == {"kind": "approval", "title": "Allow bash?", "body": "rm -rf build", "options": [],
                        "expires_at": 103.0}
    select = {"id": "u2", "method": "select", "title": "Pick", "options": ["a", "b"]}
    question = elicitation_for(select, now=0.0)
    assert question is not None and (question["kind"], question["options"], question["expires_at"]) == (
        "question", ["a", "b"], None)
    assert elicitation_for({"id": "u3", "method": "notify", "message": "hi"}, now=0.0) is None

    assert ui_response("u1", "confirm", [], {"decision": "approve"}) == (
        {"type": "extension_ui_response", "id": "u1", "confirmed": True}, None)
    assert ui_response("u1", "confirm", [], {"decision": "deny"})[0]["confirmed"] is False
    assert ui_response("u2", "select", ["a", "b"], {"answer": "b"})[0]["value"] == "b"
    assert ui_response("u2", "select", ["a", "b"], {"decline": True}) == (
        {"type": "extension_ui_response", "id": "u2", "cancelled": True}, None)
    dismissed, problem = ui_response("u2", "select", ["a", "b"], {"answer": "c"})
    assert dismissed["cancelled"] is True and problem is not None and "a, b" in problem
    assert ui_response("u4", "input", [], {"answer": 7})[1] is not None


def test_pi_gets_only_the_base_environment_and_configured_entries() -> None:
    adapter_env = {"PATH": "/bin", "HOME": "/h", "LANG": "C.UTF-8", "SECRET_TOKEN": "s", "OPENAI_API_KEY": "k"}
    env = pi_environment(adapter_env, ["OPENAI_API_KEY", "PI_OFFLINE=1", "EMPTY="])
    assert env == {"PATH": "/bin", "HOME": "/h", "LANG": "C.UTF-8", "OPENAI_API_KEY": "k", "PI_OFFLINE": "1",
                   "EMPTY": ""}
    for bad in (["MISSING"], ["1BAD=x"], ["=x"], ["A-B=1"]):
        with pytest.raises(ConfigurationError):
            pi_environment(adapter_env, bad)


def test_flags_the_adapter_manages_are_refused_and_the_argv_continues() -> None:
    check_pi_args(["--no-context-files", "--provider", "fake", "-e", "x.ts"])
    for flag in (["--mode", "json"], ["--session-dir=/x"], ["-c"], ["--no-session"]):
        with pytest.raises(ConfigurationError):
            check_pi_args(flag)
    argv = pi_argv("pi", ["--no-context-files"], session_dir="/s", extension="/e.ts", approve="bash",
                   approval_timeout=30)
    assert argv[:6] == ["pi", "--mode", "rpc", "--session-dir", "/s", "--continue"]
    assert argv[-1] == "--no-context-files" and "--patchbay-approval-timeout" in argv


def test_slot_generation_survives_restarts_and_bumps_on_a_different_pi_session(tmp_path: Path) -> None:
    state = SlotState.load(tmp_path, "main")
    assert (state.generation, state.pi_session_id) == (1, None)
    assert state.observe_session("s1") is False
    assert state.observe_session("s1") is False
    again = SlotState.load(tmp_path, "main")
    assert (again.generation, again.pi_session_id) == (1, "s1")
    assert again.observe_session("s2") is True
    assert SlotState.load(tmp_path, "main").generation == 2
    (tmp_path / "slots" / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="damaged"):
        SlotState.load(tmp_path, "broken")
    with pytest.raises(ValueError):
        SlotState.load(tmp_path, "../escape")
