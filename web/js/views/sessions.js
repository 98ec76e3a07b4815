// The session list: each session with its name, its composed connectivity/activity label, a
// preview of the last message, when it last changed, and badges — approvals waiting, last
// command failed, new messages — that follow the stream live (pending approvals are counted from
// the elicitations themselves, so the badge appears with the `elicitation.opened` event). The
// same list sits beside an open session on wide screens.

import { clock, fill, h, relative } from "../dom.js";
import { commandWord, presentation, unavailableReason } from "../labels.js";
import { state } from "../store.js";
import { previews } from "../transcript.js";

const FILTERS = { all: "All", attention: "Needs attention", live: "Live", unavailable: "Stale or offline" };
const SEEN = "pb.seen.";

/** The operator has seen everything of this session up to now. */
export function markSeen(target) {
  const p = previews.get(target);
  const lsn = Math.max(state.cursor, p ? p.lsn : 0);
  if (Number(localStorage.getItem(SEEN + target) || 0) < lsn) localStorage.setItem(SEEN + target, String(lsn));
}

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
  fill(main, h("div", { class: "split" },
    h("section", { class: "page pane-list-page", "aria-labelledby": "sessions-title" },
      h("div", { class: "page-head" }, h("h1", { id: "sessions-title" }, "Sessions"), summary),
      h("div", { class: "toolbar" }, search, chips), list),
    h("div", { class: "pane-main pane-empty", "aria-hidden": "true" }, h("p", { class: "muted" }, "Choose a session to see its transcript."))));
  main.classList.add("wide");

  function render() {
    const live = state.conn === "live";
    const sessions = sorted();
    const shown = sessions.filter((s) => matches(s, filter, query, live));
    summary.textContent = `${shown.length} of ${sessions.length} sessions`;
    if (!sessions.length) {
      fill(list, h("li", { class: "empty" }, live ? "No sessions yet. Start an adapter (patchbay adapter run …) and its sessions appear here." : "Waiting for the core…"));
      return;
    }
    fill(list, shown.map((s) => card(s, live, null)));
  }

  render();
  const timer = setInterval(render, 15000); // refreshes the "n min ago" wording only
  return {
    update(tags) { if (relevant(tags)) render(); },
    unmount() { clearInterval(timer); main.classList.remove("wide"); },
  };
}

/** The compact list beside an open session (shown on wide screens only, by CSS). */
export function mountSessionList(container, { current }) {
  const list = h("ul", { class: "session-list side", id: "side-list", "aria-label": "Sessions" });
  fill(container, h("h2", { class: "side-title" }, "Sessions"), list);
  const render = () => fill(list, sorted().map((s) => card(s, state.conn === "live", current)));
  render();
  const timer = setInterval(render, 15000);
  return { update(tags) { if (relevant(tags)) render(); }, unmount() { clearInterval(timer); } };
}

const relevant = (tags) => ["sessions", "elicitations", "conn", "commands", "lockdown", "previews"].some((t) => tags.has(t));

function sorted() {
  const latest = (s) => Math.max(s.updated_ts || 0, (previews.get(s.target) || {}).ts || 0);
  return [...state.sessions.values()].sort((a, b) => latest(b) - latest(a));
}

function attentionOf(session) {
  const ids = new Set(session.pending_elicitations || []);
  for (const e of state.elicitations.values()) if (e.target === session.target && e.state === "pending") ids.add(e.elicitation_id);
  let pending = 0;
  for (const id of ids) if (((state.elicitations.get(id) || {}).state || "pending") === "pending") pending += 1;
  let last = null;
  for (const c of state.commands.values()) {
    if (c.target === session.target && c.kind === "instruct" && (!last || c.accepted_lsn > last.accepted_lsn)) last = c;
  }
  const failed = last && ["failed", "rejected", "expired"].includes(last.state) ? last : null;
  const seen = Number(localStorage.getItem(SEEN + session.target) || 0);
  const p = previews.get(session.target);
  const unread = p ? p.starts.filter((lsn) => lsn > seen).length : 0;
  return { pending, failed, unread, last };
}

function matches(session, filter, query, live) {
  if (query) {
    const meta = session.metadata || {};
    const hay = [session.label, session.target, session.adapter_id, session.deployment_scope, session.runtime_session_id,
      meta.cwd, meta.project, typeof meta.model === "string" ? meta.model : meta.model && meta.model.model_id].join(" ").toLowerCase();
    if (!hay.includes(query)) return false;
  }
  if (filter === "attention") { const a = attentionOf(session); return a.pending > 0 || !!a.failed; }
  if (filter === "live") return live && session.connectivity === "live";
  if (filter === "unavailable") return !live || session.connectivity !== "live";
  return true;
}

function previewOf(session, last) {
  const p = previews.get(session.target);
  const mine = last && last.payload && typeof last.payload.text === "string" ? { text: `You: ${last.payload.text}`, lsn: last.accepted_lsn } : null;
  if (p && p.text && (!mine || p.lsn > mine.lsn)) return p.text;
  return mine ? mine.text : "";
}

/** A preview line in plain words: markdown marks and fences dropped, whitespace folded. */
function plain(text) {
  return text.replace(/```[\w+-]*/g, " ").replace(/[*_`#>|]+/g, "").replace(/\s+/g, " ").trim();
}

function card(session, live, current) {
  const label = presentation(session, live);
  const { pending, failed, unread, last } = attentionOf(session);
  const meta = session.metadata || {};
  const model = typeof meta.model === "string" ? meta.model : meta.model && meta.model.model_id;
  const why = unavailableReason(session, state.lockdown);
  const href = `#/session/${session.target.split("/").map(encodeURIComponent).join("/")}`;
  const p = previews.get(session.target);
  const ts = Math.max(session.updated_ts || 0, p ? p.ts : 0);
  const preview = previewOf(session, last);
  const here = current === session.target;
  return h("li", { class: `session-card${here ? " current" : ""}`, dataset: { target: session.target } },
    h("a", { href, class: "session-link", "aria-current": here ? "page" : null },
      h("div", { class: "row" },
        h("span", { class: "session-name" }, session.label || session.runtime_session_id),
        h("span", { class: `badge tone-${label.tone}`, dataset: { presentation: label.text } }, label.text),
        h("time", { class: "when", title: clock(ts) }, relative(ts))),
      preview ? h("div", { class: "preview" }, plain(preview).slice(0, 160)) : null,
      pending || failed || unread ? h("div", { class: "row badges" },
        pending ? h("span", { class: "badge tone-attention waiting", dataset: { waiting: String(pending) } }, `${pending} waiting`) : null,
        failed ? h("span", { class: "badge tone-bad" }, `last command ${commandWord(failed.state).toLowerCase()}`) : null,
        unread && !here ? h("span", { class: "badge tone-busy unread" }, `${unread} new`) : null) : null,
      current ? null : h("div", { class: "identity mono" },
        `${session.adapter_id} · ${session.deployment_scope} · ${session.runtime_session_id} · gen ${session.generation}`),
      current ? null : h("div", { class: "meta" },
        meta.cwd ? h("span", { class: "mono clip" }, meta.cwd) : null,
        model ? h("span", {}, `model ${model}`) : null),
      why ? h("div", { class: "why" }, why) : null));
}
