// The cockpit's state: a mirror of the core's views fed by the client stream (push only; the
// stream resumes from a cursor after a disconnect), plus client-only submission state.
// Views keep the highest `revision`. Changes are collected and announced to the views at most
// once per animation frame, so thousands of streamed events cost one render per frame.
// Everything seen is mirrored to the device (mirror.js); a cockpit started while the core is
// unreachable (`me.offline`, answered by the service worker) draws that copy, marked stale as
// of the last moment this browser was in sync, until the stream is live again.

import { get, setCsrf } from "./api.js";
import { mirrorEvent, mirrorInSync, mirrorView, restoreMirror } from "./mirror.js";
import { addEvent, transcripts, resetTranscripts } from "./transcript.js";

export const state = {
  me: null,
  status: null,
  sessions: new Map(),
  commands: new Map(),
  elicitations: new Map(),
  lockdown: { active: false, reason: "", since_ts: null },
  cursor: -1,
  domain: null,
  coreGeneration: null,
  conn: "connecting", // connecting | live | reconnecting | ended
  staleSince: null, // ms: when this browser last knew it was in sync, while reconnecting
  offline: false, // started from the device's copy: nothing on screen came from the core yet
  mine: new Set(), // command ids sent from this browser (for "finished" notifications)
};

const listeners = new Set();
const pending = new Set();
let scheduled = false;

export function subscribe(fn) { listeners.add(fn); return () => listeners.delete(fn); }

/** Note a change; listeners get the set of tags once per frame. */
export function changed(tag) {
  pending.add(tag);
  if (scheduled) return;
  scheduled = true;
  const flush = () => {
    scheduled = false;
    const tags = new Set(pending);
    pending.clear();
    for (const fn of listeners) fn(tags);
  };
  if (document.hidden) setTimeout(flush, 200);
  else requestAnimationFrame(flush);
}

function keepMax(map, key, view) {
  const old = map.get(key);
  if (old && (old.revision ?? 0) > (view.revision ?? 0)) return false;
  map.set(key, view);
  return true;
}

export function putCommand(view) {
  if (!view || !keepMax(state.commands, view.command_id, view)) return;
  mirrorView("command", view.command_id, view);
  changed("commands");
  changed(`command:${view.command_id}`);
  for (const e of view.elicitations || []) putElicitation(e);
  const t = transcripts.get(view.target);
  if (t) t.touchCommand(view);
}

export function putSession(view) {
  if (!view || !keepMax(state.sessions, view.target, view)) return;
  mirrorView("session", view.target, view);
  changed("sessions");
  changed(`session:${view.target}`);
}

export function putElicitation(view, lsn) {
  if (!view) return;
  const old = state.elicitations.get(view.elicitation_id);
  if (!keepMax(state.elicitations, view.elicitation_id, view)) return;
  mirrorView("elicitation", view.elicitation_id, view);
  changed("elicitations");
  const t = transcripts.get(view.target);
  if (t) t.touchElicitation(view, lsn);
  if (old && old.state === "pending" && view.state !== "pending") notify("resolved", view);
  if (!old && view.state === "pending" && state.conn === "live") notify("elicitation", view);
}

// -- notifications -------------------------------------------------------------------------

let notifier = () => {};
export function onNotify(fn) { notifier = fn; }
function notify(kind, view) { notifier(kind, view); }

// -- the client stream ---------------------------------------------------------------------

let socket = null;
let backoff = 500;
let expiredHandler = () => {};
export function onStreamExpired(fn) { expiredHandler = fn; }

export function connect() {
  if (socket) return;
  if (state.me && state.me.offline && !state.offline) startOffline();
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${proto}//${location.host}/api/stream?cursor=${state.cursor}&domain=${encodeURIComponent(state.domain || "")}`;
  const ws = new WebSocket(url);
  socket = ws;
  ws.addEventListener("message", (message) => {
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    handle(frame);
  });
  ws.addEventListener("close", (event) => {
    if (socket !== ws) return;
    socket = null;
    if (state.conn === "live" || state.staleSince === null) state.staleSince = Date.now();
    if (state.conn === "live") mirrorInSync(state.staleSince);
    if (event.code === 4401) {
      state.conn = "ended";
      changed("conn");
      expiredHandler();
      return;
    }
    state.conn = "reconnecting";
    changed("conn");
    changed("sessions");
    const wait = backoff;
    backoff = Math.min(backoff * 2, 4000);
    setTimeout(() => { if (state.conn === "reconnecting") connect(); }, wait);
  });
}

// The browser knows when it lost the network: say so at once instead of waiting for TCP.
window.addEventListener("offline", () => { if (socket) socket.close(); });
window.addEventListener("online", () => {
  if (state.conn === "reconnecting") { backoff = 500; connect(); }
});

export function disconnect() {
  state.conn = "ended";
  const ws = socket;
  socket = null;
  if (ws) ws.close();
}

function handle(frame) {
  if (frame.type === "hello") {
    if (state.domain && frame.authority_domain_id !== state.domain) {
      state.commands.clear();
      state.elicitations.clear();
      resetTranscripts();
    }
    state.domain = frame.authority_domain_id;
    state.coreGeneration = frame.core_generation;
  } else if (frame.type === "snapshot") {
    if (state.offline) forgetDeviceCopy();
    applySnapshot(frame);
  } else if (frame.type === "events") {
    for (const event of frame.events) applyEvent(event);
  } else if (frame.type === "live") {
    for (const t of transcripts.values()) if (!t.loaded) t.load(); // a history fetch that failed earlier
    state.cursor = Math.max(state.cursor, frame.lsn);
    state.conn = "live";
    state.staleSince = null;
    backoff = 500;
    mirrorInSync();
    if (state.offline) backOnline();
    if (state.me && state.me.offline) refreshMe();
    changed("conn");
    changed("sessions");
  }
}

// -- started offline -------------------------------------------------------------------------

async function startOffline() {
  state.offline = true;
  state.staleSince = state.me.as_of || Date.now();
  const copy = await restoreMirror();
  if (!state.offline) return; // the stream came back first
  for (const s of copy.sessions) putSession(s);
  for (const c of copy.commands) putCommand(c);
  for (const e of copy.elicitations) putElicitation(e);
  changed("sessions");
}

function forgetDeviceCopy() {
  // What was drawn from the device's copy gives way to the core's snapshot (an approval that
  // was pending on the device may be long answered).
  state.commands.clear();
  state.elicitations.clear();
  resetTranscripts();
}

function backOnline() {
  state.offline = false;
  window.dispatchEvent(new HashChangeEvent("hashchange")); // remount the view on the core's data
}

/** The core's own answer to "who am I" (and this session's CSRF token), after an offline start. */
async function refreshMe() {
  try {
    const me = await get("/api/me");
    state.me = me;
    setCsrf(me.csrf_token);
    changed("me");
  } catch {
    // A 401 sends the app to the login page (api.js); anything else is tried at the next live.
  }
}

function applySnapshot(snap) {
  state.sessions.clear();
  for (const s of snap.sessions) state.sessions.set(s.target, s);
  for (const c of snap.commands) putCommand(c);
  for (const e of snap.elicitations) putElicitation(e);
  setLockdown(snap.lockdown);
  state.cursor = snap.lsn;
  changed("sessions");
  // A snapshot means events may have been skipped: open transcripts fetch what they missed.
  for (const t of transcripts.values()) t.catchUp();
}

function setLockdown(lock) {
  state.lockdown = { active: !!lock.active, reason: lock.reason || "", since_ts: lock.since_ts ?? null };
  changed("lockdown");
}

function applyEvent(event) {
  state.cursor = Math.max(state.cursor, event.lsn);
  if (event.session) putSession(event.session);
  if (event.elicitation) putElicitation(event.elicitation, event.kind === "elicitation.opened" ? event.lsn : undefined);
  if (event.command) {
    const before = state.commands.get(event.command.command_id);
    putCommand(event.command);
    const after = state.commands.get(event.command.command_id);
    if (after && after.terminal && !(before && before.terminal) && state.mine.has(after.command_id)) {
      notify("finished", after);
    }
  }
  if (event.kind === "lockdown.entered") {
    setLockdown({ active: true, reason: event.payload.reason, since_ts: event.ts });
    if (state.conn === "live") expiredHandler("A security lockdown signed out every session.");
  }
  if (event.kind === "lockdown.exited") setLockdown({ active: false });
  if (event.entity.startsWith("session:")) {
    addEvent(event.entity.slice(8), event);
    mirrorEvent(event.entity.slice(8), event);
  }
  if (state.conn === "live") mirrorInSync();
}

/** Reconcile a command the browser lost track of (submission answer never came back). */
export async function reconcileByKey(key) {
  const answer = await get(`/api/commands?idempotency_key=${encodeURIComponent(key)}`);
  const found = answer.commands && answer.commands[0];
  if (found) putCommand(found);
  return found || null;
}

export function pendingElicitations() {
  return [...state.elicitations.values()].filter((e) => e.state === "pending");
}
