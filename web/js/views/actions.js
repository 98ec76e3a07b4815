// Session actions the adapter declares (reconfigure, session-management, query, attach, spawn); an
// undeclared one is rendered disabled with the reason.

import { h } from "../dom.js";
import { state } from "../store.js";
import { submit } from "../submit.js";

const THINKING = ["off", "minimal", "low", "medium", "high"];

export function actionsPanel(session) {
  const kinds = new Set((session.capabilities && session.capabilities.kinds) || []);
  const locked = state.lockdown.active;
  const why = (kind) => (locked ? "Refused during the lockdown" : kinds.has(kind) ? "" : `This adapter does not declare ${kind}`);
  const send = (kind, payload) => submit(kind, session.target, payload, { generation: session.generation });
  const button = (kind, label, onclick) => {
    const reason = why(kind);
    return h("button", { type: "button", class: "small", disabled: !!reason, title: reason || null, onclick }, label);
  };
  const model = h("input", { type: "text", id: "model-input", placeholder: "provider/model", "aria-label": "Model (provider/model id)" });
  const thinking = h("select", { id: "thinking-select", "aria-label": "Thinking level" }, THINKING.map((t) => h("option", { value: t }, t)));
  const directory = h("input", { type: "text", id: "spawn-dir", placeholder: "directory", "aria-label": "Directory for the new session" });
  const reasons = ["reconfigure", "session-management", "query", "attach", "spawn"].map(why).filter(Boolean);
  return h("details", { class: "actions-panel" },
    h("summary", {}, "Session actions"),
    h("div", { class: "action-row" }, model, button("reconfigure", "Set model", () => {
      const [provider, ...rest] = model.value.split("/");
      if (provider && rest.length) send("reconfigure", { model: { provider, model_id: rest.join("/") } });
    })),
    h("div", { class: "action-row" }, thinking, button("reconfigure", "Set thinking", () => send("reconfigure", { thinking_level: thinking.value }))),
    h("div", { class: "action-row" },
      button("session-management", "New session", () => send("session-management", { action: "new_session" })),
      button("session-management", "Compact", () => send("session-management", { action: "compact" })),
      button("query", "Refresh status", () => send("query", {})),
      button("attach", "Re-attach", () => send("attach", {}))),
    h("div", { class: "action-row" }, directory, button("spawn", "Spawn", () => { if (directory.value.trim()) send("spawn", { directory: directory.value.trim() }); })),
    reasons.length ? h("ul", { class: "muted small" }, [...new Set(reasons)].map((r) => h("li", {}, r))) : null);
}
