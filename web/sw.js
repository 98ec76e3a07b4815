// The cockpit's service worker (a module worker, served at /sw.js with scope /).
//
// The server prefixes this file with `self.PATCHBAY = {version, files}`: the server's version
// string and the cockpit's static files. They are cached under that version at install; a new
// server version is a new worker, which caches the new files and deletes the old caches, so the
// app is never stale forever. Static files and the page are fetched from the network first and
// answered from the cache only when the core cannot be reached.
//
// A few read-only API answers the cockpit needs to draw itself (registry, status, who am I, a
// session's transcript, its commands, the elicitations) are kept in IndexedDB as they pass, and
// answered from there, marked `offline` with the time the device was last in sync, when the
// core does not answer. The CSRF token is never kept. Everything else goes to the network.
//
// Web Push: a push shows a notification tagged per session (a newer one replaces it); a tap
// focuses an open cockpit, or opens one, at that session or approval.

import { allViews, eventsFor, forgetDevice, getMeta, putMeta, putMirror } from "/static/js/idb.js";

const CONFIG = self.PATCHBAY || { version: "dev", files: [] };
const CACHE = `patchbay-${CONFIG.version}`;
const NETWORK_WAIT_MS = 5000;

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(["/", ...CONFIG.files]);
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name.startsWith("patchbay-") && name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "version" && event.ports[0]) event.ports[0].postMessage(CONFIG.version);
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method === "POST" && url.pathname === "/api/logout") {
    event.respondWith(loggedOut(request));
    return;
  }
  if (request.method !== "GET") return;
  if (url.pathname.startsWith("/api/")) {
    const answer = apiAnswer(url);
    if (answer) event.respondWith(answer(request));
    return;
  }
  if (request.mode === "navigate" || url.pathname.startsWith("/static/") || url.pathname === "/manifest.webmanifest") {
    event.respondWith(shellFile(request, url));
  }
});

function network(request) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), NETWORK_WAIT_MS);
  return fetch(request, { signal: controller.signal }).finally(() => clearTimeout(timer));
}

async function shellFile(request, url) {
  const key = request.mode === "navigate" ? "/" : url.pathname;
  try {
    const response = await network(request);
    if (response.ok) {
      const cache = await caches.open(CACHE);
      await cache.put(key, response.clone());
    }
    return response;
  } catch (problem) {
    const cached = await caches.match(key, { cacheName: CACHE });
    if (cached) return cached;
    throw problem;
  }
}

// -- read-only API answers kept for offline use ------------------------------------------------

/** Logging out forgets what this device kept of the core (the outbox stays, like drafts). */
async function loggedOut(request) {
  const response = await fetch(request);
  if (response.ok) await forgetDevice().catch(() => {});
  return response;
}

function json(body) {
  return new Response(JSON.stringify(body), { headers: { "Content-Type": "application/json", "X-Patchbay-Offline": "1" } });
}

/** Network first; on success `keep` stores what the answer says, on failure `offline` answers;
 * `refused` hears the core's other answers. */
function kept(keep, offline, refused = () => {}) {
  return async (request) => {
    let response;
    try {
      response = await network(request);
    } catch (problem) {
      const body = await offline().catch(() => null);
      if (body === null || body === undefined) throw problem;
      return json({ ...body, offline: true, as_of: (await getMeta("as_of").catch(() => null)) || null });
    }
    try {
      if (response.ok) await keep(await response.clone().json());
      else await refused(response.status);
    } catch {
      // An answer we cannot keep is still served.
    }
    return response;
  };
}

function apiAnswer(url) {
  const path = url.pathname;
  const q = url.searchParams;
  if (path === "/api/registry") return kept((doc) => putMeta({ registry: doc }), () => getMeta("registry"));
  if (path === "/api/status") {
    // Offline, "signed in" means this device last knew a signed-in operator session.
    return kept((doc) => putMeta({ status: doc }), async () => {
      const status = await getMeta("status");
      return status ? { ...status, signed_in: !!(await getMeta("me")) } : null;
    });
  }
  if (path === "/api/me") {
    return kept((doc) => putMeta({ me: { ...doc, csrf_token: null } }), () => getMeta("me"),
      (status) => (status === 401 || status === 403 ? putMeta({ me: null }) : null));
  }
  const transcript = path.match(/^\/api\/sessions\/(.+)\/transcript$/);
  if (transcript) {
    const target = transcript[1].split("/").map(decodeURIComponent).join("/");
    const after = Number(q.get("after") || 0);
    const limit = Number(q.get("limit") || 500);
    return kept((doc) => putMirror([], doc.events.map((e) => ({ ...e, target }))),
      async () => ({ target, events: await eventsFor(target, after, limit) }));
  }
  if (path === "/api/commands" && q.get("target") && !q.get("idempotency_key")) {
    const target = q.get("target");
    return kept((doc) => putMirror(doc.commands.map((c) => [`command:${c.command_id}`, c]), []),
      async () => ({ commands: (await views("command:")).filter((c) => c.target === target)
        .sort((a, b) => b.accepted_lsn - a.accepted_lsn).slice(0, Number(q.get("limit") || 200)) }));
  }
  if (path === "/api/elicitations" && !q.get("state")) {
    return kept((doc) => putMirror(doc.elicitations.map((e) => [`elicitation:${e.elicitation_id}`, e]), []),
      async () => ({ elicitations: await views("elicitation:") }));
  }
  return null;
}

async function views(prefix) {
  return (await allViews()).filter(([key]) => key.startsWith(prefix)).map(([, view]) => view);
}

// -- Web Push --------------------------------------------------------------------------------------

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : "" };
  }
  const title = typeof data.title === "string" ? data.title : "Patchbay";
  event.waitUntil(self.registration.showNotification(title, {
    body: typeof data.body === "string" ? data.body : "",
    tag: typeof data.tag === "string" ? data.tag : "patchbay",
    renotify: true,
    icon: "/static/icons/icon-192.png",
    data: { url: typeof data.url === "string" && data.url.startsWith("/") ? data.url : "/#/attention", payload: data },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL(event.notification.data && event.notification.data.url ? event.notification.data.url : "/", self.location.origin).href;
  event.waitUntil((async () => {
    for (const client of await self.clients.matchAll({ type: "window", includeUncontrolled: true })) {
      if (new URL(client.url).origin === self.location.origin && "focus" in client) {
        await client.focus();
        if ("navigate" in client) await client.navigate(url);
        return;
      }
    }
    await self.clients.openWindow(url);
  })());
});
