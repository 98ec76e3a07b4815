// Web Push on this device: the offer (after the first login and in the Attention view), the
// per-device state, turning it on (permission → PushManager.subscribe with the core's VAPID key
// → POST /api/push/subscriptions) and off. The service worker (sw.js) shows the notifications.
// A subscription belongs to this browser's operator session: after a new login the browser's
// existing subscription is registered again (`renewPush`).

import { call, get, post } from "./api.js";
import { h, toast } from "./dom.js";
import { workerRegistration } from "./worker.js";

const OFFER_KEY = "pb.push.offer"; // "dismissed" once the operator said "Not now"

export const WHAT_IS_SENT = "Sent: an approval or question waiting; a command that failed, was cancelled or expired, or whose outcome is unknown; a long command that finished; a session that went offline with work running. "
  + "A notification names the session, the state and an id, encrypted end to end through your browser's push service — never your messages, prompts, outputs or secrets.";

const isIos = () => /iPad|iPhone|iPod/.test(navigator.userAgent) || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
const standalone = () => navigator.standalone === true || window.matchMedia("(display-mode: standalone)").matches;

/** This device's state: unsupported | ios-needs-home-screen | denied | off | on. */
export async function pushState() {
  if (isIos() && !standalone()) return "ios-needs-home-screen";
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window) || !window.isSecureContext) return "unsupported";
  if (Notification.permission === "denied") return "denied";
  const registration = await workerRegistration();
  const subscription = registration && registration.pushManager ? await registration.pushManager.getSubscription() : null;
  if (!subscription || Notification.permission !== "granted") return "off";
  const mine = await serverSubscription();
  return mine ? "on" : "off";
}

async function serverSubscription() {
  try {
    const { subscriptions } = await get("/api/push/subscriptions");
    return subscriptions.find((s) => s.this_session) || null;
  } catch {
    return null;
  }
}

function keyBytes(base64url) {
  const text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (base64url.length % 4)) % 4));
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function sameKey(subscription, wanted) {
  const have = subscription.options && subscription.options.applicationServerKey;
  if (!have) return true; // the browser does not say: keep it
  const bytes = new Uint8Array(have);
  return bytes.length === wanted.length && bytes.every((b, i) => b === wanted[i]);
}

export async function turnOn() {
  const permission = await Notification.requestPermission();
  if (permission !== "granted") throw new Error(permission === "denied" ? "notifications are blocked for this site" : "notifications were not allowed");
  const registration = await navigator.serviceWorker.ready;
  const { public_key: key } = await get("/api/push/vapid-public-key");
  const wanted = keyBytes(key);
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription, wanted)) { // made for another core key (a new home): start over
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription = subscription || await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: wanted });
  const { status, data } = await post("/api/push/subscriptions", subscription.toJSON());
  if (status !== 201) throw new Error(data.error || `the core refused the subscription (${status})`);
  return data;
}

export async function turnOff() {
  const mine = await serverSubscription();
  if (mine) await call("DELETE", `/api/push/subscriptions/${encodeURIComponent(mine.subscription_id)}`);
  const registration = await workerRegistration();
  const subscription = registration && registration.pushManager ? await registration.pushManager.getSubscription() : null;
  if (subscription) await subscription.unsubscribe();
}

/** After a login: a browser that has a subscription registers it for this session again. */
export async function renewPush() {
  try {
    if (!("PushManager" in window) || !("Notification" in window) || Notification.permission !== "granted") return;
    const registration = await workerRegistration();
    const subscription = registration && registration.pushManager ? await registration.pushManager.getSubscription() : null;
    if (subscription && !(await serverSubscription())) await post("/api/push/subscriptions", subscription.toJSON());
  } catch {
    // The panel shows "off" and offers to turn it on again.
  }
}

const WORDS = {
  "on": "On for this device.",
  "off": "Off for this device.",
  "denied": "Blocked: this site's notifications are turned off in the browser's settings. Allow them there, then come back.",
  "unsupported": "This browser cannot receive push notifications here (it needs a service worker, the Push API and HTTPS).",
  "ios-needs-home-screen": "On iPhone and iPad, push needs the app on the home screen: tap Share → Add to Home Screen, then open Patchbay from there and turn notifications on.",
};

/** The notifications panel: what is sent, this device's state, and the button that changes it. */
export function pushPanel({ id = "push-panel", title = "Notifications on this device", extra = null, onState = () => {} } = {}) {
  const status = h("p", { class: "push-state", role: "status", "aria-live": "polite" }, "Checking…");
  const button = h("button", { type: "button", class: "primary small", hidden: true });
  const panel = h("section", { class: "panel push-panel", id, "aria-label": "Notifications on this device" },
    h("h2", {}, title), h("p", { class: "small" }, WHAT_IS_SENT), status, h("div", { class: "actions" }, button, extra));
  const render = async () => {
    const now = await pushState();
    panel.dataset.push = now;
    status.textContent = WORDS[now];
    button.hidden = now !== "on" && now !== "off";
    button.textContent = now === "on" ? "Turn off" : "Turn on notifications";
    button.className = now === "on" ? "small" : "primary small";
    onState(now);
  };
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      if (panel.dataset.push === "on") await turnOff();
      else await turnOn();
    } catch (problem) {
      toast(`Notifications: ${problem.message}`, "info");
    } finally {
      button.disabled = false;
      await render();
    }
  });
  render();
  return panel;
}

/** A system notification from the open page: through the service worker where there is one
 * (Android Chrome has no `new Notification()`), else the constructor; only with permission. */
export async function showNotification(title, options) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  try {
    const registration = await workerRegistration();
    if (registration && registration.active) await registration.showNotification(title, options);
    else new Notification(title, options);
  } catch {
    // The in-page toast already said it.
  }
}

// The offer shows on the session list only: Attention and Security have the panel itself, and a
// session page keeps its room for the transcript.
let offerHere = false;

/** Called on every route: whether the page now shown is the one the offer belongs on. */
export function placeOffer(here) {
  offerHere = here;
  const offer = document.getElementById("push-offer");
  if (offer) offer.hidden = !here;
}

/** After the first login on a device: offer notifications once, until turned on or dismissed. */
export async function offerPush() {
  if (localStorage.getItem(OFFER_KEY) === "dismissed") return;
  const now = await pushState();
  if (now === "on" || now === "denied" || now === "unsupported" || document.getElementById("push-offer")) return;
  const offer = h("div", { class: "push-offer", id: "push-offer", hidden: !offerHere });
  const dismiss = h("button", { type: "button", class: "small", id: "push-offer-dismiss", onclick: () => { localStorage.setItem(OFFER_KEY, "dismissed"); offer.remove(); } }, "Not now");
  offer.append(pushPanel({ id: "push-offer-panel", title: "Get notified when an agent needs you?", extra: dismiss,
    onState: (now) => { if (now === "on") offer.remove(); } }));
  document.getElementById("banners").after(offer);
}
