// Session detail: identity header, session actions, the transcript (streamed text coalesced per
// animation frame; tool calls collapsible; user messages with their delivery cards; system
// lines) and the composer.

import { clock, fill, h, relative } from "../dom.js";
import { presentation, unavailableReason } from "../labels.js";
import { renderMarkdown, StreamingMarkdown } from "../markdown.js";
import { state } from "../store.js";
import { localFor, reconcileAll, submit } from "../submit.js";
import { transcriptFor } from "../transcript.js";
import { commandCard, elicitationCard, localCard } from "./cards.js";
import { actionsPanel } from "./actions.js";

export function mountSession(main, target) {
  const t = transcriptFor(target);
  const header = h("div", { class: "session-head" });
  const list = h("ol", { class: "transcript", id: "transcript", "aria-label": "Transcript", "aria-live": "off" });
  const pendingList = h("div", { class: "local-list", "aria-live": "polite" });
  const composer = makeComposer(target);
  const actions = h("div");
  fill(main, h("section", { class: "page session-page", "aria-labelledby": "session-title" },
    header, actions, list, pendingList, composer.el));
  const nodes = new Map();
  const growing = new Map(); // entry key -> incremental renderer of a growing entry
  let actionsSig = null;
  t.load();
  reconcileAll();

  function renderHeader() {
    const s = state.sessions.get(target);
    if (!s) {
      fill(header, h("a", { href: "#/sessions", class: "back" }, "← Sessions"), h("h1", { id: "session-title" }, target),
        h("p", { class: "why" }, "This session is not known to the core (yet)."));
      return;
    }
    const label = presentation(s, state.conn === "live");
    const meta = s.metadata || {};
    fill(header,
      h("a", { href: "#/sessions", class: "back" }, "← Sessions"),
      h("div", { class: "row" }, h("h1", { id: "session-title" }, s.label || s.runtime_session_id),
        h("span", { class: `badge tone-${label.tone}`, id: "session-state", dataset: { presentation: label.text } }, label.text)),
      h("p", { class: "identity mono" }, `${s.adapter_id} · ${s.deployment_scope} · ${s.runtime_session_id} · gen ${s.generation}`),
      h("p", { class: "meta" }, meta.cwd ? h("span", { class: "mono clip" }, meta.cwd) : null,
        meta.model ? h("span", {}, `model ${typeof meta.model === "string" ? meta.model : meta.model.model_id}`) : null,
        h("span", {}, `updated ${clock(s.updated_ts)} (${relative(s.updated_ts)})`)),
      (() => { const why = unavailableReason(s, state.lockdown); return why ? h("p", { class: "why" }, why) : null; })());
    const sig = JSON.stringify([s.capabilities, s.generation, state.lockdown.active]);
    if (sig !== actionsSig) { actionsSig = sig; fill(actions, actionsPanel(s)); }
  }

  function entryNode(entry) {
    if (entry.type === "command") {
      const command = state.commands.get(entry.command_id);
      return command ? h("li", { class: "entry" }, commandCard(command)) : h("li", { class: "entry" });
    }
    if (entry.type === "elicitation") {
      const view = state.elicitations.get(entry.elicitation_id);
      return h("li", { class: "entry" }, view ? elicitationCard(view) : null);
    }
    if (entry.type === "assistant") {
      const md = new StreamingMarkdown();
      md.el.setAttribute("aria-label", "Agent");
      if (entry.streaming) md.update(entry.text);
      else md.finish(entry.text);
      growing.set(entry.key, { md, length: entry.text.length });
      return h("li", { class: "entry assistant", dataset: { commandId: entry.command_id || "" } }, md.el);
    }
    if (entry.type === "output") {
      const pre = h("pre", { class: "stream", tabindex: "0", "aria-label": "Output" }, entry.text);
      growing.set(entry.key, { pre, length: entry.text.length });
      return h("li", { class: "entry output" }, pre);
    }
    if (entry.type === "thinking") {
      return h("li", { class: "entry thinking" }, h("details", {}, h("summary", {}, "Thinking"), h("p", { class: "muted" }, entry.text)));
    }
    if (entry.type === "tool") {
      const word = entry.status === "running" ? "running" : entry.status === "error" ? "failed" : "done";
      return h("li", { class: `entry tool tool-${entry.status}` }, h("details", {},
        h("summary", {}, h("span", { class: "mono" }, entry.name), " ", h("span", { class: `badge tone-${entry.status === "error" ? "bad" : entry.status === "done" ? "ok" : "busy"}` }, word)),
        entry.args ? h("pre", { class: "md-code", tabindex: "0" }, entry.args) : null,
        entry.result ? h("pre", { class: "md-code", tabindex: "0" }, entry.result) : null));
    }
    if (entry.type === "user") return h("li", { class: "entry user" }, h("div", { class: "user-text" }, entry.text));
    return h("li", { class: "entry system" }, entry.text);
  }

  function renderTranscript() {
    const nearBottom = pinned;
    for (const key of t.dirty) {
      const old = nodes.get(key);
      const entry = t.byKey.get(key);
      if (!entry) continue;
      const grow = growing.get(key);
      if (old && grow && grow.md) { // streamed reply: only the new part is rendered
        if (!entry.streaming) { if (!grow.md.done || entry.text.length !== grow.length) grow.md.finish(entry.text); }
        else if (entry.text.length !== grow.length) grow.md.update(entry.text);
        grow.length = entry.text.length;
        continue;
      }
      if (old && grow && grow.pre && entry.text.length > grow.length) { // output: append the new text
        grow.pre.append(entry.text.slice(grow.length));
        grow.length = entry.text.length;
        continue;
      }
      const node = entryNode(entry);
      if (old) old.replaceWith(node);
      nodes.set(key, node);
    }
    t.dirty.clear();
    let previous = null;
    for (const entry of t.entries) {
      let node = nodes.get(entry.key);
      if (!node) { node = entryNode(entry); nodes.set(entry.key, node); }
      const expected = previous ? previous.nextSibling : list.firstChild;
      if (node !== expected) list.insertBefore(node, expected);
      previous = node;
    }
    if (!t.entries.length) {
      const word = t.loaded ? "Nothing yet. Send the first message below." : t.error ? `Could not load the history (${t.error}); retrying when the connection is back.` : "Loading…";
      const empty = list.querySelector(".empty");
      if (empty) empty.textContent = word;
      else fill(list, h("li", { class: "empty" }, word));
    } else {
      const empty = list.querySelector(".empty");
      if (empty) empty.remove();
    }
    fill(pendingList, localFor(target).map(localCard));
    if (nearBottom) window.scrollTo(0, document.body.scrollHeight);
  }

  // Follow the transcript while the reader is at its end; reading further up stops following.
  // Tracked on scroll, so a render never has to measure the page before changing it.
  let pinned = true;
  const onScroll = () => {
    pinned = window.innerHeight + window.scrollY >= document.body.scrollHeight - 120;
  };
  window.addEventListener("scroll", onScroll, { passive: true });

  renderHeader();
  renderTranscript();
  composer.refresh();
  return {
    update(tags) {
      if (tags.has(`session:${target}`) || tags.has("conn") || tags.has("lockdown") || tags.has("sessions")) { renderHeader(); composer.refresh(); }
      if (tags.has(`transcript:${target}`) || tags.has(`local:${target}`) || tags.has("commands") || tags.has("elicitations")) renderTranscript();
    },
    unmount() { window.removeEventListener("scroll", onScroll); },
  };
}

function makeComposer(target) {
  const draftKey = `pb.draft.${target}`;
  const text = h("textarea", { id: "composer-text", rows: "2", "aria-describedby": "composer-target composer-help", placeholder: "Message or command…" });
  text.value = localStorage.getItem(draftKey) || "";
  const targetLine = h("p", { class: "mono muted clip", id: "composer-target" });
  const modeQueue = h("input", { type: "radio", name: "mode", id: "mode-queue", value: "followUp", checked: true });
  const modeSteer = h("input", { type: "radio", name: "mode", id: "mode-steer", value: "steer" });
  const modes = h("fieldset", { class: "modes", hidden: true }, h("legend", {}, "A turn is running:"),
    h("label", { for: "mode-queue" }, modeQueue, " Queue as follow-up"),
    h("label", { for: "mode-steer" }, modeSteer, " Steer now"));
  const why = h("p", { class: "why", id: "composer-why" });
  const sendButton = h("button", { type: "submit", class: "primary", id: "send" }, "Send");
  const form = h("form", { class: "composer", id: "composer", "aria-label": "Composer" },
    targetLine, modes,
    h("label", { for: "composer-text", class: "sr-only" }, "Message"),
    h("div", { class: "composer-row" }, text, sendButton),
    h("p", { class: "muted small", id: "composer-help" }, "Enter sends · Shift+Enter for a new line · drafts are kept on this device"), why);
  text.addEventListener("input", () => {
    if (text.value) localStorage.setItem(draftKey, text.value);
    else localStorage.removeItem(draftKey);
  });
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = text.value;
    const s = state.sessions.get(target);
    if (!value.trim() || !s || sendButton.disabled) return;
    const payload = { text: value };
    if (!modes.hidden) payload.mode = modeSteer.checked ? "steer" : "followUp";
    text.value = "";
    localStorage.removeItem(draftKey);
    submit("instruct", target, payload, { generation: s.generation });
  });
  function refresh() {
    const s = state.sessions.get(target);
    if (!s) { sendButton.disabled = true; return; }
    targetLine.textContent = `To: ${s.adapter_id} · ${s.deployment_scope} · ${s.runtime_session_id} · generation ${s.generation}`;
    const caps = s.capabilities || {};
    modes.hidden = !(s.activity === "working" && s.connectivity === "live");
    modeSteer.disabled = !caps.steer;
    modeSteer.parentElement.title = caps.steer ? "" : "This adapter cannot steer a running turn";
    if (modeSteer.disabled) modeQueue.checked = true;
    const reason = unavailableReason(s, state.lockdown);
    const blocked = state.lockdown.active || s.connectivity === "offline" || !(caps.kinds || []).includes("instruct");
    sendButton.disabled = blocked;
    why.textContent = blocked ? (reason || "This adapter does not take messages.") : s.connectivity !== "live" ? "The session is not live: the command is kept and delivered when it is back." : "";
  }
  return { el: form, refresh };
}

