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

const FAILURE = {
  validation_failed: "The request was not valid",
  authorization_denied: "Not allowed by your grants",
  target_not_found: "The target session no longer exists (or was replaced)",
  unsupported_command: "The adapter does not support this",
  target_offline: "The session is offline",
  adapter_unavailable: "The adapter went away before it took the command",
  transport_timeout: "No answer in time — this says nothing about success or refusal",
  delivery_rejected: "The adapter refused the command",
  execution_failed: "It ran and failed",
  execution_outcome_unknown: "The outcome is unknown — it may have run",
  expired: "Its validity window closed first",
  cancelled: "Cancelled",
  superseded: "Replaced by a newer command",
  stale_event: "A late event from an old generation (ignored)",
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
export const failureWord = (failure) => (failure ? word(FAILURE, failure) : "");
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

export function retryAdvice(command) {
  if (command.retry_advice === "safe_to_retry") return "Safe to retry: the adapter deduplicates end to end.";
  return "It may have run — check before retrying.";
}
