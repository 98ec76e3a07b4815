// Submitting commands. The command id and idempotency key are chosen here, before sending, and
// kept in localStorage with the request, so a retry (after a failure, an unknown outcome or a
// reload) resends the same id and key and the core answers with the existing record instead of
// running it twice. Local states are the registry's LocalSubmissionState: submitting,
// submit_failed, unknown; once the core returns the command, its CommandState takes over.

import { post } from "./api.js";
import { newId } from "./dom.js";
import { changed, putCommand, reconcileByKey, state } from "./store.js";
import { transcriptFor } from "./transcript.js";

const STORE_KEY = "pb.local";
export const local = new Map(loadLocal());

function loadLocal() {
  try {
    return JSON.parse(localStorage.getItem(STORE_KEY) || "[]").map((r) => [r.command_id, r]);
  } catch {
    return [];
  }
}

function save() {
  localStorage.setItem(STORE_KEY, JSON.stringify([...local.values()]));
}

function touch(record) {
  changed(`local:${record.target}`);
  changed(`transcript:${record.target}`);
  save();
}

/** Submit a new command (fresh id and key); returns the local record. */
export function submit(kind, target, payload, { generation } = {}) {
  const commandId = newId("cmd");
  const record = { command_id: commandId, idempotency_key: commandId, kind, target, payload, generation, state: "submitting", error: "", retries: 0 };
  local.set(commandId, record);
  return send(record);
}

/** Retry a local submission with the same command id and idempotency key. */
export function retry(commandId) {
  const record = local.get(commandId);
  if (!record) return null;
  record.retries += 1;
  return send(record);
}

export function discard(commandId) {
  const record = local.get(commandId);
  if (!record) return;
  local.delete(commandId);
  touch(record);
}

async function send(record) {
  record.state = "submitting";
  record.error = "";
  state.mine.add(record.command_id);
  touch(record);
  const body = { command_id: record.command_id, idempotency_key: record.idempotency_key, kind: record.kind, target: record.target, payload: record.payload };
  if (Number.isInteger(record.generation)) body.generation = record.generation;
  try {
    const { status, data } = await post("/api/commands", body);
    if (data.outcome === "accepted" && data.command) {
      local.delete(record.command_id);
      putCommand(data.command);
      transcriptFor(record.target).touchCommand(data.command);
      touch(record);
      return { outcome: "accepted", command: data.command };
    }
    if (data.outcome === "unknown" || status >= 500) {
      record.state = "unknown";
      record.error = data.error || data.reason || "the core could not say whether it accepted the command";
    } else {
      record.state = "submit_failed";
      record.error = `${data.failure ? data.failure + ": " : ""}${data.reason || data.error || "refused"}`;
      record.refused = true;
    }
  } catch (problem) {
    // No answer: the request may or may not have reached the core.
    record.state = problem.status === 0 ? "unknown" : "submit_failed";
    record.error = problem.message;
  }
  touch(record);
  return { outcome: record.state, record };
}

/** Ask the core whether it has a command under this key; settles an `unknown` local record. */
export async function reconcile(commandId) {
  const record = local.get(commandId);
  if (!record) return;
  try {
    const found = await reconcileByKey(record.idempotency_key);
    if (found) {
      local.delete(commandId);
      transcriptFor(record.target).touchCommand(found);
    } else {
      record.state = "submit_failed";
      record.error = "the core has no record of it: it was never accepted, so sending it again is safe";
    }
  } catch (problem) {
    record.error = `still unknown: ${problem.message}`;
  }
  touch(record);
}

/** After a reload: records left `submitting` or `unknown` are reconciled by key. */
export function reconcileAll() {
  for (const record of local.values()) {
    if (record.state === "submitting" || record.state === "unknown") {
      record.state = "unknown";
      reconcile(record.command_id);
    }
  }
}

export function localFor(target) {
  return [...local.values()].filter((r) => r.target === target);
}
