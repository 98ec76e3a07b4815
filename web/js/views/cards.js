// Delivery cards (one command: its state timeline, failure in plain words, retry advice, cancel
// and interrupt, race outcomes) and elicitation cards (approve/deny or answer, exactly once).

import { post } from "../api.js";
import { clock, h } from "../dom.js";
import { renderMarkdown } from "../markdown.js";
import { commandWord, elicitationWord, failureWord, isTerminal, kindWord, localWord, retryAdvice } from "../labels.js";
import { putElicitation, state } from "../store.js";
import { discard, reconcile, retry, submit } from "../submit.js";
import { outboxNote } from "../outbox.js";

const STAGES = ["accepted", "delivered", "running"];

export function commandCard(command) {
  const session = state.sessions.get(command.target);
  const kinds = new Set((session && session.capabilities && session.capabilities.kinds) || []);
  const reached = new Map(command.history.map((t) => [t.state, t]));
  const terminal = command.terminal ? command.history[command.history.length - 1] : null;
  const steps = STAGES.map((name) => {
    const t = reached.get(name);
    return h("li", { class: t ? "done" : "todo" }, h("span", {}, commandWord(name)), h("time", {}, t ? clock(t.ts) : "—"));
  });
  steps.push(h("li", { class: terminal ? `done end tone-${tone(command.state)}` : "todo" },
    h("span", {}, terminal ? commandWord(command.state) : "Outcome"), h("time", {}, terminal ? clock(terminal.ts) : "—")));
  const actions = [];
  if (!command.terminal && ["instruct", "query", "reconfigure", "session-management", "spawn"].includes(command.kind)) {
    if (kinds.has("cancel")) actions.push(h("button", { type: "button", class: "small", onclick: () => submit("cancel", command.target, { command_id: command.command_id }) }, "Cancel"));
    if (kinds.has("interrupt")) actions.push(h("button", { type: "button", class: "small", onclick: () => submit("interrupt", command.target, { command_id: command.command_id }) }, "Interrupt"));
  }
  const failed = command.terminal && command.state !== "completed" && command.state !== "cancelled" && command.state !== "superseded";
  if (failed && command.kind === "instruct") {
    actions.push(h("button", { type: "button", class: "small", onclick: () => submit("instruct", command.target, command.payload) }, "Send again as a new command"));
  }
  return h("article", { class: `card command state-${command.state}`, dataset: { commandId: command.command_id, state: command.state }, "aria-label": `${kindWord(command.kind)} ${command.command_id}: ${commandWord(command.state)}` },
    h("header", {},
      h("span", { class: "kind" }, kindWord(command.kind)),
      h("span", { class: `badge tone-${tone(command.state)} command-state`, role: "status" }, commandWord(command.state)),
      h("span", { class: "mono muted clip" }, command.command_id)),
    body(command),
    h("ol", { class: "timeline", "aria-label": "Delivery timeline" }, steps),
    command.failure ? h("p", { class: "failure" }, failureWord(command.failure), command.reason ? ` — ${command.reason}` : "") : null,
    !command.failure && command.reason && command.reason !== "accepted" && !effect(command) ? h("p", { class: "muted small" }, command.reason) : null,
    failed ? h("p", { class: "advice" }, retryAdvice(command)) : null,
    race(command),
    actions.length ? h("div", { class: "actions" }, actions) : null);
}

function body(command) {
  const p = command.payload || {};
  if (command.kind === "instruct") {
    return h("div", { class: "user-text" }, p.mode === "steer" ? h("span", { class: "badge tone-busy" }, "steer") : null, p.text || "");
  }
  if (command.kind === "cancel" || command.kind === "interrupt") {
    return h("p", { class: "muted" }, p.command_id ? `Target: ${p.command_id}` : "Target: the current turn");
  }
  if (command.kind === "reconfigure") {
    return h("p", { class: "muted" }, p.model ? `Model → ${p.model.provider}/${p.model.model_id}` : p.thinking_level ? `Thinking level → ${p.thinking_level}` : "List models");
  }
  if (command.kind === "session-management") return h("p", { class: "muted" }, p.action === "new_session" ? "New session" : p.action === "compact" ? "Compact the context" : p.action);
  return null;
}

function race(command) {
  const notes = [];
  const effect = command.result && command.result.effect;
  if (effect === "not_running") notes.push("Nothing to stop: the target had already finished or was not running.");
  if (effect === "too_late") notes.push(`Too late: the target was already ${command.result.target_state || "finished"}; nothing was stopped.`);
  for (const other of state.commands.values()) {
    if ((other.kind === "cancel" || other.kind === "interrupt") && other.payload && other.payload.command_id === command.command_id
        && command.terminal && command.state !== "cancelled") {
      notes.push(`${commandWord(command.state)} before the ${other.kind} arrived (${other.command_id}).`);
    }
  }
  for (const late of command.late_outcomes || []) {
    const candidate = late.candidate_state || late.state || "another outcome";
    notes.push(`A later report said “${candidate}”; the first recorded outcome (${command.state}) stands.`);
  }
  return notes.length ? h("p", { class: "race" }, notes.join(" ")) : null;
}

export function localCard(record) {
  const actions = [];
  if (record.state === "submit_failed" || record.state === "unknown") {
    actions.push(h("button", { type: "button", class: "small", onclick: () => retry(record.command_id) }, "Retry with the same command id"));
    if (record.state === "unknown") actions.push(h("button", { type: "button", class: "small", onclick: () => reconcile(record.command_id) }, "Check with the core"));
    actions.push(h("button", { type: "button", class: "small", onclick: () => discard(record.command_id) }, "Discard"));
  }
  return h("article", { class: `card command local local-${record.state}`, dataset: { commandId: record.command_id, local: record.state }, "aria-label": `${kindWord(record.kind)}: ${localWord(record.state)}` },
    h("header", {}, h("span", { class: "kind" }, kindWord(record.kind)),
      h("span", { class: `badge tone-${record.state === "submitting" ? "busy" : "warn"}`, role: "status" }, localWord(record.state)),
      h("span", { class: "mono muted clip" }, record.command_id)),
    record.kind === "instruct" ? h("div", { class: "user-text" }, record.payload.text) : null,
    record.error ? h("p", { class: "failure" }, record.error) : null,
    outboxNote(record),
    record.state !== "submitting" ? h("p", { class: "advice" },
      `A retry resends command ${record.command_id} with the same idempotency key: if the core already has it, it answers with that record and nothing runs twice.`
      + (record.retries ? ` Retried ${record.retries}×.` : "")) : null,
    actions.length ? h("div", { class: "actions" }, actions) : null);
}

export function elicitationCard(view) {
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
  if (pending && view.kind === "approval") {
    const approve = h("button", { type: "button", class: "primary small", onclick: () => answer({ decision: "approve" }, approve) }, "Approve");
    const deny = h("button", { type: "button", class: "danger small", onclick: () => answer({ decision: "deny" }, deny) }, "Deny");
    buttons.push(approve, deny);
  } else if (pending) {
    for (const option of view.options || []) {
      const text = typeof option === "string" ? option : option.label || option.value || JSON.stringify(option);
      const b = h("button", { type: "button", class: "small", onclick: () => answer({ answer: typeof option === "string" ? option : option.value ?? text }, b) }, text);
      buttons.push(b);
    }
    const input = h("input", { type: "text", "aria-label": "Your answer", class: "answer" });
    const send = h("button", { type: "button", class: "primary small", onclick: () => answer({ answer: input.value }, send) }, "Answer");
    const decline = h("button", { type: "button", class: "small", onclick: () => answer({ decline: true }, decline) }, "Decline");
    buttons.push(send, decline);
    buttons.unshift(input);
  }
  const expires = pending && view.expires_at ? h("p", { class: "muted" }, `Expires at ${clock(view.expires_at)}`) : null;
  const outcome = !pending ? h("p", { class: "muted" }, elicitationWord(view.state),
    view.answer && view.answer.decision ? ` (${view.answer.decision})` : view.answer && view.answer.answer ? ` (“${view.answer.answer}”)` : "",
    view.resolved_by ? ` by command ${view.resolved_by}` : "") : null;
  return h("article", { class: `card elicitation ${pending ? "pending" : "resolved"}`, dataset: { elicitationId: view.elicitation_id, state: view.state }, "aria-label": `${view.kind === "approval" ? "Approval" : "Question"}: ${view.title}. ${elicitationWord(view.state)}` },
    h("header", {}, h("span", { class: "kind" }, view.kind === "approval" ? "Approval needed" : "Question"),
      h("span", { class: `badge tone-${pending ? "attention" : "muted"} elicitation-state`, role: "status" }, elicitationWord(view.state))),
    h("h3", {}, view.title || "(untitled)"),
    view.body ? h("div", { class: "md" }, renderMarkdown(view.body)) : null,
    h("p", { class: "mono muted clip" }, `${view.target} · gen ${view.generation}${view.command_id ? ` · for ${view.command_id}` : ""}`),
    expires, outcome,
    buttons.length ? h("div", { class: "actions" }, buttons) : null, status);
}

export function tone(commandState) {
  if (commandState === "completed") return "ok";
  if (commandState === "running" || commandState === "delivered" || commandState === "accepted") return "busy";
  if (commandState === "cancelled" || commandState === "superseded") return "muted";
  return isTerminal(commandState) ? "bad" : "muted";
}

function effect(command) {
  return command.result && typeof command.result === "object" ? command.result.effect : undefined;
}
