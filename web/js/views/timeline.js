// The transcript list on screen. Only the newest entries are in the DOM (a window that starts at
// an anchor entry); "Earlier messages" at the top — also taken when you scroll near it — moves
// the anchor back a page, and the browser's scroll anchoring keeps what you read in place. A
// command's output is attached inside its message; growing entries render only what is new.

import { h } from "../dom.js";
import { state } from "../store.js";
import { commandCard, elicitationCard } from "./cards.js";
import { entryNode } from "./entries.js";

const FIRST_WINDOW = 60;
const PAGE = 100;
const MAX_WHILE_FOLLOWING = 300;

export function mountTimeline(list, t) {
  const nodes = new Map(); // entry key -> node on screen (li, or a pre attached in a message)
  const growing = new Map(); // entry key -> incremental renderer of a growing entry
  const wrappers = new Map(); // entry key -> the row an output gets when its command is not on screen
  let anchor = null; // key of the first entry in the window (null: not chosen yet)
  const older = h("li", { class: "older" });
  const olderButton = h("button", { type: "button", id: "older" }, "Earlier messages");
  older.append(olderButton);
  olderButton.addEventListener("click", showOlder);

  function showOlder() {
    const at = indexOf(anchor);
    if (at <= 0) {
      if (t.hasOlder) t.loadOlder().then(() => { if (indexOf(anchor) > 0) showOlder(); });
      return;
    }
    // Keep what is on screen where it is (the browser does not anchor at scroll offset 0).
    const ref = older.nextSibling;
    const before = ref ? ref.getBoundingClientRect().top : 0;
    anchor = t.entries[Math.max(0, at - PAGE)].key;
    render();
    if (ref && ref.isConnected) window.scrollBy(0, ref.getBoundingClientRect().top - before);
  }

  function indexOf(key) {
    if (key === null) return 0;
    for (let i = t.entries.length - 1; i >= 0; i -= 1) if (t.entries[i].key === key) return i;
    return 0;
  }

  function build(entry) {
    if (entry.type === "command") {
      const command = state.commands.get(entry.command_id);
      const li = h("li", { class: "entry turn" }, command ? commandCard(command) : null);
      li.attach = li.querySelector(".attach");
      return li;
    }
    if (entry.type === "elicitation") {
      const view = state.elicitations.get(entry.elicitation_id);
      return h("li", { class: "entry" }, view ? elicitationCard(view) : null);
    }
    return entryNode(entry, (g) => growing.set(entry.key, g));
  }

  function refresh(key) {
    const old = nodes.get(key);
    const entry = t.byKey.get(key);
    if (!old || !entry) return;
    const grow = growing.get(key);
    if (grow && grow.md) { // a streamed reply: only the new part is rendered
      if (!entry.streaming) { if (!grow.md.done || entry.text.length !== grow.length) grow.md.finish(entry.text); }
      else if (entry.text.length !== grow.length) grow.md.update(entry.text);
      grow.length = entry.text.length;
      return;
    }
    if (grow && grow.pre && entry.text.length >= grow.length) { // output: append the new text
      if (entry.text.length > grow.length) grow.pre.append(entry.text.slice(grow.length));
      grow.length = entry.text.length;
      return;
    }
    const node = build(entry);
    old.replaceWith(node);
    nodes.set(key, node);
  }

  function render({ following = false } = {}) {
    for (const key of t.dirty) refresh(key);
    t.dirty.clear();
    const entries = t.entries;
    if (anchor === null && entries.length) anchor = entries[Math.max(0, entries.length - FIRST_WINDOW)].key;
    let start = indexOf(anchor);
    if (following && entries.length - start > MAX_WHILE_FOLLOWING) { // reading the end: drop what scrolled far away
      start = entries.length - FIRST_WINDOW;
      anchor = entries[start].key;
    }
    older.hidden = start === 0 && !t.hasOlder;
    olderButton.textContent = t.loadingOlder ? "Loading earlier messages…" : start ? `Earlier messages (${start})` : "Earlier messages";
    const wanted = new Set();
    let previous = older;
    if (list.firstChild !== older) list.prepend(older);
    for (let i = start; i < entries.length; i += 1) {
      const entry = entries[i];
      wanted.add(entry.key);
      let node = nodes.get(entry.key);
      if (!node) { node = build(entry); nodes.set(entry.key, node); }
      const host = entry.type === "output" && entry.command_id ? nodes.get(`cmd:${entry.command_id}`) : null;
      if (host && host.attach && wanted.has(`cmd:${entry.command_id}`)) {
        if (node.parentNode !== host.attach) host.attach.append(node);
        continue;
      }
      if (entry.type === "output") { // output of a command not on screen: a row of its own
        let li = wrappers.get(entry.key);
        if (!li) { li = h("li", { class: "entry output" }); wrappers.set(entry.key, li); }
        if (node.parentNode !== li) li.append(node);
        node = li;
      }
      const expected = previous.nextSibling;
      if (node !== expected) list.insertBefore(node, expected);
      previous = node;
    }
    for (const [key, node] of nodes) {
      if (!wanted.has(key)) { node.remove(); nodes.delete(key); growing.delete(key); }
    }
    for (const [key, li] of wrappers) {
      if (!wanted.has(key) || li.firstChild !== nodes.get(key)) { li.remove(); wrappers.delete(key); }
    }
    while (previous.nextSibling && !previous.nextSibling.classList.contains("empty")) previous.nextSibling.remove();
    const empty = list.querySelector(".empty");
    if (!entries.length) {
      const word = t.loaded ? "Nothing yet. Send the first message below." : t.error ? `Could not load the history (${t.error}); retrying when the connection is back.` : "Loading…";
      if (empty) empty.textContent = word;
      else list.append(h("li", { class: "empty" }, word));
    } else if (empty) empty.remove();
  }

  return {
    render,
    /** The reader scrolled near the top: bring in the previous page (once per approach). */
    nearTop() { if (!older.hidden && anchor !== null && !t.loadingOlder) showOlder(); },
    unmount() {},
  };
}
