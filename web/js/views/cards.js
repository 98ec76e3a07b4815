// The operator's commands as chat messages and the agent's questions as cards. A command is its
// bubble (or a one-line action) with one compact status line — icon, the state's word, time —
// whose tap opens the full timeline, the copyable command id and the adapter's reason. A failure
// is one sentence from labels.js; only an unknown outcome says it may have run. Cancels and
// interrupts aimed at a command are lines on it, not cards of their own.

import { post } from "../api.js";
import { clock, h } from "../dom.js";
import { copyButton, renderInto } from "../markdown.js";
import {
  commandWord, elicitationWord, exitCode, failureSentence, isTerminal, kindWord, localWord, outcomeUnknown, retryAdvice,
} from "../labels.js";
import { putElicitation, state } from "../store.js";
import { discard, reconcile, retry, submit } from "../submit.js";
import { aimedAt } from "../transcript.js";
import { outboxNote } from "../outbox.js";

const ICON = {
  accepted: "◌", delivered: "◐", running: "▶", completed: "✓", failed: "✕", rejected: "✕", expired: "✕",
  cancelled: "⊘", superseded: "↷",
};
const STOPPABLE = ["instruct", "query", "reconfigure", "session-management", "spawn"];
const opened = new Set(); // command ids whose detail is open (kept across re-renders)

export function commandCard(command) {
  const session = state.sessions.get(command.target);
  const kinds = new Set((session && session.capabilities && session.capabilities.kinds) || []);
  const last = command.history[command.history.length - 1];
  const detailId = `detail-${command.command_id}`;
  const open = opened.has(command.command_id);
  const status = h("button", {
    type: "button", class: `status tone-${tone(command.state)} command-state`, "aria-expanded": String(open), "aria-controls": detailId,
    title: "Show the timeline",
  }, h("span", { class: "icon", "aria-hidden": "true" }, ICON[command.state] || "•"), " ", commandWord(command.state),
  h("time", {}, clock(last && last.ts)));
  const detail = h("div", { class: "detail", id: detailId, hidden: !open }, timeline(command),
    h("p", { class: "ids" }, h("span", { class: "muted" }, "Command "), h("code", { class: "cmd-id" }, command.command_id),
      copyButton(() => command.command_id, "Copy the command id")),
    detailReason(command));
  status.addEventListener("click", () => {
    const show = detail.hidden;
    detail.hidden = !show;
    status.setAttribute("aria-expanded", String(show));
    if (show) opened.add(command.command_id); else opened.delete(command.command_id);
  });
  const failed = command.terminal && !["completed", "cancelled", "superseded"].includes(command.state);
  const actions = [];
  if (!command.terminal && STOPPABLE.includes(command.kind)) {
    if (kinds.has("cancel")) actions.push(h("button", { type: "button", onclick: () => submit("cancel", command.target, { command_id: command.command_id }) }, "Cancel"));
    if (kinds.has("interrupt")) actions.push(h("button", { type: "button", onclick: () => submit("interrupt", command.target, { command_id: command.command_id }) }, "Interrupt"));
  }
  let advice = null;
  if (failed && command.kind === "instruct") {
    const again = () => submit("instruct", command.target, command.payload, { generation: session && session.generation });
    if (outcomeUnknown(command)) {
      const a = retryAdvice(command);
      advice = h("p", { class: "advice" }, a.text);
      actions.push(h("button", { type: "button", class: a.safe ? "primary" : "", onclick: again }, a.safe ? "Retry" : "Send again anyway"));
    } else {
      actions.push(h("button", { type: "button", onclick: again }, "Send again"));
    }
  }
  const instruct = command.kind === "instruct";
  const lines = cancelLines(command);
  const sentence = failed || (command.state === "cancelled" && !lines.length) ? failureSentence(command) || commandWord(command.state) : "";
  return h("article", {
    class: `card command ${instruct ? "message" : "action"} state-${command.state}`,
    dataset: { commandId: command.command_id, state: command.state },
    "aria-label": `${kindWord(command.kind)}: ${commandWord(command.state)}`,
  },
  instruct ? h("div", { class: "bubble" }, bodyOf(command), status) : h("div", { class: "action-line" }, bodyOf(command), status),
  detail,
  h("div", { class: "attach" }),
  sentence ? h("p", { class: "failure" }, sentence) : null,
  advice,
  lines,
  lateLines(command),
  actions.length ? h("div", { class: "actions" }, actions) : null);
}

function bodyOf(command) {
  const p = command.payload || {};
  if (command.kind === "instruct") {
    return h("div", { class: "user-text" }, p.mode === "steer" ? h("span", { class: "badge tone-busy" }, "steer") : null,
      p.mode === "steer" ? " " : null, p.text || "", images(p.images));
  }
  let what = kindWord(command.kind);
  if (command.kind === "reconfigure") what = p.model ? `Set model → ${p.model.provider}/${p.model.model_id}` : p.thinking_level ? `Set thinking → ${p.thinking_level}` : "List models";
  if (command.kind === "session-management") what = p.action === "new_session" ? "Start a new session" : p.action === "compact" ? "Compact the context" : String(p.action);
  if (command.kind === "query") what = { commands: "List the slash commands", export: "Export the transcript" }[p.what] || "Refresh status";
  if (command.kind === "interrupt" || command.kind === "cancel") what = `${kindWord(command.kind)} the current turn`;
  if (command.kind === "spawn") what = `Spawn a session in ${p.directory || "?"}`;
  return h("span", { class: "kind" }, what);
}

/** Inline images ({data, mime_type | mimeType | mime} base64) as data: URLs, which the CSP allows for img. */
export function images(list) {
  if (!Array.isArray(list) || !list.length) return null;
  return h("div", { class: "images" }, list.map((img, n) => h("img", {
    src: `data:${img.mime_type || img.mimeType || img.mime};base64,${img.data}`, alt: `Image ${n + 1}`, loading: "lazy", decoding: "async",
  })));
}

/** The timeline: transitions in the same second are one step. */
function timeline(command) {
  const steps = [];
  for (const t of command.history) {
    const at = clock(t.ts);
    const prev = steps[steps.length - 1];
    if (prev && prev.at === at) prev.names.push(commandWord(t.state));
    else steps.push({ at, names: [commandWord(t.state)] });
  }
  return h("ol", { class: "timeline", "aria-label": "Timeline" },
    steps.map((s) => h("li", {}, h("span", {}, s.names.join(" · ")), h("time", {}, s.at))));
}

function detailReason(command) {
  const bits = [];
  const code = exitCode(command);
  if (code !== null) bits.push(`Exit code ${code}.`);
  const reason = command.reason;
  if (reason && reason !== "accepted" && !/^exit code -?\d+$/.test(reason) && !(command.result && command.result.effect)) bits.push(`Adapter: ${reason}`);
  return bits.length ? h("p", { class: "muted small" }, bits.join(" ")) : null;
}

function cancelLines(command) {
  const lines = [];
  for (const other of state.commands.values()) {
    if (aimedAt(other) !== command.command_id) continue;
    const what = kindWord(other.kind);
    const at = clock(other.accepted_ts);
    const effect = other.result && other.result.effect;
    let text;
    if (!other.terminal) text = `${what} sent at ${at}…`;
    else if (other.state !== "completed") text = `${what} at ${at} did not go through: ${failureSentence(other) || commandWord(other.state)}`;
    else if (effect === "too_late" || (command.terminal && command.state !== "cancelled" && effect !== "cancelled")) {
      text = `${what} at ${at} came too late: it had already ${commandWord(command.state).toLowerCase()}; nothing was stopped.`;
    } else if (effect === "not_running") text = `${what} at ${at}: there was nothing to stop.`;
    else text = `Stopped by your ${what.toLowerCase()} at ${at}.`;
    lines.push(h("p", { class: "cancel-line", dataset: { commandId: other.command_id, state: other.state } }, text));
  }
  return lines;
}

function lateLines(command) {
  return (command.late_outcomes || []).map((late) => h("p", { class: "cancel-line" },
    `A later report said “${commandWord(late.candidate_state || late.state || "another outcome")}”; the first recorded outcome (${commandWord(command.state)}) stands.`));
}

export function localCard(record) {
  const actions = [];
  if (record.state === "submit_failed" || record.state === "unknown") {
    actions.push(h("button", { type: "button", onclick: () => retry(record.command_id) }, "Retry with the same command id"));
    if (record.state === "unknown") actions.push(h("button", { type: "button", onclick: () => reconcile(record.command_id) }, "Check with the core"));
    actions.push(h("button", { type: "button", onclick: () => discard(record.command_id) }, "Discard"));
  }
  return h("article", { class: `card command message local local-${record.state}`, dataset: { commandId: record.command_id, local: record.state }, "aria-label": `${kindWord(record.kind)}: ${localWord(record.state)}` },
    h("div", { class: "bubble" }, record.kind === "instruct" ? h("div", { class: "user-text" }, record.payload.text) : h("span", { class: "kind" }, kindWord(record.kind)),
      h("span", { class: `status tone-${record.state === "submitting" ? "busy" : "warn"}`, role: "status" }, localWord(record.state))),
    record.error ? h("p", { class: "failure" }, record.error) : null,
    outboxNote(record),
    record.state !== "submitting" ? h("p", { class: "advice" },
      `A retry resends command ${record.command_id} with the same idempotency key: if the core already has it, it answers with that record and nothing runs twice.`
      + (record.retries ? ` Retried ${record.retries}×.` : "")) : null,
    actions.length ? h("div", { class: "actions" }, actions) : null);
}

export function elicitationCard(view, { showSession = false } = {}) {
  const pending = view.state === "pending";
  const status = h("p", { class: "form-error", role: "alert" });
  const buttons = [];
  const answer = async (body, button) => {
    for (const b of buttons) b.disabled = true;
    status.textContent = "";
    button.setAttribute("aria-busy", "true");
    try {
      const { data } = await post(`/api/elicitations/${encodeURIComponent(view.elicitation_id)}`, body);
      if (data.elicitation) putElicitation(data.elicitation);
      if (data.outcome !== "accepted") status.textContent = data.reason || data.error || "refused";
    } catch (problem) {
      status.textContent = problem.message;
      for (const b of buttons) b.disabled = false;
    }
  };
  let controls = null;
  if (pending && view.kind === "approval") {
    const approve = h("button", { type: "button", class: "primary", onclick: () => answer({ decision: "approve" }, approve) }, "Approve");
    const deny = h("button", { type: "button", class: "danger", onclick: () => answer({ decision: "deny" }, deny) }, "Deny");
    buttons.push(approve, deny);
    controls = h("div", { class: "decide" }, deny, approve);
  } else if (pending) {
    const options = (view.options || []).map((option) => {
      const text = typeof option === "string" ? option : option.label || option.name || option.value || "option";
      const b = h("button", { type: "button", onclick: () => answer({ answer: typeof option === "string" ? option : option.value ?? option.optionId ?? text }, b) }, text);
      buttons.push(b);
      return b;
    });
    const input = h("input", { type: "text", "aria-label": "Your answer", class: "answer" });
    const send = h("button", { type: "button", class: "primary", onclick: () => answer({ answer: input.value }, send) }, "Answer");
    const decline = h("button", { type: "button", onclick: () => answer({ decline: true }, decline) }, "Decline");
    buttons.push(send, decline, input);
    controls = h("div", { class: "question-controls" }, options.length ? h("div", { class: "actions" }, options) : null,
      h("div", { class: "actions" }, input, send), h("div", { class: "actions" }, decline));
  }
  const where = showSession ? sessionLink(view.target) : null;
  const body = view.body ? h("div", { class: "md" }) : null;
  if (body) renderInto(body, { markdown: view.body });
  const outcome = !pending ? h("p", { class: "muted" }, elicitationWord(view.state),
    view.answer && view.answer.decision ? ` (${view.answer.decision})` : view.answer && view.answer.answer ? ` (“${view.answer.answer}”)` : "") : null;
  return h("article", { class: `card elicitation ${pending ? "pending" : "resolved"}`, dataset: { elicitationId: view.elicitation_id, state: view.state }, "aria-label": `${view.kind === "approval" ? "Approval" : "Question"}: ${view.title}. ${elicitationWord(view.state)}` },
    h("header", {}, h("span", { class: "kind" }, view.kind === "approval" ? "Approval needed" : "Question"),
      h("span", { class: `badge tone-${pending ? "attention" : "muted"} elicitation-state` }, elicitationWord(view.state))),
    where,
    h("h3", {}, view.title || "(untitled)"),
    body,
    pending && view.expires_at ? h("p", { class: "muted small" }, `Expires at ${clock(view.expires_at)}`) : null,
    outcome, controls, status);
}

/** "Session <name>" linking to it (the Attention view names each item's session). */
export function sessionLink(target) {
  const session = state.sessions.get(target);
  return h("p", { class: "where" }, "Session ",
    h("a", { href: `#/session/${target.split("/").map(encodeURIComponent).join("/")}` }, (session && session.label) || target));
}

export function tone(commandState) {
  if (commandState === "completed") return "ok";
  if (commandState === "running" || commandState === "delivered" || commandState === "accepted") return "busy";
  if (commandState === "cancelled" || commandState === "superseded") return "muted";
  return isTerminal(commandState) ? "bad" : "muted";
}
