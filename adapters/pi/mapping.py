"""The Pi adapter's deciding rules, as pure functions: no I/O, no clock (time is passed in).

- ``plan_command``: what a Patchbay command kind means for pi (which RPC command, whether it
  waits for the slot to be idle, joins the current run, or is refused at delivery);
- ``run_outcome``: the command outcome a finished pi run gives (``agent_end``);
- ``Transcript``: pi events → transcript observations, with assistant text deltas batched
  and tool output bounded;
- ``elicitation_for`` / ``ui_response``: pi dialogs ↔ Patchbay elicitations and answers;
- ``pi_environment`` / ``pi_argv``: the child's explicit environment and command line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
from patchbay_adapters.common.environment import ConfigurationError, child_environment

from patchbay.registry import (
    CommandKind,
    CommandState,
    ElicitationKind,
    Failure,
    SessionActivityState,
)

SUPPORTED_KINDS = [CommandKind.instruct, CommandKind.cancel, CommandKind.interrupt, CommandKind.query,
                   CommandKind.approval_response, CommandKind.elicitation_response, CommandKind.reconfigure,
                   CommandKind.session_management, CommandKind.attach]
MANAGED_FLAGS = ("--mode", "--session-dir", "--continue", "-c", "--session", "--resume", "-r", "--fork",
                 "--no-session", "--print", "-p", "--export")
OUTPUT_LIMIT = 4096
TEXT_FLUSH_BYTES = 2048
TEXT_FLUSH_SECONDS = 0.1
TOOL_UPDATE_SECONDS = 0.5
THINKING_LEVELS = ("off", "minimal", "low", "medium", "high", "xhigh")


# -- the child's environment and command line ----------------------------------------------


def pi_environment(adapter_env: Mapping[str, str], entries: list[str]) -> dict[str, str]:
    """The minimal base (PATH, HOME, LANG, TMPDIR) plus ``--pi-env`` entries, nothing else.

    ``NAME`` copies the adapter's value (an error if it has none); ``NAME=VALUE`` sets one.
    """
    return child_environment(adapter_env, entries, flag="--pi-env")


def check_pi_args(args: list[str]) -> None:
    """Refuse flags the adapter manages itself (mode, sessions)."""
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag in MANAGED_FLAGS:
            raise ConfigurationError(f"--pi-arg {arg}: the adapter sets {flag} itself (one session "
                                     f"directory per slot; restarts use --continue)")


def pi_argv(pi_path: str, pi_args: list[str], *, session_dir: str, extension: str, approve: str,
            approval_timeout: float, session_file: str | None = None) -> list[str]:
    """``pi --mode rpc`` for one slot: ``--session FILE`` when the slot's Pi session is known
    and on disk (after a fork or a switch it need not be the most recent one), else
    ``--continue``: the first start of an empty session directory creates a session, a restart
    resumes the most recent one."""
    resume = ["--session", session_file] if session_file else ["--continue"]
    return [pi_path, "--mode", "rpc", "--session-dir", session_dir, *resume, "-e", extension,
            "--patchbay-approve", approve, "--patchbay-approval-timeout", f"{approval_timeout:g}", *pi_args]


# -- commands --------------------------------------------------------------------------------


@attrs.frozen
class Plan:
    """What to do with one delivered command.

    ``how``: ``queue`` (run when the slot is idle, in order), ``steer`` (join the current
    run now), ``now`` (an immediate RPC call), ``stop`` (abort), ``answer`` (reply to a pi
    dialog), ``resync``, ``spawn`` or ``reject``.
    """

    how: str
    rpc: str | None = None
    fields: dict[str, Any] = attrs.field(factory=dict)
    side_effect: bool = True
    failure: Failure | None = None
    reason: str | None = None


def _reject(failure: Failure, reason: str) -> Plan:
    return Plan("reject", failure=failure, reason=reason)


def plan_command(kind: str, payload: Mapping[str, Any], *, busy: bool, spawn_enabled: bool) -> Plan:
    if kind == CommandKind.instruct:
        text = payload.get("text")
        if not isinstance(text, str) or not text.strip():
            return _reject(Failure.validation_failed, "instruct needs a non-empty 'text'")
        mode = payload.get("mode", "followUp")
        if mode not in ("followUp", "steer"):
            return _reject(Failure.validation_failed, "instruct 'mode' must be 'followUp' or 'steer'")
        if mode == "steer" and busy:
            return Plan("steer", "prompt", {"message": text, "streamingBehavior": "steer"})
        return Plan("queue", "prompt", {"message": text})
    if kind in (CommandKind.cancel, CommandKind.interrupt):
        return Plan("stop", "abort")
    if kind == CommandKind.query:
        return Plan("now", "get_state", side_effect=False)
    if kind == CommandKind.attach:
        return Plan("resync", "get_state", side_effect=False)
    if kind == CommandKind.reconfigure:
        return _plan_reconfigure(payload)
    if kind == CommandKind.session_management:
        action = payload.get("action")
        if action == "new_session":
            return Plan("queue", "new_session")
        if action == "compact":
            instructions = payload.get("instructions")
            fields = {"customInstructions": instructions} if isinstance(instructions, str) and instructions else {}
            return Plan("queue", "compact", fields)
        return _reject(Failure.validation_failed, "session-management 'action' must be one of: new_session, "
                       "compact, fork, clone, switch_session, set_session_name, clear_queue, abort_retry")
    if kind in (CommandKind.approval_response, CommandKind.elicitation_response):
        return Plan("answer", "extension_ui_response")
    if kind == CommandKind.spawn and spawn_enabled:
        return Plan("spawn")
    reason = ("spawn is not enabled: start the adapter with --spawn-root DIR" if kind == CommandKind.spawn
              else f"the pi adapter does not support {kind}")
    return _reject(Failure.unsupported_command, reason)


def _plan_reconfigure(payload: Mapping[str, Any]) -> Plan:
    model = payload.get("model")
    if isinstance(model, Mapping):
        provider, model_id = model.get("provider"), model.get("model_id")
        if not isinstance(provider, str) or not isinstance(model_id, str) or not provider or not model_id:
            return _reject(Failure.validation_failed, "reconfigure 'model' needs 'provider' and 'model_id'")
        return Plan("now", "set_model", {"provider": provider, "modelId": model_id})
    level = payload.get("thinking_level")
    if level is not None:
        if level not in THINKING_LEVELS:
            return _reject(Failure.validation_failed, f"thinking_level must be one of {', '.join(THINKING_LEVELS)}")
        return Plan("now", "set_thinking_level", {"level": level})
    if payload.get("list_models"):
        return Plan("now", "get_available_models", side_effect=False)
    return _reject(Failure.validation_failed, "reconfigure needs 'model', 'thinking_level', 'list_models', "
                   "'auto_retry' or 'auto_compaction'")


def model_summary(model: Any) -> dict[str, Any] | None:
    if not isinstance(model, Mapping):
        return None
    return {"provider": model.get("provider"), "model_id": model.get("id"), "name": model.get("name"),
            "reasoning": bool(model.get("reasoning"))}


# -- runs and their outcome ------------------------------------------------------------------


def message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content
                       if isinstance(part, Mapping) and part.get("type") == "text")
    return ""


def conversation(messages: Any) -> list[dict[str, Any]]:
    """The conversation's messages: pi 1.6 also lists its system prompt (role ``system``)."""
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict) and m.get("role") != "system"]


def last_assistant(messages: Any) -> Mapping[str, Any] | None:
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "assistant":
            return message
    return None


@attrs.frozen
class Outcome:
    state: CommandState
    failure: Failure | None
    result: dict[str, Any] | None
    reason: str | None


def run_outcome(messages: Any, *, cancelled_by: str | None = None) -> Outcome:
    """The outcome of a run from ``agent_end``'s messages: the final assistant text is the result.

    ``aborted`` → cancelled; ``error`` → failed/execution_failed; otherwise completed.
    """
    final = last_assistant(messages)
    text = message_text(final) if final is not None else ""
    stop = str(final.get("stopReason")) if final is not None else "none"
    result = {"text": text, "stop_reason": stop}
    if stop == "aborted":
        return Outcome(CommandState.cancelled, Failure.cancelled, result, cancelled_by or "aborted in pi")
    if stop == "error":
        error = str(final.get("errorMessage") or "the model call failed") if final is not None else ""
        return Outcome(CommandState.failed, Failure.execution_failed, result, bound(error, 500))
    return Outcome(CommandState.completed, None, result, None)


# -- transcript observations -----------------------------------------------------------------


def bound(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """At most ``limit`` characters: the tail, marked when cut."""
    if len(text) <= limit:
        return text
    return f"[…{len(text) - limit} characters cut…]" + text[-limit:]


def _tool_output(result: Any) -> str:
    if isinstance(result, Mapping):
        return message_text(result)
    return "" if result is None else str(result)


def _args(args: Any) -> str:
    if isinstance(args, Mapping) and isinstance(args.get("command"), str):
        return bound(args["command"], 1000)
    return bound(json.dumps(args, ensure_ascii=False, default=str), 1000)


@attrs.define
class Transcript:
    """pi events → observations (dicts with a ``type``), one slot's worth of state.

    Assistant text deltas are held and sent as one ``assistant_delta`` when they reach
    ``TEXT_FLUSH_BYTES``, when ``TEXT_FLUSH_SECONDS`` passed since the first held delta
    (``due``), or before any other observation, so the transcript order is kept.
    """

    pending: list[str] = attrs.field(factory=list)
    pending_since: float | None = None
    tool_updates: dict[str, float] = attrs.field(factory=dict)

    def due(self) -> float | None:
        """When the held text must be flushed (None: nothing held)."""
        return None if self.pending_since is None else self.pending_since + TEXT_FLUSH_SECONDS

    def flush(self) -> list[dict[str, Any]]:
        if not self.pending:
            return []
        text = "".join(self.pending)
        self.pending.clear()
        self.pending_since = None
        return [{"type": "assistant_delta", "text": text}]

    def feed(self, event: Mapping[str, Any], now: float) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "message_update":
            update = event.get("assistantMessageEvent")
            if isinstance(update, Mapping) and update.get("type") == "text_delta":
                self.pending.append(str(update.get("delta", "")))
                if self.pending_since is None:
                    self.pending_since = now
                if sum(len(p) for p in self.pending) >= TEXT_FLUSH_BYTES:
                    return self.flush()
            return []
        observation = self._observe(kind, event, now)
        if observation is None:
            return []
        return [*self.flush(), observation]

    def _observe(self, kind: Any, event: Mapping[str, Any], now: float) -> dict[str, Any] | None:
        if kind in ("agent_start", "turn_start", "turn_end"):
            return {"type": kind}
        if kind == "agent_settled":
            return {"type": "agent_settled", "aborted": bool(event.get("aborted"))}
        if kind == "agent_end":
            final = last_assistant(event.get("messages"))
            return {"type": "agent_end", "stop_reason": final.get("stopReason") if final else None}
        if kind in ("message_start", "message_end"):
            return self._message(kind, event.get("message"))
        if kind == "tool_execution_start":
            self.tool_updates[str(event.get("toolCallId"))] = now
            return {"type": "tool_start", "tool_call_id": event.get("toolCallId"), "tool": event.get("toolName"),
                    "args": _args(event.get("args"))}
        if kind == "tool_execution_update":
            call = str(event.get("toolCallId"))
            if now - self.tool_updates.get(call, 0.0) < TOOL_UPDATE_SECONDS:
                return None
            self.tool_updates[call] = now
            return {"type": "tool_update", "tool_call_id": call, "tool": event.get("toolName"),
                    "output": bound(_tool_output(event.get("partialResult")))}
        if kind == "tool_execution_end":
            self.tool_updates.pop(str(event.get("toolCallId")), None)
            return {"type": "tool_end", "tool_call_id": event.get("toolCallId"), "tool": event.get("toolName"),
                    "output": bound(_tool_output(event.get("result"))), "is_error": bool(event.get("isError"))}
        if kind in ("compaction_start", "compaction_end"):
            result = event.get("result")
            summary = result.get("summary") if isinstance(result, Mapping) else None
            return {"type": "compaction", "phase": kind.split("_")[1], "reason": event.get("reason"),
                    "summary": bound(str(summary), 1000) if summary else None,
                    "aborted": bool(event.get("aborted")), "error": event.get("errorMessage")}
        if kind == "queue_update":
            steering, follow_up = event.get("steering") or [], event.get("followUp") or []
            return {"type": "queue", "steering": len(steering), "follow_up": len(follow_up),
                    "texts": [bound(str(t), 200) for t in [*steering, *follow_up][:20]]}
        if kind == "extension_error":
            return {"type": "error", "source": "extension", "text": bound(str(event.get("error", "")), 1000)}
        if kind in ("auto_retry_start", "auto_retry_end"):
            return {"type": "retry", "phase": kind.rsplit("_", 1)[1], "attempt": event.get("attempt"),
                    "error": event.get("errorMessage") or event.get("finalError")}
        return None

    @staticmethod
    def _message(kind: str, message: Any) -> dict[str, Any] | None:
        if not isinstance(message, Mapping):
            return None
        role = message.get("role")
        if role == "user" and kind == "message_start":
            return {"type": "user_message", "text": bound(message_text(message))}
        if role == "assistant" and kind == "message_end":
            observation = {"type": "assistant_message", "text": bound(message_text(message), 64 * 1024),
                           "stop_reason": message.get("stopReason")}
            if message.get("errorMessage"):
                observation["error"] = bound(str(message["errorMessage"]), 1000)
            return observation
        return None


def activity_after(event_type: Any) -> SessionActivityState | None:
    """The SessionActivityState a pi event implies (None: unchanged)."""
    if event_type in ("agent_start", "turn_start"):
        return SessionActivityState.working
    if event_type in ("agent_end", "agent_settled"):
        return SessionActivityState.idle
    return None


# -- dialogs ---------------------------------------------------------------------------------

DIALOGS = ("confirm", "select", "input", "editor")


def elicitation_for(request: Mapping[str, Any], now: float) -> dict[str, Any] | None:
    """An ``extension_ui_request`` dialog as elicitation fields (None: not a dialog).

    ``confirm`` is an approval; ``select``, ``input`` and ``editor`` are questions. A pi
    timeout (milliseconds) becomes ``expires_at`` (``now`` is wall-clock seconds).
    """
    method = request.get("method")
    if method not in DIALOGS:
        return None
    timeout = request.get("timeout")
    expires_at = now + float(timeout) / 1000 if isinstance(timeout, (int, float)) and timeout > 0 else None
    options = [str(o) for o in request.get("options") or []] if method == "select" else []
    body = request.get("message") or request.get("placeholder") or request.get("prefill") or ""
    kind = ElicitationKind.approval if method == "confirm" else ElicitationKind.question
    return {"kind": kind.value, "title": bound(str(request.get("title") or ""), 500),
            "body": bound(str(body), 4000), "options": options, "expires_at": expires_at}


def ui_response(ui_id: str, method: str, options: list[str],
                payload: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The ``extension_ui_response`` for an operator's answer, and a problem if it is not usable.

    The core has already recorded the answer, so pi's dialog must be resolved either way: an
    answer pi cannot take (not a string, not one of the options) dismisses the dialog
    (``cancelled``), and the problem explains the command's failure.
    """
    dismiss = {"type": "extension_ui_response", "id": ui_id, "cancelled": True}
    if method == "confirm":
        decision = payload.get("decision")
        if decision not in ("approve", "deny"):
            return dismiss, "an approval needs 'decision' 'approve' or 'deny'; the dialog was dismissed"
        return {"type": "extension_ui_response", "id": ui_id, "confirmed": decision == "approve"}, None
    if payload.get("decline"):
        return dismiss, None
    answer = payload.get("answer")
    if not isinstance(answer, str):
        return dismiss, "the answer to a pi dialog must be a string; the dialog was dismissed"
    if options and answer not in options:
        return dismiss, f"the answer must be one of: {', '.join(options)}; the dialog was dismissed"
    return {"type": "extension_ui_response", "id": ui_id, "value": answer}, None
