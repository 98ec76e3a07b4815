// Presentation words over the registry's names. The registry (GET /api/registry) is the source
// of truth: every state the core can send must have a word here, and `checkRegistry` reports
// any registry value this file does not know (it then shows the raw name rather than guess).

export let registry = null;

const CONNECTIVITY = { live: "Live", stale: "Stale", offline: "Offline", unknown: "Unknown", failed: "Failed" };
const ACTIVITY = { idle: "idle", working: "working", unknown: "activity unknown" };

const COMMAND = {
  accepted: "Accepted", delivered: "Delivered", running: "Running", completed: "Completed",
  rejected: "Rejected", failed: "Failed", expired: "Expired", cancelled: "Cancelled", superseded: "Superseded",
};

const LOCAL = {
  draft: "Draft", submitting: "Sending…", submit_failed: "Not sent", unknown: "Unknown — not confirmed",
};

// One sentence per failure, never contradicting itself. `ran` is what is known about whether the
// action ran: "no", "yes" (it ran and failed), "unknown" (it may have run: the only case that
// talks about retrying safely) or "stopped". A function gets the command view.
const FAILURE = {
  validation_failed: { ran: "no", text: "Not accepted: the request was not valid." },
  authorization_denied: { ran: "no", text: "Not allowed by your grants, so it did not run." },
  target_not_found: { ran: "no", text: "The session no longer exists (or was replaced), so it did not run." },
  unsupported_command: { ran: "no", text: "This session does not offer that, so it did not run." },
  target_offline: { ran: "no", text: "The session was offline, so it did not run." },
  adapter_unavailable: { ran: "no", text: "The adapter went away before it took the command, so it did not run." },
  transport_timeout: { ran: "unknown", text: "No answer came in time: it may have run." },
  delivery_rejected: { ran: "no", text: "The adapter refused it, so it did not run." },
  execution_failed: { ran: "yes", text: (c) => `It ran and failed${exitCode(c) !== null ? ` with exit code ${exitCode(c)}` : ""}.` },
  execution_outcome_unknown: { ran: "unknown", text: "The outcome is unknown: it may have run." },
  expired: { ran: "no", text: "Its time window closed before it could be delivered." },
  cancelled: { ran: "stopped", text: "Cancelled." },
  superseded: { ran: "no", text: "Replaced by a newer command." },
  stale_event: { ran: "no", text: "A late event from an old generation; it was ignored." },
};

const ELICITATION = {
  pending: "Waiting for you", answered: "Answered", declined: "Declined", expired: "Expired",
  cancelled: "Cancelled", withdrawn: "Withdrawn by the agent", superseded: "Superseded (session replaced)",
  stale: "Stale",
};

const KIND = {
  instruct: "Message", cancel: "Cancel", interrupt: "Interrupt", query: "Status query",
  "approval-response": "Approval answer", "elicitation-response": "Answer", reconfigure: "Reconfigure",
  "session-management": "Session action", spawn: "Spawn", attach: "Attach",
};

const TABLES = {
  connectivity_states: CONNECTIVITY, activity_states: ACTIVITY, command_states: COMMAND,
  local_submission_states: LOCAL, failures: FAILURE, elicitation_states: ELICITATION, command_kinds: KIND,
};

/** Install the registry and return the names this file has no words for (should be empty). */
export function checkRegistry(doc) {
  registry = doc;
  registry.terminal = new Set(doc.terminal_command_states);
  const missing = [];
  for (const [name, table] of Object.entries(TABLES)) {
    for (const value of doc[name] || []) if (!(value in table)) missing.push(`${name}:${value}`);
  }
  return missing;
}

function word(table, value) {
  return table[value] ?? String(value);
}

export const commandWord = (state) => word(COMMAND, state);
export const localWord = (state) => word(LOCAL, state);

/** The exit code a command reported (shell: `result.exit_code`, or "exit code N" in its reason). */
export function exitCode(command) {
  const code = command.result && command.result.exit_code;
  if (Number.isInteger(code)) return code;
  const m = /exit code (-?\d+)/.exec(command.reason || "");
  return m ? Number(m[1]) : null;
}

/** The one sentence for a command's failure ("" when it has none). */
export function failureSentence(command) {
  const entry = command.failure && FAILURE[command.failure];
  if (!entry) return command.failure ? String(command.failure) : "";
  return typeof entry.text === "function" ? entry.text(command) : entry.text;
}

/** Whether it is unknown if the failed command ran (the only case with retry advice). */
export const outcomeUnknown = (command) => !!(command.failure && FAILURE[command.failure] && FAILURE[command.failure].ran === "unknown");
export const elicitationWord = (state) => word(ELICITATION, state);
export const kindWord = (kind) => word(KIND, kind);
export const isTerminal = (state) => registry.terminal.has(state);

/**
 * The presentation label of a session over the two axes. Connectivity dominates: a stale or
 * unknown session is never shown as working, and nothing is live while this browser's stream is
 * down (`streamLive` false): then every session reads "as of" the last reconciled moment.
 * Returns {text, tone} where tone picks the colour (ok, busy, warn, bad, muted).
 */
export function presentation(session, streamLive) {
  const c = session.connectivity;
  const a = session.activity;
  if (!streamLive) {
    return { text: a === "working" ? "Stale (was working)" : "Stale", tone: "warn", stale: true };
  }
  if (c === "live") {
    if (a === "working") return { text: "Working", tone: "busy" };
    if (a === "idle") return { text: "Live idle", tone: "ok" };
    return { text: "Live", tone: "ok" };
  }
  if (c === "stale") return { text: a === "working" ? "Stale (was working)" : "Stale", tone: "warn", stale: true };
  if (c === "offline") return { text: "Offline", tone: "muted" };
  if (c === "failed") return { text: "Failed", tone: "bad" };
  return { text: word(CONNECTIVITY, c), tone: "muted" };
}

/** Why a session cannot take commands right now, or null. */
export function unavailableReason(session, lockdown) {
  if (lockdown && lockdown.active) return "Security lockdown: new commands are refused until it is lifted on the core's host.";
  if (session.connectivity === "offline") return "The session is offline: its adapter is gone.";
  if (session.connectivity === "failed") return "The session reported an error.";
  if (!session.capabilities || !session.capabilities.attached) return "Its adapter is not attached; commands would wait.";
  return null;
}

/** For an unknown outcome only: whether sending it again is safe, and what to do. */
export function retryAdvice(command) {
  if (command.retry_advice === "safe_to_retry") return { safe: true, text: "Retrying is safe: this adapter drops a duplicate, so it cannot run twice." };
  return { safe: false, text: "Check the session before sending it again: a second copy could run twice." };
}
