// Registers the service worker (web/sw.js, served at /sw.js): the offline shell, the device's
// copy of the read-only API, and Web Push. Service workers need a secure context (HTTPS, or
// http://localhost / 127.0.0.1); elsewhere the cockpit simply runs without them.

export async function registerWorker() {
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return null;
  if (!navigator.serviceWorker.controller) {
    // The first page a worker takes over loaded its documents before the worker could keep
    // them: ask again through it, so a reload while the core is unreachable has them.
    navigator.serviceWorker.addEventListener("controllerchange", async () => {
      const ask = (path) => fetch(path, { credentials: "same-origin" }).then((r) => r.json());
      try {
        await ask("/api/registry");
        if ((await ask("/api/status")).signed_in) await ask("/api/me");
      } catch {
        // Kept at the next load instead.
      }
    }, { once: true });
  }
  try {
    return await navigator.serviceWorker.register("/sw.js", { scope: "/", type: "module", updateViaCache: "none" });
  } catch {
    return null; // the app works without it; only offline start and push are lost
  }
}

/** The active registration, or null (no worker, or not yet active). */
export async function workerRegistration() {
  if (!("serviceWorker" in navigator)) return null;
  return (await navigator.serviceWorker.getRegistration("/")) || null;
}
