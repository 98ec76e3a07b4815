// The device's IndexedDB, shared by the page and the service worker: the last known views
// (sessions, commands, elicitations), the session events transcripts are built from, the
// outbox of submissions not yet answered, and small documents (registry, status, who am I —
// never the CSRF token or the session cookie). Every call opens the database on first use and
// answers a promise; a browser without IndexedDB (or with it disabled) answers empty results.

const NAME = "patchbay";
const VERSION = 1;
export const EVENT_CAP = 20000; // events kept on the device at most (oldest go first)

let opening = null;

export function db() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      if (typeof indexedDB === "undefined") { reject(new Error("no IndexedDB")); return; }
      const request = indexedDB.open(NAME, VERSION);
      request.onupgradeneeded = () => {
        const d = request.result;
        d.createObjectStore("views"); // "session:<target>" | "command:<id>" | "elicitation:<id>" -> view
        const events = d.createObjectStore("events", { keyPath: "lsn" });
        events.createIndex("target", "target");
        d.createObjectStore("outbox", { keyPath: "command_id" });
        d.createObjectStore("meta"); // name -> document
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    opening.catch(() => { opening = null; });
  }
  return opening;
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
  });
}

function result(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

export async function getMeta(name) {
  const d = await db();
  return result(d.transaction("meta").objectStore("meta").get(name));
}

export async function putMeta(entries) {
  const d = await db();
  const tx = d.transaction("meta", "readwrite");
  for (const [name, value] of Object.entries(entries)) tx.objectStore("meta").put(value, name);
  return done(tx);
}

/** Write views (`[key, view]` pairs) and session events in one transaction. */
export async function putMirror(views, events) {
  const d = await db();
  const tx = d.transaction(["views", "events"], "readwrite");
  for (const [key, view] of views) tx.objectStore("views").put(view, key);
  for (const event of events) tx.objectStore("events").put(event);
  return done(tx);
}

export async function allViews() {
  const d = await db();
  const store = d.transaction("views").objectStore("views");
  const [keys, values] = await Promise.all([result(store.getAllKeys()), result(store.getAll())]);
  return keys.map((key, i) => [key, values[i]]);
}

export async function eventsFor(target, after, limit) {
  const d = await db();
  const all = await result(d.transaction("events").objectStore("events").index("target").getAll(target));
  return all.filter((e) => e.lsn > after).sort((a, b) => a.lsn - b.lsn).slice(0, limit);
}

/** Drop the oldest events past the cap. */
export async function pruneEvents() {
  const d = await db();
  const store = d.transaction("events", "readwrite").objectStore("events");
  let excess = (await result(store.count())) - EVENT_CAP;
  if (excess <= 0) return;
  await new Promise((resolve, reject) => {
    const cursor = store.openCursor();
    cursor.onsuccess = () => {
      const c = cursor.result;
      if (!c || excess <= 0) { resolve(); return; }
      c.delete();
      excess -= 1;
      c.continue();
    };
    cursor.onerror = () => reject(cursor.error);
  });
}

export async function outboxAll() {
  const d = await db();
  return result(d.transaction("outbox").objectStore("outbox").getAll());
}

// Outbox writes are "strict": flushed to disk before they complete, so a record written before
// its request left survives the browser being killed (the default lets the browser delay it).
export async function outboxPut(record) {
  const d = await db();
  const tx = d.transaction("outbox", "readwrite", { durability: "strict" });
  tx.objectStore("outbox").put(record);
  return done(tx);
}

export async function outboxDelete(commandId) {
  const d = await db();
  const tx = d.transaction("outbox", "readwrite", { durability: "strict" });
  tx.objectStore("outbox").delete(commandId);
  return done(tx);
}

/** Forget the core's data kept on this device (logout): views, events and who was signed in. */
export async function forgetDevice() {
  const d = await db();
  const tx = d.transaction(["views", "events", "meta"], "readwrite");
  tx.objectStore("views").clear();
  tx.objectStore("events").clear();
  tx.objectStore("meta").delete("me");
  tx.objectStore("meta").delete("as_of");
  return done(tx);
}
