// Submitting commands, through a durable outbox. The command id and idempotency key are chosen
// here, before sending, and the record is written to IndexedDB (the outbox) before the request
// leaves, so it survives a reload or the browser being killed. Any resend — automatic or the
// operator's — carries the same id and key, and the core answers a known key with the existing
// record instead of running it again: at most once.
//
// Local states are the registry's LocalSubmissionState: submitting, submit_failed, unknown.
// A record the core never refused (no answer, an HTTP error, the core unreachable) is *waiting*:
// it is sent again by itself when the core answers and its session is reachable, until the core
// says accepted or rejected, but only within its validity window (default 15 minutes, set per
// message); past it, it waits for the operator to send or discard it. Once the core returns
// the command, its CommandState takes over.

import { hasCsrf, post } from "./api.js";
import { newId } from "./dom.js";
import { outboxAll, outboxDelete, outboxPut } from "./idb.js";
import { changed, putCommand, reconcileByKey, state, subscribe } from "./store.js";
import { transcriptFor } from "./transcript.js";

export const DEFAULT_WINDOW_MS = 15 * 60 * 1000;
const LEGACY_KEY = "pb.local"; // the pre-outbox localStorage list, moved into IndexedDB once
const MAX_BACKOFF_MS = 60_000;

export const local = new Map();
const inflight = new Set();
const nextTry = new Map(); // command id -> earliest automatic resend (ms)

const SAVED = ["command_id", "idempotency_key", "kind", "target", "payload", "generation", "state", "error",
  "retries", "refused", "created_ms", "window_ms"];

function persist(record) {
  const row = Object.fromEntries(SAVED.map((k) => [k, record[k]]));
  return outboxPut(row).catch((problem) => { record.error = record.error || `not saved on this device: ${problem.message}`; });
}

function touch(record) {
  changed(`local:${record.target}`);
  changed(`transcript:${record.target}`);
}

async function load() {
  let rows = [];
  try {
    rows = await outboxAll();
  } catch {
    rows = [];
  }
  let legacy = [];
  try {
    legacy = JSON.parse(localStorage.getItem(LEGACY_KEY) || "[]");
  } catch {
    legacy = [];
  }
  for (const row of [...rows, ...legacy]) {
    if (!row || !row.command_id || local.has(row.command_id)) continue;
    const record = { retries: 0, error: "", created_ms: Date.now(), window_ms: DEFAULT_WINDOW_MS, ...row };
    // A request in flight when the page went away has no answer: its outcome is unknown.
    if (record.state === "submitting") record.state = "unknown";
    local.set(record.command_id, record);
    if (legacy.includes(row)) await persist(record);
    touch(record);
  }
  localStorage.removeItem(LEGACY_KEY);
  flush();
}

export const ready = load();

/** Submit a new command (fresh id and key); returns the answer once the core has spoken. */
export async function submit(kind, target, payload, { generation, windowMs } = {}) {
  const commandId = newId("cmd");
  const record = {
    command_id: commandId, idempotency_key: commandId, kind, target, payload, generation, state: "submitting",
    error: "", retries: 0, refused: false, created_ms: Date.now(), window_ms: windowMs || DEFAULT_WINDOW_MS,
  };
  local.set(commandId, record);
  return send(record);
}

/** The operator's resend, with the same command id and idempotency key. */
export function retry(commandId) {
  const record = local.get(commandId);
  if (!record || inflight.has(commandId)) return null;
  record.retries += 1;
  return send(record);
}

export function discard(commandId) {
  const record = local.get(commandId);
  if (!record || inflight.has(commandId)) return;
  local.delete(commandId);
  nextTry.delete(commandId);
  outboxDelete(commandId).catch(() => {});
  touch(record);
}

/** Change how long a waiting record is sent by itself (from its creation). */
export function setWindow(commandId, windowMs) {
  const record = local.get(commandId);
  if (!record) return;
  record.window_ms = windowMs;
  persist(record);
  touch(record);
  flush();
}

export const isWaiting = (record) => !record.refused && record.state !== "submitting";
export const validUntil = (record) => record.created_ms + record.window_ms;
export const pastWindow = (record, now = Date.now()) => now > validUntil(record);

async function send(record) {
  inflight.add(record.command_id);
  record.state = "submitting";
  record.error = "";
  state.mine.add(record.command_id);
  touch(record);
  await persist(record); // on the device before the request leaves
  const body = { command_id: record.command_id, idempotency_key: record.idempotency_key, kind: record.kind, target: record.target, payload: record.payload };
  if (Number.isInteger(record.generation)) body.generation = record.generation;
  try {
    const { status, data } = await post("/api/commands", body);
    if (data.outcome === "accepted" && data.command) {
      settle(record, data.command);
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
  } finally {
    inflight.delete(record.command_id);
  }
  if (local.has(record.command_id)) await persist(record);
  touch(record);
  return { outcome: record.state, record };
}

function settle(record, command) {
  local.delete(record.command_id);
  nextTry.delete(record.command_id);
  outboxDelete(record.command_id).catch(() => {});
  putCommand(command);
  transcriptFor(record.target).touchCommand(command);
  touch(record);
}

/** Ask the core whether it has a command under this key; settles an `unknown` local record. */
export async function reconcile(commandId) {
  const record = local.get(commandId);
  if (!record) return;
  try {
    const found = await reconcileByKey(record.idempotency_key);
    if (found) {
      settle(record, found);
      return;
    }
    record.state = "submit_failed";
    record.error = "the core has no record of it: it was never accepted, so sending it again is safe";
  } catch (problem) {
    record.error = `still unknown: ${problem.message}`;
  }
  await persist(record);
  touch(record);
}

/** Kept for the session view: waiting records are resent (same id and key) instead. */
export function reconcileAll() {
  flush();
}

function reachable(target) {
  const s = state.sessions.get(target);
  return !!s && s.connectivity !== "offline" && s.connectivity !== "failed" && !state.lockdown.active;
}

/** Send every waiting record inside its window whose session is reachable, when the core answers. */
export function flush() {
  if (state.conn !== "live" || !hasCsrf()) return;
  const now = Date.now();
  for (const record of local.values()) {
    if (!isWaiting(record) || inflight.has(record.command_id) || pastWindow(record, now)) continue;
    if (!reachable(record.target) || (nextTry.get(record.command_id) || 0) > now) continue;
    const attempt = (record.auto_attempts || 0) + 1;
    record.auto_attempts = attempt;
    nextTry.set(record.command_id, now + Math.min(1000 * 2 ** attempt, MAX_BACKOFF_MS));
    send(record);
  }
}

export function localFor(target) {
  return [...local.values()].filter((r) => r.target === target);
}

export function waitingCount() {
  return [...local.values()].filter(isWaiting).length;
}

subscribe((tags) => {
  if (tags.has("conn") || tags.has("sessions") || tags.has("me")) flush();
});
// Windows close and backoffs end without any event: look again now and then.
setInterval(() => {
  flush();
  for (const record of local.values()) if (isWaiting(record)) changed(`local:${record.target}`);
}, 15_000);
