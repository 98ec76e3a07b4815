// Security: operator sessions and endpoints (this device marked) with revoke, grants with
// revoke, lockdown with a two-step confirmation, the audit log with filters, notifications.

import { get, post } from "../api.js";
import { clock, fill, h, toast } from "../dom.js";
import { state } from "../store.js";
import { pushPanel } from "../push.js";

const AUDIT_FILTERS = {
  "": "All", "login.succeeded,login.failed,logout": "Logins", "command.accepted,command.transitioned,submission.refused": "Commands",
  "security.request_refused,security.authorization_denied": "Refusals", "grant.created,grant.revoked": "Grants",
  "lockdown.entered,lockdown.exited": "Lockdown", "adapter.attached,adapter.detached,adapter.failed": "Adapters",
  "operator_session.created,operator_session.revoked,operator_session.expired,endpoint.revoked": "Sessions",
};

export function mountSecurity(main, { logout }) {
  const sessions = h("div", { class: "stack", id: "operator-sessions" });
  const grants = h("div", { class: "stack", id: "grants" });
  const lockdown = h("div", { id: "lockdown-panel" });
  const audit = h("ol", { class: "audit", id: "audit" });
  const filter = h("select", { id: "audit-filter", "aria-label": "Audit filter" }, Object.entries(AUDIT_FILTERS).map(([v, t]) => h("option", { value: v }, t)));
  let oldest = null;
  const more = h("button", { type: "button", class: "small", onclick: () => loadAudit(false) }, "Older records");
  filter.addEventListener("change", () => loadAudit(true));
  fill(main, h("section", { class: "page", "aria-labelledby": "security-title" },
    h("div", { class: "page-head" }, h("h1", { id: "security-title" }, "Security"),
      h("div", { class: "actions" }, h("button", { type: "button", class: "small", id: "logout", onclick: logout }, "Log out"))),
    pushPanel({ id: "security-push" }),
    h("h2", {}, "Lockdown"), lockdown,
    h("h2", {}, "Signed-in browsers and CLI endpoints"), sessions,
    h("h2", {}, "Grants"), grants,
    h("h2", {}, "Audit log"), h("div", { class: "toolbar" }, filter), audit, more));

  async function load() {
    let data;
    try {
      data = await get("/api/security");
    } catch (problem) {
      fill(sessions, h("p", { class: "form-error" }, problem.message));
      return;
    }
    const endpoints = new Map(data.endpoints.map((e) => [e.endpoint_id, e]));
    const live = data.operator_sessions.filter((s) => !s.revoked).sort((a, b) => (b.current - a.current) || (b.created_ts - a.created_ts));
    fill(sessions, live.length ? live.map((s) => {
      const e = endpoints.get(s.endpoint_id) || {};
      return h("article", { class: "card row-card" },
        h("div", {}, h("strong", { title: e.label || "" }, deviceName(e.label, s.kind)), s.current ? h("span", { class: "badge tone-ok" }, "this device") : null,
          (data.push_subscriptions || []).some((p) => p.session_id === s.session_id) ? h("span", { class: "badge tone-busy" }, "push on") : null,
          h("p", { class: "mono muted small clip" }, `${s.kind} · ${s.address || "local"} · since ${clock(s.created_ts)} · ${s.session_id}`)),
        h("div", { class: "actions" },
          h("button", { type: "button", class: "small", onclick: () => act(`/api/security/sessions/${encodeURIComponent(s.session_id)}/revoke`, "Session revoked") }, "Revoke session"),
          h("button", { type: "button", class: "small danger", onclick: () => act(`/api/security/endpoints/${encodeURIComponent(s.endpoint_id)}/revoke`, "Device revoked") }, "Revoke device")));
    }) : h("p", { class: "muted" }, "None."));
    const withSession = new Set(live.map((s) => s.endpoint_id));
    const idle = data.endpoints.filter((e) => !e.revoked && !withSession.has(e.endpoint_id));
    if (idle.length) {
      sessions.append(h("h3", {}, "Enrolled devices without a live session"), ...idle.map((e) => h("article", { class: "card row-card" },
        h("div", {}, h("strong", { title: e.label || "" }, deviceName(e.label, e.kind)),
          h("p", { class: "mono muted small clip" }, `${e.kind} · enrolled ${clock(e.enrolled_ts)} · ${e.endpoint_id}`)),
        h("div", { class: "actions" }, h("button", { type: "button", class: "small danger", onclick: () => act(`/api/security/endpoints/${encodeURIComponent(e.endpoint_id)}/revoke`, "Device revoked") }, "Revoke device")))));
    }
    sessions.append(h("div", { class: "actions" }, h("button", { type: "button", class: "small danger", onclick: () => act("/api/security/sessions/revoke-all", "All sessions revoked") }, "Revoke all sessions")));
    fill(grants, data.grants.length ? data.grants.map((g) => h("article", { class: `card row-card ${g.revoked ? "revoked" : ""}` },
      h("div", {}, h("strong", {}, scopeText(g.scope)), g.revoked ? h("span", { class: "badge tone-muted" }, "revoked") : null,
        h("p", { class: "small" }, g.kinds.length ? g.kinds.join(", ") : "all command kinds"),
        h("p", { class: "muted small" }, `${g.provenance} · ${clock(g.created_ts)}${g.expires_at ? ` · expires ${clock(g.expires_at)}` : ""} · on revoke: ${g.revocation_policy}`)),
      g.revoked ? null : h("div", { class: "actions" }, h("button", { type: "button", class: "small", onclick: () => act(`/api/grants/${encodeURIComponent(g.grant_id)}/revoke`, "Grant revoked") }, "Revoke grant"))))
      : h("p", { class: "muted" }, "No grants."));
  }

  function renderLockdown() {
    if (state.lockdown.active) {
      fill(lockdown, h("p", {}, `Locked since ${clock(state.lockdown.since_ts)}. Only the core's host can lift it: run patchbay lockdown exit there.`));
      return;
    }
    const needReason = h("p", { class: "form-error", role: "alert" });
    const reason = h("input", { type: "text", id: "lockdown-reason", "aria-label": "Why you are locking down", placeholder: "Reason (required)" });
    const confirm = h("div", { class: "confirm", hidden: true, id: "lockdown-confirm", role: "alertdialog", "aria-labelledby": "lockdown-warning" },
      h("p", { id: "lockdown-warning" }, "This refuses every new command, marks all sessions stale and signs out every browser and CLI — including this one. It cannot be undone from the web: only the core's host can lift it."),
      reason, needReason,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "danger", id: "lockdown-confirm-button", onclick: async () => {
          if (!reason.value.trim()) { needReason.textContent = "Say why first: the reason is recorded in the audit log."; reason.focus(); return; }
          try {
            await post("/api/lockdown", { reason: reason.value.trim() });
          } catch (problem) {
            toast(problem.message, "bad");
          }
        } }, "Yes, lock everything down"),
        h("button", { type: "button", onclick: () => { confirm.hidden = true; start.hidden = false; } }, "Keep working")));
    const start = h("button", { type: "button", class: "danger", id: "lockdown-start", onclick: () => { confirm.hidden = false; start.hidden = true; reason.focus(); } }, "Enter lockdown…");
    fill(lockdown, h("p", { class: "muted" }, "For a lost device or a suspected compromise."), start, confirm);
  }

  async function loadAudit(reset) {
    if (reset) { oldest = null; audit.replaceChildren(); }
    const params = new URLSearchParams({ limit: "50" });
    if (filter.value) params.set("kind", filter.value);
    if (oldest) params.set("before", String(oldest));
    try {
      const data = await get(`/api/audit?${params}`);
      for (const r of data.records) {
        audit.append(h("li", {}, h("time", {}, clock(r.ts)), " ", h("span", { class: "mono" }, r.kind), " ",
          h("span", { class: "muted clip" }, `${r.entity} ${summary(r.details)}`)));
        oldest = r.lsn;
      }
      more.hidden = data.records.length < 50;
    } catch (problem) {
      audit.append(h("li", { class: "form-error" }, problem.message));
    }
  }

  async function act(path, done) {
    try {
      await post(path);
      toast(done);
    } catch (problem) {
      toast(problem.message, "bad");
    }
    load();
  }

  load();
  renderLockdown();
  loadAudit(true);
  return {
    update(tags) { if (tags.has("lockdown")) { renderLockdown(); } },
    unmount() {},
  };
}

function scopeText(scope) {
  if (!scope || scope.type === "all") return "Every session";
  if (scope.type === "adapter") return `Adapter ${scope.adapter_id}`;
  if (scope.type === "session") return `Session ${scope.target}`;
  return JSON.stringify(scope);
}

function summary(details) {
  if (!details) return "";
  return Object.entries(details).filter(([, v]) => v !== null && v !== "" && typeof v !== "object")
    .slice(0, 5).map(([k, v]) => `${k}=${String(v).slice(0, 40)}`).join(" ");
}

/** A readable device name from an endpoint label (usually a User-Agent); the raw label stays in the title. */
function deviceName(label, kind) {
  const ua = String(label || "");
  if (kind === "cli" || !ua.startsWith("Mozilla/")) return `${kind === "cli" ? "CLI" : "Client"} (${ua.slice(0, 40) || kind})`;
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrom(e|ium)\//.test(ua) ? "Chrome"
    : /Safari\//.test(ua) ? "Safari" : "Browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Mac OS X/.test(ua) ? "macOS"
    : /Windows/.test(ua) ? "Windows" : /Linux/.test(ua) ? "Linux" : "unknown system";
  return `${browser} on ${os}`;
}
