// The transcript list on screen. Only a window of entries is in the DOM: at first the newest
// ones; "Earlier messages" at the top — also taken when you scroll near it — moves the window
// back a page (fetching the previous page from the core when the loaded events run out), and
// once it holds MAX_ROWS rows the newest ones leave it, to come back with "Newer messages" (or
// scrolling near the end). What you read stays in place while rows come and go. A command's
// output is attached inside its message; growing entries render only what is new.

import { h } from "../dom.js";
import { state } from "../store.js";
import { commandCard, elicitationCard } from "./cards.js";
import { entryNode } from "./entries.js";

const FIRST_WINDOW = 60;
const PAGE = 40;
const MAX_WHILE_FOLLOWING = 300;
const MAX_ROWS = 240;

export function mountTimeline(list, t) {
  const nodes = new Map(); // entry key -> node on screen (li, or a pre attached in a message)
  const growing = new Map(); // entry key -> incremental renderer of a growing entry
  const wrappers = new Map(); // entry key -> the row an output gets when its command is not on screen
  let anchor = null; // key of the first entry in the window (null: not chosen yet)
  let tail = true; // the window runs to the newest entry; else it holds `span` entries
  let span = 0;
  const older = h("li", { class: "older" });
  const olderButton = h("button", { type: "button", id: "older" }, "Earlier messages");
  older.append(olderButton);
  olderButton.addEventListener("click", showOlder);
  const newer = h("li", { class: "older newer" });
  const newerButton = h("button", { type: "button", id: "newer" }, "Newer messages");
  newer.append(newerButton);
  newerButton.addEventListener("click", showNewer);

  const endOf = (start) => (tail ? t.entries.length : Math.min(t.entries.length, start + span));

  /** Make the window [start, end): at most MAX_ROWS rows, dropping the newest when over. */
  function setWindow(start, end) {
    anchor = t.entries[start].key;
    if (tail && end >= t.entries.length && end - start <= MAX_ROWS) return;
    tail = false;
    span = Math.min(MAX_ROWS, end - start);
  }

  function keepInPlace(ref) {
    const before = ref ? ref.getBoundingClientRect().top : 0;
    return () => { if (ref && ref.isConnected) window.scrollBy(0, ref.getBoundingClientRect().top - before); };
  }

  function showNewer() {
    if (tail) return;
    const start = indexOf(anchor);
    const end = Math.min(t.entries.length, start + span + PAGE);
    const keep = keepInPlace(newer.previousSibling);
    anchor = t.entries[Math.max(start, end - MAX_ROWS)].key;
    span = end - indexOf(anchor);
    if (end >= t.entries.length) tail = true;
    render();
    keep();
  }

  /** The first entry of the loaded events: commands older than all of them sort before it. */
  function floor() {
    if (!t.hasOlder) return 0;
    const i = t.entries.findIndex((e) => e.sort >= t.oldest);
    return i < 0 ? 0 : i;
  }

  function showOlder() {
    const at = indexOf(anchor);
    const low = floor();
    const end = endOf(at);
    // The reference row is the first after where older rows go in; what is on screen stays put.
    let ref = older.nextSibling;
    if (at <= low) while (ref && !(ref.entrySort >= t.oldest)) ref = ref.nextSibling;
    const keep = keepInPlace(ref);
    if (at > low) {
      setWindow(Math.max(low, at - PAGE), end);
      render();
      keep();
      return;
    }
    if (!t.hasOlder) return;
    const first = t.entries[low];
    const last = t.entries[end - 1];
    t.loadOlder().then(() => {
      const from = first && t.byKey.has(first.key) ? indexOf(first.key) : 0;
      const to = tail || !last ? t.entries.length : indexOf(last.key) + 1;
      setWindow(Math.max(floor(), from - PAGE), to);
      render();
      keep();
    });
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
    if (following && tail && entries.length - start > MAX_WHILE_FOLLOWING) { // reading the end: drop what scrolled far away
      start = entries.length - FIRST_WINDOW;
      anchor = entries[start].key;
    }
    const end = endOf(start);
    older.hidden = start === 0 && !t.hasOlder;
    olderButton.textContent = t.loadingOlder ? "Loading earlier messages…" : start ? `Earlier messages (${start})` : "Earlier messages";
    const wanted = new Set();
    let previous = older;
    if (list.firstChild !== older) list.prepend(older);
    for (let i = start; i < end; i += 1) {
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
      node.entrySort = entry.sort;
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
    newer.hidden = end >= entries.length;
    if (previous.nextSibling !== newer) list.insertBefore(newer, previous.nextSibling);
    previous = newer;
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
    /** The reader scrolled near the end of a window that stops short of the newest entry. */
    nearEnd() { if (!tail) showNewer(); },
    atTail: () => tail,
    /** Back to the newest entries (on opening and after a reconnect). */
    toTail() {
      tail = true;
      if (t.entries.length) anchor = t.entries[Math.max(0, t.entries.length - FIRST_WINDOW)].key;
    },
    unmount() {},
  };
}
