// Session actions, only those the adapter offers (reconfigure, session-management, query,
// attach, spawn): an action it does not offer is not shown. During a lockdown they are disabled
// and say why.

import { h } from "../dom.js";
import { downloadExport, offersExport } from "../export.js";
import { state } from "../store.js";
import { submit } from "../submit.js";

const THINKING = ["off", "minimal", "low", "medium", "high"];

/** The actions panel's rows for `session`, or [] when it offers none. */
export function actionRows(session) {
  const kinds = new Set((session.capabilities && session.capabilities.kinds) || []);
  const locked = state.lockdown.active;
  const send = (kind, payload) => submit(kind, session.target, payload, { generation: session.generation });
  const button = (label, onclick) => h("button", { type: "button", disabled: locked, title: locked ? "Refused during the lockdown" : null, onclick }, label);
  const rows = [];
  if (kinds.has("reconfigure")) {
    const model = h("input", { type: "text", id: "model-input", placeholder: "provider/model", "aria-label": "Model (provider/model id)" });
    const thinking = h("select", { id: "thinking-select", "aria-label": "Thinking level" }, THINKING.map((t) => h("option", { value: t }, t)));
    rows.push(h("div", { class: "action-row" }, model, button("Set model", () => {
      const [provider, ...rest] = model.value.split("/");
      if (provider && rest.length) send("reconfigure", { model: { provider, model_id: rest.join("/") } });
    })));
    rows.push(h("div", { class: "action-row" }, thinking, button("Set thinking", () => send("reconfigure", { thinking_level: thinking.value }))));
  }
  const simple = [];
  if (kinds.has("session-management")) {
    simple.push(button("New session", () => send("session-management", { action: "new_session" })));
    simple.push(button("Compact", () => send("session-management", { action: "compact" })));
  }
  if (kinds.has("query")) simple.push(button("Refresh status", () => send("query", {})));
  if (kinds.has("attach")) simple.push(button("Re-attach", () => send("attach", {})));
  if (simple.length) rows.push(h("div", { class: "action-row" }, simple));
  if (offersExport(session)) {
    const status = h("p", { class: "muted small", id: "export-status", role: "status" });
    rows.push(h("div", { class: "action-row" }, button("Download transcript (HTML)", (event) => {
      const b = event.currentTarget;
      b.disabled = true;
      downloadExport(session, (text) => { status.textContent = text; }).finally(() => { b.disabled = locked; });
    })), status);
  }
  if (kinds.has("spawn")) {
    const directory = h("input", { type: "text", id: "spawn-dir", placeholder: "directory", "aria-label": "Directory for the new session" });
    rows.push(h("div", { class: "action-row" }, directory, button("Spawn", () => { if (directory.value.trim()) send("spawn", { directory: directory.value.trim() }); })));
  }
  if (locked && rows.length) rows.push(h("p", { class: "muted small" }, "Refused during the lockdown."));
  return rows;
}
