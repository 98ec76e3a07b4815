// The cockpit's entry point: boot (registry, status, who am I), routing by URL hash, the top
// bar (connection indicator, attention count, theme), banners, notifications, login and setup.

import { ApiError, get, onSessionExpired, post, setCsrf } from "./api.js";
import { clock, fill, h, toast } from "./dom.js";
import { checkRegistry } from "./labels.js";
import { connect, disconnect, onNotify, onStreamExpired, pendingElicitations, state, subscribe } from "./store.js";
import { mountAttention } from "./views/attention.js";
import { installShortcuts } from "./views/keys.js";
import { mountSecurity } from "./views/security.js";
import { mountSession } from "./views/session.js";
import { mountSessions } from "./views/sessions.js";
import { offerPush, placeOffer, renewPush, showNotification } from "./push.js";
import { registerWorker } from "./worker.js";

const main = document.getElementById("main");
let view = null;
let expiredMessage = "";
let registryProblem = null;

async function boot() {
  setupTheme();
  installShortcuts();
  registerWorker();
  onSessionExpired((message) => signedOut(message || "Your session has ended."));
  onStreamExpired((message) => signedOut(message || "Your session has ended."));
  try {
    const [registry, status] = await Promise.all([get("/api/registry"), get("/api/status")]);
    const missing = checkRegistry(registry);
    if (missing.length) registryProblem = `This cockpit does not know the registry names ${missing.join(", ")}; they are shown raw.`;
    state.status = status;
    state.lockdown = { active: status.lockdown, reason: "", since_ts: null };
  } catch (problem) {
    fill(main, h("section", { class: "panel" }, h("h1", {}, "Cannot reach the core"), h("p", {}, problem.message)));
    return;
  }
  subscribe(onChange);
  window.addEventListener("hashchange", route);
  if (state.status.setup_required) return showSetup();
  if (!state.status.signed_in) return showLogin();
  try {
    const me = await get("/api/me");
    start(me);
  } catch (problem) {
    if (problem instanceof ApiError && (problem.status === 401 || problem.status === 403)) showLogin();
    else fill(main, h("p", { class: "panel" }, problem.message));
  }
}

function start(me) {
  state.me = me;
  setCsrf(me.csrf_token);
  if (me.lockdown) state.lockdown = { active: me.lockdown.active, reason: me.lockdown.reason || "", since_ts: me.lockdown.since_ts };
  expiredMessage = "";
  document.getElementById("tabs").hidden = false;
  state.conn = "connecting";
  connect();
  onNotify(attention);
  if (!location.hash || location.hash.startsWith("#/login") || location.hash === "#setup") location.hash = "#/sessions";
  route();
  renderChrome();
  if (!me.offline) renewPush().then(offerPush);
}

function signedOut(message) {
  if (!state.me) return;
  state.me = null;
  setCsrf(null);
  disconnect();
  expiredMessage = message;
  get("/api/status").then((status) => { state.status = status; state.lockdown.active = status.lockdown; renderChrome(); }).catch(() => {});
  showLogin();
}

function route() {
  if (!state.me) return;
  const hash = location.hash || "#/sessions";
  if (view) view.unmount();
  view = null;
  const [, name, ...rest] = hash.split("/");
  const param = rest.map(decodeURIComponent).join("/");
  if (name === "session" && param) view = mountSession(main, param);
  else if (name === "attention") view = mountAttention(main);
  else if (name === "security") view = mountSecurity(main, { logout });
  else view = mountSessions(main);
  placeOffer(!["session", "attention", "security"].includes(name) || (name === "session" && !param));
  for (const tab of document.querySelectorAll("#tabs a")) {
    if (tab.dataset.tab === (name === "session" ? "sessions" : name)) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

function onChange(tags) {
  if (tags.has("conn") || tags.has("lockdown") || tags.has("elicitations")) renderChrome();
  if (view) view.update(tags);
}

// -- chrome: connection indicator, banners, title badge -------------------------------------

function renderChrome() {
  const conn = document.getElementById("conn");
  const words = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", ended: "Signed out" };
  conn.dataset.state = state.me ? state.conn : "ended";
  conn.querySelector(".conn-text").textContent = state.me ? words[state.conn] : "Signed out";
  conn.setAttribute("aria-label", `Connection to the core: ${conn.querySelector(".conn-text").textContent}`);
  const banners = document.getElementById("banners");
  const items = [];
  if (state.lockdown.active) {
    items.push(h("div", { class: "banner danger", role: "alert", id: "lockdown-banner" },
      h("strong", {}, "Security lockdown. "),
      "New commands are refused and every session must log in again. ",
      state.lockdown.reason ? `Reason: ${state.lockdown.reason}. ` : "",
      "Only the core's host can lift it (patchbay lockdown exit); it cannot be lifted from the web."));
  }
  if (state.me && state.offline) {
    items.push(h("div", { class: "banner warn", role: "status", id: "offline-banner" },
      h("strong", {}, "Offline — "), `the core cannot be reached. Showing what this device last saw, as of ${clock(state.staleSince / 1000).slice(0, 5)}; nothing here is live.`));
  } else if (state.me && state.conn === "reconnecting") {
    items.push(h("div", { class: "banner warn", role: "status", id: "reconnect-banner" },
      h("strong", {}, "Reconnecting — "), `showing state as of ${clock(state.staleSince / 1000)}. Live indicators are stale until reconciled.`));
  }
  if (state.status && state.status.history_lost) {
    items.push(h("div", { class: "banner danger", role: "alert", id: "history-lost-banner" },
      h("strong", {}, "Journal history was lost. "),
      "Something knew of events the journal no longer holds: acknowledged work may be missing. ",
      "See the audit log (journal.history_lost) and the runbook's Recovery section."));
  }
  if (registryProblem) items.push(h("div", { class: "banner warn" }, registryProblem));
  fill(banners, items);
  const count = pendingElicitations().length;
  const badge = document.getElementById("attention-count");
  badge.hidden = count === 0;
  badge.textContent = String(count);
  badge.setAttribute("aria-label", `${count} waiting`);
  document.title = count ? `(${count}) Patchbay` : "Patchbay";
}

function attention(kind, view) {
  let text = null;
  if (kind === "elicitation") text = `${view.kind === "approval" ? "Approval needed" : "Question"}: ${view.title || view.target}`;
  else if (kind === "finished") {
    // Only when the operator is not already looking at that session's transcript.
    const here = decodeURIComponent(location.hash) === `#/session/${view.target}`;
    if ((here && !document.hidden) || !["instruct", "spawn", "session-management", "reconfigure"].includes(view.kind)) return;
    text = `${view.target}: ${view.kind === "instruct" ? "message" : view.kind} ${view.state}`;
  }
  else if (kind === "resolved") text = `${view.title || view.elicitation_id}: ${view.state}`;
  if (!text) return;
  toast(text, kind === "elicitation" ? "attention" : "info");
  if (document.hidden) showNotification("Patchbay", { body: text, tag: view.elicitation_id || view.command_id });
}

// -- theme ---------------------------------------------------------------------------------

function setupTheme() {
  const button = document.getElementById("theme");
  const names = { auto: "follow the system", light: "light", dark: "dark" };
  const apply = (mode) => {
    if (mode === "auto") delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = mode;
    button.setAttribute("aria-label", `Theme: ${names[mode]} (change)`);
    button.textContent = mode === "dark" ? "☾" : mode === "light" ? "☀" : "◐";
  };
  let mode = localStorage.getItem("pb.theme") || "auto";
  apply(mode);
  button.addEventListener("click", () => {
    mode = { auto: "light", light: "dark", dark: "auto" }[mode];
    localStorage.setItem("pb.theme", mode);
    apply(mode);
  });
}

// -- login, logout, setup ------------------------------------------------------------------

function showLogin() {
  if (view) view.unmount();
  view = null;
  document.getElementById("push-offer")?.remove();
  document.getElementById("tabs").hidden = true;
  renderChrome();
  const error = h("p", { class: "form-error", role: "alert", id: "login-error" });
  const password = h("input", { type: "password", id: "password", name: "password", autocomplete: "current-password", required: true });
  const form = h("form", { class: "panel narrow", id: "login-form", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Log in"),
    expiredMessage ? h("p", { class: "note", id: "expired-note" }, `${expiredMessage} Log in again — your drafts are kept.`) : null,
    h("input", { type: "text", name: "username", autocomplete: "username", value: "operator", hidden: true, "aria-hidden": "true", tabindex: "-1" }),
    h("label", { for: "password" }, "Operator password"), password,
    h("button", { type: "submit", class: "primary" }, "Log in"), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const { status, data } = await post("/api/login", { password: password.value });
      if (status !== 200) throw new Error(data.error || `login refused (${status})`);
      const me = await get("/api/me");
      start(me);
    } catch (problem) {
      error.textContent = problem.message;
    }
  });
  fill(main, form);
  password.focus();
}

async function logout() {
  try {
    await post("/api/logout");
  } finally {
    expiredMessage = "You logged out.";
    state.me = null;
    disconnect();
    showLogin();
  }
}

function showSetup() {
  const error = h("p", { class: "form-error", role: "alert" });
  const secret = h("input", { type: "text", id: "setup-secret", autocomplete: "off", required: true });
  const password = h("input", { type: "password", id: "setup-password", autocomplete: "new-password", minlength: "12", required: true });
  const form = h("form", { class: "panel narrow", id: "setup-form", "aria-labelledby": "setup-title" },
    h("h1", { id: "setup-title" }, "Set up Patchbay"),
    h("p", {}, "Enter the one-time setup secret that ", h("code", {}, "patchbay serve"), " printed on the core's console, and choose the operator password."),
    h("label", { for: "setup-secret" }, "Setup secret"), secret,
    h("label", { for: "setup-password" }, "New operator password (12+ characters)"), password,
    h("button", { type: "submit", class: "primary" }, "Create the operator"), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const { status, data } = await post("/api/setup", { secret: secret.value.trim(), password: password.value });
      if (status !== 200) throw new Error(data.error || `setup refused (${status})`);
      state.status.setup_required = false;
      const login = await post("/api/login", { password: password.value });
      if (login.status !== 200) throw new Error(login.data.error || "login failed");
      start(await get("/api/me"));
    } catch (problem) {
      error.textContent = problem.message;
    }
  });
  fill(main, form);
}

boot();
