"""The pure rules of the rest of Pi's surface: plans per feature, result shapes, entries."""

from __future__ import annotations

from patchbay_adapters.pi.actions import plan
from patchbay_adapters.pi.extras import shape, tree_summary, usage_summary
from patchbay_adapters.pi.repair import entry_observation
from patchbay_adapters.pi.support import FEATURES, LEGACY_MISSING

LEGACY = FEATURES - LEGACY_MISSING


def test_session_actions_plan_by_feature_and_validate_their_fields() -> None:
    fork = plan("session-management", {"action": "fork", "entry_id": "e1"}, busy=True, spawn_enabled=False)
    assert (fork.how, fork.rpc, fork.fields) == ("queue", "fork", {"entryId": "e1"})
    assert plan("session-management", {"action": "clone"}, busy=False, spawn_enabled=False).how == "queue"
    assert plan("session-management", {"action": "fork"}, busy=False, spawn_enabled=False).how == "reject"
    switch = plan("session-management", {"action": "switch_session", "session": "../../etc/passwd"}, busy=False,
                  spawn_enabled=False)
    assert switch.how == "reject" and "session id" in str(switch.reason)
    clear = plan("session-management", {"action": "clear_queue"}, busy=True, spawn_enabled=False)
    assert clear.how == "clear"
    legacy = plan("session-management", {"action": "clear_queue"}, busy=True, spawn_enabled=False, features=LEGACY)
    assert (legacy.how, legacy.failure) == ("reject", "unsupported_command") and "pi 1.6" in str(legacy.reason)
    named = plan("session-management", {"action": "set_session_name", "name": "  x  "}, busy=True, spawn_enabled=False)
    assert (named.how, named.fields) == ("now", {"name": "x"})
    assert plan("session-management", {"action": "new_session"}, busy=True, spawn_enabled=False).rpc == "new_session"


def test_queries_settings_and_bash_plans() -> None:
    usage = plan("query", {"what": "usage"}, busy=True, spawn_enabled=False)
    assert (usage.how, usage.rpc, usage.side_effect) == ("now", "get_session_stats", False)
    assert plan("query", {}, busy=False, spawn_enabled=False).rpc == "get_state"
    assert plan("query", {"what": "nope"}, busy=False, spawn_enabled=False).failure == "validation_failed"
    assert plan("query", {"what": "tree"}, busy=False, spawn_enabled=False, features=LEGACY).how == "reject"
    retry = plan("reconfigure", {"auto_retry": False}, busy=False, spawn_enabled=False)
    assert (retry.rpc, retry.fields) == ("set_auto_retry", {"enabled": False})
    assert plan("reconfigure", {"auto_compaction": 1}, busy=False, spawn_enabled=False).how == "reject"
    bash = plan("instruct", {"bash": "ls -l", "exclude_from_context": True}, busy=True, spawn_enabled=False)
    assert (bash.how, bash.fields) == ("bash", {"command": "ls -l", "excludeFromContext": True})
    assert plan("instruct", {"bash": " "}, busy=False, spawn_enabled=False).how == "reject"
    assert plan("instruct", {"text": "hi"}, busy=False, spawn_enabled=False).how == "queue"


def test_usage_tree_and_command_results_are_bounded_and_renamed() -> None:
    usage = usage_summary({"tokens": {"input": 5, "output": 2, "cacheRead": 1, "cacheWrite": 0, "total": 8},
                           "cost": 0.5, "contextUsage": {"tokens": None, "contextWindow": 100, "percent": None},
                           "userMessages": 1, "assistantMessages": 1, "toolCalls": "x", "totalMessages": 2})
    assert usage["tokens"] == {"input": 5, "output": 2, "cache_read": 1, "cache_write": 0, "total": 8}
    assert usage["context"] == {"tokens": None, "window": 100, "percent": None}
    assert usage["messages"]["tool_calls"] is None  # not a number: not passed on
    assert usage_summary({})["context"] is None
    tree = tree_summary({"tree": [{"entry": {"id": "a", "parentId": None, "type": "message",
                                             "message": {"role": "user", "content": "hi"}},
                                   "children": [{"entry": {"id": "b", "parentId": "a", "type": "message",
                                                           "message": {"role": "assistant",
                                                                       "content": [{"type": "text", "text": "yo"}]}},
                                                 "children": []}]}, "junk"], "leafId": "b"})
    assert [(n["id"], n["role"], n["text"]) for n in tree["nodes"]] == [("a", "user", "hi"), ("b", "assistant", "yo")]
    assert tree["leaf_id"] == "b" and tree["truncated"] is False
    commands = shape("get_commands", {"commands": [{"name": "ping", "description": "d" * 999, "source": "extension"}]})
    assert commands is not None and len(commands["commands"][0]["description"]) < 400


def test_session_entries_become_entry_observations() -> None:
    user = entry_observation({"type": "message", "id": "e1", "parentId": None, "timestamp": "t",
                              "message": {"role": "user", "content": [{"type": "text", "text": "hello"}]}})
    assert user == {"type": "entry", "entry_id": "e1", "parent_id": None, "entry_type": "message", "timestamp": "t",
                    "role": "user", "text": "hello"}
    tool = entry_observation({"type": "message", "id": "e2", "parentId": "e1",
                              "message": {"role": "toolResult", "toolName": "bash", "content": "x" * 10000}})
    assert tool is not None and tool["tool"] == "bash" and len(tool["text"]) < 4100
    model = entry_observation({"type": "model_change", "id": "e3", "provider": "fake", "modelId": "m"})
    assert model is not None and model["text"] == "fake/m"
    assert entry_observation({"type": "message"}) is None
