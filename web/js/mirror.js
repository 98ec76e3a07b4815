// The device's copy of what the cockpit last saw, for the offline shell: session, command and
// elicitation views and the session events of transcripts, written to IndexedDB in batches
// (at most every 500 ms), and `as_of`, the last moment this browser knew it was in sync.
// The service worker answers the read-only API from this copy when the core cannot be reached.

import { allViews, pruneEvents, putMeta, putMirror } from "./idb.js";

const views = new Map();
const events = [];
let timer = null;
let asOf = null;
let writes = 0;

function schedule() {
  if (!timer) timer = setTimeout(flush, 500);
}

async function flush() {
  timer = null;
  const batch = [...views];
  views.clear();
  const evs = events.splice(0);
  try {
    await putMirror(batch, evs);
    if (asOf !== null) await putMeta({ as_of: asOf });
    writes += 1;
    if (writes % 50 === 0) await pruneEvents();
  } catch {
    // No IndexedDB (private mode, disabled, full): the cockpit works, only without an offline copy.
  }
}

export function mirrorView(kind, id, view) {
  views.set(`${kind}:${id}`, view);
  schedule();
}

export function mirrorEvent(target, event) {
  events.push({ ...event, target });
  schedule();
}

/** Note that the browser is in sync now (while live) or was until `ms`. */
export function mirrorInSync(ms = Date.now()) {
  asOf = ms;
  schedule();
}

/** What the device kept: `{sessions, commands, elicitations}` lists of views. */
export async function restoreMirror() {
  const out = { sessions: [], commands: [], elicitations: [] };
  for (const [key, view] of await allViews().catch(() => [])) {
    const kind = key.slice(0, key.indexOf(":"));
    if (kind === "session") out.sessions.push(view);
    else if (kind === "command") out.commands.push(view);
    else if (kind === "elicitation") out.elicitations.push(view);
  }
  return out;
}
