"""What the rest of pi's RPC surface means as Patchbay commands (pure, like ``mapping``).

``plan`` is the adapter's one entry point for a delivered command: the actions below first,
everything else by ``mapping.plan_command``. Each action needs a *feature* of the running pi
(``support.FEATURES``); one it lacks is refused at delivery as ``unsupported_command`` naming
the pi version that has it (the manifest's ``features`` already hide it in the UI).

- ``session-management`` ``fork {"entry_id"}``, ``clone``, ``switch_session {"session"}``
  replace the slot's Pi session: they wait for the slot to be idle, like ``new_session``, and
  bump the session generation (the slot keeps its name; the old conversation stays on disk and
  can be spawned again with ``resume``). ``set_session_name {"name"}``, ``clear_queue``,
  ``abort_retry`` act at once, without a new generation.
- ``query {"what": …}``: ``state`` (default), ``usage`` (get_session_stats), ``commands``,
  ``tree``, ``fork_messages``, ``thinking_levels``, ``export`` (export_html, the file itself).
- ``reconfigure {"auto_retry": bool}`` / ``{"auto_compaction": bool}``.
- ``instruct {"bash": "…", "exclude_from_context"?}``: pi's own ``bash`` in the session's
  context (its output reaches the model with the next prompt); cancel/interrupt abort it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchbay_adapters.pi.mapping import Plan, plan_command
from patchbay_adapters.pi.support import FEATURES

from patchbay.registry import CommandKind, Failure

REPLACING = {"fork": "fork", "clone": "clone", "switch_session": "switch_session"}
QUERIES = {"usage": ("get_session_stats", "usage"), "commands": ("get_commands", "get_commands"),
           "tree": ("get_tree", "get_tree"), "fork_messages": ("get_fork_messages", "session_tree"),
           "thinking_levels": ("get_available_thinking_levels", "thinking_levels"),
           "export": ("export_html", "export_html")}
SETTINGS = {"auto_retry": ("set_auto_retry", "auto_retry"), "auto_compaction": ("set_auto_compaction", "auto_compaction")}
ACTION_FEATURES = {"fork": "session_tree", "clone": "session_tree", "switch_session": "session_tree",
                   "set_session_name": "session_tree", "clear_queue": "clear_queue", "abort_retry": "auto_retry"}


def _refuse(failure: Failure, reason: str) -> Plan:
    return Plan("reject", failure=failure, reason=reason)


def _lacks(feature: str) -> Plan:
    return _refuse(Failure.unsupported_command, f"this pi has no {feature}: it needs pi 1.6 "
                                                "(@earendil-works/pi-coding-agent)")


def plan(kind: str, payload: Mapping[str, Any], *, busy: bool, spawn_enabled: bool,
         features: frozenset[str] = FEATURES) -> Plan:
    if kind == CommandKind.session_management and payload.get("action") in (*REPLACING, *ACTION_FEATURES):
        action = str(payload["action"])
        feature = ACTION_FEATURES[action]
        return _session_action(action, payload) if feature in features else _lacks(feature)
    if kind == CommandKind.query and payload.get("what", "state") != "state":
        found = QUERIES.get(str(payload.get("what")))
        if found is None:
            return _refuse(Failure.validation_failed, f"query 'what' must be one of: state, {', '.join(QUERIES)}")
        rpc, feature = found
        return Plan("now", rpc, side_effect=False) if feature in features else _lacks(feature)
    if kind == CommandKind.reconfigure and any(name in payload for name in SETTINGS):
        name = next(n for n in SETTINGS if n in payload)
        rpc, feature = SETTINGS[name]
        if not isinstance(payload[name], bool):
            return _refuse(Failure.validation_failed, f"reconfigure '{name}' must be true or false")
        return Plan("now", rpc, {"enabled": payload[name]}) if feature in features else _lacks(feature)
    if kind == CommandKind.instruct and "bash" in payload:
        command = payload.get("bash")
        if not isinstance(command, str) or not command.strip():
            return _refuse(Failure.validation_failed, "instruct 'bash' must be a non-empty command line")
        if "bash" not in features:
            return _lacks("bash")
        return Plan("bash", "bash", {"command": command, "excludeFromContext": bool(payload.get("exclude_from_context"))})
    return plan_command(kind, payload, busy=busy, spawn_enabled=spawn_enabled)


def _session_action(action: str, payload: Mapping[str, Any]) -> Plan:
    if action == "fork":
        entry = payload.get("entry_id")
        if not isinstance(entry, str) or not entry:
            return _refuse(Failure.validation_failed, "fork needs 'entry_id' (query what=fork_messages lists them)")
        return Plan("queue", "fork", {"entryId": entry})
    if action == "clone":
        return Plan("queue", "clone")
    if action == "switch_session":
        session = payload.get("session")
        if not isinstance(session, str) or not session or "/" in session or session.startswith("."):
            return _refuse(Failure.validation_failed, "switch_session needs 'session': a Pi session id (or the "
                                                      "name of a session file of this slot)")
        return Plan("queue", "switch_session", {"session": session})
    if action == "set_session_name":
        name = payload.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            return _refuse(Failure.validation_failed, "set_session_name needs a 'name' of 1-200 characters")
        return Plan("now", "set_session_name", {"name": name.strip()})
    if action == "clear_queue":
        return Plan("clear", "clear_queue")
    return Plan("now", "abort_retry")
