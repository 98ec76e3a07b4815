"""The ACP adapter's deciding rules, as pure functions: no I/O, no clock (time is passed in).

- ``plan_command``: what a Patchbay command kind means for an ACP agent;
- ``turn_outcome``: the command outcome a ``session/prompt`` answer (``stopReason``) gives;
- ``permission_elicitation`` / ``permission_answer`` / ``expiry_answer``: the agent's
  ``session/request_permission`` ↔ a Patchbay approval elicitation and its answer;
- ``agent_environment``: the agent's explicit environment.

The transcript mapping (``session/update`` → observations) is in ``transcript``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
from patchbay_adapters.common.environment import child_environment

from patchbay.registry import CommandKind, CommandState, ElicitationKind, Failure

SUPPORTED_KINDS = [CommandKind.instruct, CommandKind.cancel, CommandKind.interrupt, CommandKind.query,
                   CommandKind.approval_response, CommandKind.reconfigure, CommandKind.session_management,
                   CommandKind.attach]
# ACP's own words that coincide with registry names: the stop reason and permission outcome
# ``cancelled``, and a tool call's last statuses.
ACP_CANCELLED = "cancelled"
TOOL_DONE = ("completed", "failed")
CANCELLED_ANSWER: dict[str, Any] = {"outcome": {"outcome": ACP_CANCELLED}}
ALLOW_KINDS = ("allow_once", "allow_always")
REJECT_KINDS = ("reject_once", "reject_always")


def bound(text: str, limit: int = 4096) -> str:
    """At most ``limit`` characters: the tail, marked when cut."""
    if len(text) <= limit:
        return text
    return f"[…{len(text) - limit} characters cut…]" + text[-limit:]


def agent_environment(adapter_env: Mapping[str, str], entries: list[str],
                      preset: Mapping[str, str] | None = None) -> dict[str, str]:
    """The minimal base (PATH, HOME, LANG, TMPDIR), a preset's variables, then ``--agent-env``.

    ``NAME`` copies the adapter's value (an error if it has none); ``NAME=VALUE`` sets one.
    Nothing else of the adapter's environment reaches the agent.
    """
    return child_environment(adapter_env, entries, flag="--agent-env", preset=preset)


# -- commands --------------------------------------------------------------------------------


@attrs.frozen
class Plan:
    """What to do with one delivered command.

    ``how``: ``queue`` (a prompt or a new session, run when the slot is idle, in order),
    ``stop`` (cancel/interrupt), ``answer`` (a permission), ``now`` (query, set mode/model),
    ``resync`` or ``reject``.
    """

    how: str
    method: str | None = None
    params: dict[str, Any] = attrs.field(factory=dict)
    failure: Failure | None = None
    reason: str | None = None


def _reject(failure: Failure, reason: str) -> Plan:
    return Plan("reject", failure=failure, reason=reason)


def prompt_content(payload: Mapping[str, Any], prompt_capabilities: Mapping[str, Any]) -> list[dict[str, Any]] | str:
    """The ``session/prompt`` content blocks for an instruct payload, or the problem."""
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        return "instruct needs a non-empty 'text'"
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}]
    images = payload.get("images") or []
    if not isinstance(images, list):
        return "instruct 'images' must be a list of {data, mime_type}"
    if images and not prompt_capabilities.get("image"):
        return "this agent does not take images (its promptCapabilities.image is not set)"
    for image in images:
        if not isinstance(image, Mapping) or not isinstance(image.get("data"), str) \
                or not isinstance(image.get("mime_type"), str):
            return "each instruct image needs base64 'data' and a 'mime_type'"
        blocks.append({"type": "image", "data": image["data"], "mimeType": image["mime_type"]})
    return blocks


def plan_command(kind: str, payload: Mapping[str, Any], *, prompt_capabilities: Mapping[str, Any],
                 modes: list[str]) -> Plan:
    if kind == CommandKind.instruct:
        if payload.get("mode", "followUp") == "steer":
            return _reject(Failure.unsupported_command,
                           "ACP agents take no steering mid-turn: send it as a follow-up (mode followUp)")
        content = prompt_content(payload, prompt_capabilities)
        if isinstance(content, str):
            return _reject(Failure.validation_failed, content)
        return Plan("queue", "session/prompt", {"prompt": content})
    if kind in (CommandKind.cancel, CommandKind.interrupt):
        return Plan("stop", "session/cancel")
    if kind == CommandKind.query:
        return Plan("now", "state")
    if kind == CommandKind.attach:
        return Plan("resync")
    if kind == CommandKind.approval_response:
        return Plan("answer")
    if kind == CommandKind.session_management:
        if payload.get("action") == "new_session":
            return Plan("queue", "session/new")
        return _reject(Failure.unsupported_command, "ACP agents support session-management 'new_session' only")
    if kind == CommandKind.reconfigure:
        return _plan_reconfigure(payload, modes)
    return _reject(Failure.unsupported_command, f"the acp adapter does not support {kind}")


def _plan_reconfigure(payload: Mapping[str, Any], modes: list[str]) -> Plan:
    mode = payload.get("mode")
    if mode is not None:
        if not isinstance(mode, str) or (modes and mode not in modes):
            offered = ", ".join(modes) if modes else "(it offers no modes)"
            return _reject(Failure.validation_failed, f"reconfigure 'mode' must be one the agent offers: {offered}")
        return Plan("now", "session/set_mode", {"modeId": mode})
    model = payload.get("model")
    if isinstance(model, Mapping):
        model_id = model.get("model_id")
        if not isinstance(model_id, str) or not model_id:
            return _reject(Failure.validation_failed, "reconfigure 'model' needs a 'model_id'")
        return Plan("now", "session/set_model", {"modelId": model_id})
    if payload.get("list_models"):
        return Plan("now", "list_models")
    return _reject(Failure.validation_failed, "reconfigure needs 'mode', 'model' or 'list_models'")


# -- turns and their outcome -----------------------------------------------------------------


@attrs.frozen
class Outcome:
    state: CommandState
    failure: Failure | None
    result: dict[str, Any] | None
    reason: str | None


def turn_outcome(stop_reason: Any, text: str, *, cancelled_by: str | None = None) -> Outcome:
    """``end_turn`` → completed (the final text is the result), ``cancelled`` → cancelled,
    ``refusal``/``max_tokens``/``max_turn_requests`` and anything unknown → failed."""
    stop = str(stop_reason)
    result = {"text": text, "stop_reason": stop}
    if stop == "end_turn":
        return Outcome(CommandState.completed, None, result, None)
    if stop == ACP_CANCELLED:
        return Outcome(CommandState.cancelled, Failure.cancelled, result, cancelled_by or "cancelled in the agent")
    reasons = {"refusal": "the agent refused to continue", "max_tokens": "the model hit its token limit",
               "max_turn_requests": "the turn hit the agent's request limit"}
    return Outcome(CommandState.failed, Failure.execution_failed, result,
                   reasons.get(stop, f"the turn ended with stop reason {stop!r}"))


# -- permissions -----------------------------------------------------------------------------


def _options(params: Mapping[str, Any]) -> list[dict[str, str]]:
    raw = params.get("options")
    options = []
    for option in raw if isinstance(raw, list) else []:
        if isinstance(option, Mapping) and isinstance(option.get("optionId"), str):
            options.append({"optionId": option["optionId"], "name": str(option.get("name") or option["optionId"]),
                            "kind": str(option.get("kind") or "")})
    return options


def _tool_text(tool_call: Mapping[str, Any]) -> str:
    raw = tool_call.get("rawInput")
    if isinstance(raw, Mapping):
        for key in ("command", "cmd"):
            value = raw.get(key)
            if isinstance(value, str):
                return value
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return " ".join(value)
        return json.dumps(raw, ensure_ascii=False, default=str)
    return ""


@attrs.frozen
class Permission:
    """A pending ``session/request_permission``: the agent's request id and its options."""

    request_id: int | str
    options: list[dict[str, str]]
    tool_call_id: str | None


def permission_elicitation(params: Mapping[str, Any], *, now: float,
                           timeout: float) -> tuple[dict[str, Any], list[dict[str, str]]] | str:
    """Elicitation fields for a permission request (options are the agent's own, by name),
    and its options; or the problem when the request cannot be asked (no usable option)."""
    options = _options(params)
    if not options:
        return "the permission request offers no options"
    tool_call = params.get("toolCall")
    tool_call = tool_call if isinstance(tool_call, Mapping) else {}
    title = str(tool_call.get("title") or tool_call.get("kind") or "a tool call")
    body = _tool_text(tool_call)
    return ({"kind": ElicitationKind.approval.value, "title": bound(f"Allow {title}?", 500),
             "body": bound(body, 4000), "options": [o["name"] for o in options],
             "expires_at": now + timeout}, options)


def _first(options: list[dict[str, str]], kinds: tuple[str, ...]) -> dict[str, str] | None:
    for kind in kinds:
        for option in options:
            if option["kind"] == kind:
                return option
    return None


def permission_answer(options: list[dict[str, str]], payload: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The ``request_permission`` result for an operator's answer, and a problem if any.

    ``decision`` approve picks the agent's allow-once option (allow-always if that is all),
    deny its reject-once option; an ``answer`` naming one of the options (its name or id)
    picks that one, if it agrees with the decision. The core has recorded the answer, so
    the agent always gets one: an unusable answer becomes a rejection, with the problem.
    """
    decision = payload.get("decision")
    wanted = ALLOW_KINDS if decision == "approve" else REJECT_KINDS
    problem = None
    named = payload.get("answer")
    chosen = None
    if isinstance(named, str):
        chosen = next((o for o in options if named in (o["name"], o["optionId"])), None)
        if chosen is None or (chosen["kind"] and chosen["kind"] not in wanted):
            problem = f"{named!r} is not an option for decision {decision!r}; the default was used"
            chosen = None
    if chosen is None:
        chosen = _first(options, wanted)
    if chosen is None and decision == "approve":
        chosen, problem = _first(options, REJECT_KINDS), "the agent offered no allow option; rejected"
    if chosen is None:
        return CANCELLED_ANSWER, problem or "the agent offered no reject option; answered as cancelled"
    return {"outcome": {"outcome": "selected", "optionId": chosen["optionId"]}}, problem


def expiry_answer(options: list[dict[str, str]]) -> dict[str, Any]:
    """An unanswered permission: the agent's reject-once option, else ``cancelled``."""
    chosen = _first(options, REJECT_KINDS)
    if chosen is None:
        return CANCELLED_ANSWER
    return {"outcome": {"outcome": "selected", "optionId": chosen["optionId"]}}

