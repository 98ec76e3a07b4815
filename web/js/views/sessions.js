// The session list: every runtime session with its identity, where it runs, its composed
// connectivity/activity label, the time of its last authoritative update and an attention
// badge. Offline and unavailable sessions stay listed and say why.

import { clock, fill, h, relative } from "../dom.js";
import { commandWord, presentation, unavailableReason } from "../labels.js";
import { state } from "../store.js";

const FILTERS = { all: "All", attention: "Needs attention", live: "Live", unavailable: "Stale or offline" };

export function mountSessions(main) {
  let filter = sessionStorage.getItem("pb.filter") || "all";
  let query = "";
  const list = h("ul", { class: "session-list", id: "session-list", "aria-label": "Sessions" });
  const search = h("input", { type: "search", id: "session-search", placeholder: "Search label, project, adapter…", "aria-label": "Search sessions" });
  search.addEventListener("input", () => { query = search.value.trim().toLowerCase(); render(); });
  const chips = h("div", { class: "chips", role: "group", "aria-label": "Filter sessions" },
    Object.entries(FILTERS).map(([name, word]) => h("button", {
      type: "button", class: "chip", "aria-pressed": String(name === filter), dataset: { filter: name },
      onclick: (event) => {
        filter = name;
        sessionStorage.setItem("pb.filter", name);
        for (const chip of chips.children) chip.setAttribute("aria-pressed", String(chip === event.currentTarget));
        render();
      },
    }, word)));
  const summary = h("p", { class: "muted", id: "session-summary", "aria-live": "polite" });
  fill(main, h("section", { class: "page", "aria-labelledby": "sessions-title" },
    h("div", { class: "page-head" }, h("h1", { id: "sessions-title" }, "Sessions"), summary),
    h("div", { class: "toolbar" }, search, chips), list));

  function render() {
    const live = state.conn === "live";
    const sessions = [...state.sessions.values()].sort((a, b) => (b.updated_ts || 0) - (a.updated_ts || 0));
    const shown = sessions.filter((s) => matches(s, filter, query, live));
    summary.textContent = `${shown.length} of ${sessions.length} sessions`;
    if (!sessions.length) {
      fill(list, h("li", { class: "empty" }, live ? "No sessions yet. Start an adapter (patchbay adapter run …) and its sessions appear here." : "Waiting for the core…"));
      return;
    }
    fill(list, shown.map((s) => card(s, live)));
  }

  render();
  const timer = setInterval(render, 15000); // refreshes the "n min ago" wording only
  return {
    update(tags) { if (tags.has("sessions") || tags.has("elicitations") || tags.has("conn") || tags.has("commands") || tags.has("lockdown")) render(); },
    unmount() { clearInterval(timer); },
  };
}

function attentionOf(session) {
  const pending = session.pending_elicitations.filter((id) => (state.elicitations.get(id) || {}).state !== "answered").length;
  let last = null;
  for (const c of state.commands.values()) {
    if (c.target === session.target && c.kind === "instruct" && (!last || c.accepted_lsn > last.accepted_lsn)) last = c;
  }
  const failed = last && ["failed", "rejected", "expired"].includes(last.state) ? last : null;
  return { pending, failed };
}

function matches(session, filter, query, live) {
  if (query) {
    const hay = [session.label, session.target, session.adapter_id, session.deployment_scope, session.runtime_session_id,
      session.metadata.cwd, session.metadata.project, session.metadata.model].join(" ").toLowerCase();
    if (!hay.includes(query)) return false;
  }
  if (filter === "attention") { const a = attentionOf(session); return a.pending > 0 || !!a.failed; }
  if (filter === "live") return live && session.connectivity === "live";
  if (filter === "unavailable") return !live || session.connectivity !== "live";
  return true;
}

function card(session, live) {
  const label = presentation(session, live);
  const { pending, failed } = attentionOf(session);
  const meta = session.metadata || {};
  const model = typeof meta.model === "string" ? meta.model : meta.model && meta.model.model_id;
  const why = unavailableReason(session, state.lockdown);
  const href = `#/session/${session.target.split("/").map(encodeURIComponent).join("/")}`;
  return h("li", { class: "session-card", dataset: { target: session.target } },
    h("a", { href, class: "session-link" },
      h("div", { class: "row" },
        h("span", { class: "session-name" }, session.label || session.runtime_session_id),
        h("span", { class: `badge tone-${label.tone}`, dataset: { presentation: label.text } }, label.text),
        pending ? h("span", { class: "badge tone-attention" }, `${pending} waiting`) : null,
        failed ? h("span", { class: "badge tone-bad" }, `last command ${commandWord(failed.state).toLowerCase()}`) : null),
      h("div", { class: "identity mono" },
        `${session.adapter_id} · ${session.deployment_scope} · ${session.runtime_session_id} · gen ${session.generation}`),
      h("div", { class: "meta" },
        meta.cwd ? h("span", { class: "mono clip" }, meta.cwd) : null,
        model ? h("span", {}, `model ${model}`) : null,
        h("span", { title: clock(session.updated_ts) }, `updated ${clock(session.updated_ts)} (${relative(session.updated_ts)})`)),
      why ? h("div", { class: "why" }, why) : null));
}
