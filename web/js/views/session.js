// Session detail: a compact header (back, name, state, details toggle), the transcript and the
// composer; on screens ≥ 1024 px the session list stays beside it. The newest entry is in view
// on opening and after every reload of the history (a reconnect); reading further up stops
// following until you come back to the end.

import { clock, fill, h, relative } from "../dom.js";
import { presentation, unavailableReason } from "../labels.js";
import { usageLine } from "../observations.js";
import { state } from "../store.js";
import { localFor, reconcileAll } from "../submit.js";
import { transcriptFor } from "../transcript.js";
import { actionRows } from "./actions.js";
import { localCard } from "./cards.js";
import { makeComposer } from "./composer.js";
import { markSeen, mountSessionList } from "./sessions.js";
import { mountTimeline } from "./timeline.js";

export function mountSession(main, target) {
  const t = transcriptFor(target);
  const header = h("div", { class: "session-head" });
  const infoMeta = h("div");
  const infoActions = h("div");
  const info = h("div", { class: "session-info", id: "session-info", hidden: true }, infoMeta, infoActions);
  const list = h("ol", { class: "transcript", id: "transcript", "aria-label": "Transcript", "aria-live": "off" });
  const pendingList = h("div", { class: "local-list", "aria-live": "polite" });
  const composer = makeComposer(target);
  const side = h("aside", { class: "pane-list", "aria-label": "All sessions" });
  fill(main, h("div", { class: "split" }, side,
    h("section", { class: "page session-page pane-main", "aria-labelledby": "session-title" }, header, info, list, pendingList, composer.el)));
  main.classList.add("wide");
  const sideList = mountSessionList(side, { current: target });
  const timeline = mountTimeline(list, t);
  let actionsSig = null;
  let seenLoads = -1;
  t.load();
  reconcileAll();

  const toggle = h("button", { type: "button", class: "icon-button", id: "session-info-toggle", "aria-expanded": "false", "aria-controls": "session-info", "aria-label": "Session details and actions" }, "⋯");
  toggle.addEventListener("click", () => {
    info.hidden = !info.hidden;
    toggle.setAttribute("aria-expanded", String(!info.hidden));
  });

  function renderHeader() {
    const s = state.sessions.get(target);
    const back = h("a", { href: "#/sessions", class: "back icon-link", "aria-label": "All sessions" }, "←");
    if (!s) {
      fill(header, h("div", { class: "head-row" }, back, h("h1", { id: "session-title" }, target)),
        h("p", { class: "why" }, "This session is not known to the core (yet)."));
      return;
    }
    const label = presentation(s, state.conn === "live");
    const why = unavailableReason(s, state.lockdown);
    const usage = usageLine(s.usage || t.usage);
    fill(header,
      h("div", { class: "head-row" }, back, h("h1", { id: "session-title" }, s.label || s.runtime_session_id),
        h("span", { class: `badge tone-${label.tone}`, id: "session-state", dataset: { presentation: label.text } }, label.text), toggle),
      usage ? h("p", { class: "usage muted small", id: "session-usage" }, h("span", { class: "sr-only" }, "Usage: "), usage) : null,
      why ? h("p", { class: "why" }, why) : null);
    const meta = s.metadata || {};
    fill(infoMeta,
      h("p", { class: "identity mono" }, `${s.adapter_id} · ${s.deployment_scope} · ${s.runtime_session_id} · gen ${s.generation}`),
      h("p", { class: "meta" }, meta.cwd ? h("span", { class: "mono clip" }, meta.cwd) : null,
        meta.model ? h("span", {}, `model ${typeof meta.model === "string" ? meta.model : meta.model.model_id}`) : null,
        h("span", {}, `updated ${clock(s.updated_ts)} (${relative(s.updated_ts)})`)));
    const sig = JSON.stringify([s.capabilities, s.generation, state.lockdown.active]);
    if (sig === actionsSig) return; // rebuilt only when what is offered changes (not while typing)
    actionsSig = sig;
    const rows = actionRows(s);
    fill(infoActions, rows.length ? h("div", { class: "actions-panel", role: "group", "aria-label": "Session actions" }, rows) : null);
  }

  // Follow the transcript while the reader is at its end (tracked on scroll, so a render never
  // has to measure the page before changing it).
  let pinned = true;
  const onScroll = () => {
    pinned = window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 120;
    if (window.scrollY < 400) timeline.nearTop();
    else if (window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 400) timeline.nearEnd();
  };
  window.addEventListener("scroll", onScroll, { passive: true });
  const toEnd = () => window.scrollTo(0, document.documentElement.scrollHeight);
  // Rendered markdown and images change heights after the render: stay at the end if there.
  const resized = new ResizeObserver(() => { if (pinned && timeline.atTail()) toEnd(); });
  resized.observe(list);

  function renderTranscript() {
    if (t.caughtUp !== seenLoads) { // opened, or the history was fetched again after a reconnect
      seenLoads = t.caughtUp;
      if (pinned) timeline.toTail(); // unless the reader has scrolled away meanwhile
    }
    timeline.render({ following: pinned });
    fill(pendingList, localFor(target).map(localCard));
    if (pinned && timeline.atTail()) toEnd();
    markSeen(target);
  }

  renderHeader();
  renderTranscript();
  composer.refresh();
  requestAnimationFrame(() => { toEnd(); composer.focus(); }); // after the router's own focus and scroll
  return {
    update(tags) {
      if (tags.has(`session:${target}`) || tags.has("conn") || tags.has("lockdown") || tags.has("sessions")) { renderHeader(); composer.refresh(); }
      if (tags.has(`transcript:${target}`) || tags.has(`local:${target}`) || tags.has("commands") || tags.has("elicitations")) renderTranscript();
      if (tags.has(`slash:${target}`) || tags.has("commands")) composer.refreshSlash();
      sideList.update(tags);
    },
    unmount() {
      window.removeEventListener("scroll", onScroll);
      resized.disconnect();
      timeline.unmount();
      sideList.unmount();
      main.classList.remove("wide");
    },
  };
}
