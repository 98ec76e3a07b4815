// Rich text comes from the core: `POST /api/render` runs markdown-it-py (raw HTML off), Pygments
// (classes only) and difflib, then nh3 with a small allowlist. This module batches what the
// screen needs into one request per frame, caches the answers, and inserts them through an inert
// DOMParser document (no script runs there, and the CSP forbids inline script anyway). Until the
// answer arrives the text is shown as plain text, so nothing waits on the network to be read.
// Code blocks get a language label and a Copy button here.

import { post } from "./api.js";
import { h } from "./dom.js";

const cache = new Map(); // item key -> sanitized HTML (insertion order: the oldest is dropped first)
const waiting = new Map(); // item key -> {item, els: Set}
const CACHE_MAX = 3000;
const BATCH_BYTES = 180_000;
let scheduled = false;
let inFlight = 0;

const keyOf = (item) => (typeof item.markdown === "string" ? `m${item.markdown}` : `d${JSON.stringify(item.diff)}`);

/**
 * Show `item` ({markdown} or {diff: {path, old, new}}) in `el`. With `keep`, what `el` shows now
 * stays until the rendered HTML replaces it (no flash of plain text for a finished stream).
 */
export function renderInto(el, item, { keep = false } = {}) {
  const key = keyOf(item);
  el.richKey = key;
  const html = cache.get(key);
  if (html !== undefined) {
    insert(el, html);
    return;
  }
  if (!keep || !el.firstChild) placeholder(el, item);
  let w = waiting.get(key);
  if (!w) { w = { item, els: new Set() }; waiting.set(key, w); }
  w.els.add(el);
  schedule();
}

function placeholder(el, item) {
  delete el.dataset.rendered;
  if (typeof item.markdown === "string") el.replaceChildren(h("div", { class: "md-plain" }, item.markdown));
  else el.replaceChildren(h("pre", { class: "md-code" }, `${item.diff.path}\n- ${item.diff.old}\n+ ${item.diff.new}`));
}

function schedule() {
  if (scheduled || inFlight >= 2) return;
  scheduled = true;
  requestAnimationFrame(flush);
}

async function flush() {
  scheduled = false;
  const batch = [];
  let bytes = 0;
  for (const [key, w] of waiting) {
    if (batch.length && (bytes + key.length > BATCH_BYTES || batch.length >= 200)) break;
    batch.push([key, w]);
    bytes += key.length;
  }
  if (!batch.length) return;
  for (const [key] of batch) waiting.delete(key);
  inFlight += 1;
  try {
    const { status, data } = await post("/api/render", { items: batch.map(([, w]) => w.item) });
    if (status === 200 && Array.isArray(data.html)) {
      batch.forEach(([key, w], n) => {
        remember(key, String(data.html[n] ?? ""));
        for (const el of w.els) if (el.richKey === key) insert(el, cache.get(key));
      });
    }
  } catch {
    // Left as plain text: readable, and rendered the next time this text is shown.
  } finally {
    inFlight -= 1;
    if (waiting.size) schedule();
  }
}

function remember(key, html) {
  cache.set(key, html);
  if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value);
}

function insert(el, html) {
  const doc = new DOMParser().parseFromString(`<!doctype html><body>${html}</body>`, "text/html");
  const fragment = document.createDocumentFragment();
  fragment.append(...doc.body.childNodes);
  for (const pre of fragment.querySelectorAll("pre.md-code")) decorate(pre);
  el.replaceChildren(fragment);
  el.dataset.rendered = "1";
}

/** A code block: scrolls in its box, named by its language, with a Copy button. */
function decorate(pre) {
  pre.tabIndex = 0;
  const lang = pre.dataset.lang || "";
  pre.setAttribute("aria-label", lang ? `${lang} code` : "code");
  const copy = copyButton(() => pre.textContent, lang ? `Copy the ${lang} code` : "Copy the code");
  const box = h("div", { class: "code-block" }, h("div", { class: "code-head" }, h("span", { class: "lang" }, lang || "text"), copy));
  pre.replaceWith(box);
  box.append(pre);
}

/** A Copy button for `text()` (clipboard API; says so when the browser refuses). */
export function copyButton(text, label) {
  const button = h("button", { type: "button", class: "copy", "aria-label": label }, "Copy");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text());
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
  return button;
}

/**
 * Markdown for text that grows (a streamed reply). The settled prefix — up to the last blank line
 * outside a code fence, or a line break once the tail grows long — is sent for rendering once, in
 * chunks; the unsettled tail is plain text, redone each frame. `finish` renders the whole text
 * once (keeping the chunks on screen until it arrives).
 */
export class StreamingMarkdown {
  constructor() {
    this.el = h("div", { class: "md" });
    this.stable = h("div");
    this.tail = h("div", { class: "md-plain" });
    this.el.append(this.stable, this.tail);
    this.settled = 0;
    this.fences = 0;
    this.done = false;
  }

  update(text) {
    if (this.done) return;
    const cut = this.settleUpTo(text);
    if (cut > this.settled) {
      const chunk = h("div");
      renderInto(chunk, { markdown: text.slice(this.settled, cut) });
      this.stable.append(chunk);
      this.settled = cut;
    }
    this.tail.textContent = text.slice(this.settled);
  }

  finish(text) {
    this.done = true;
    if (!this.settled) this.tail.textContent = text;
    renderInto(this.el, { markdown: text }, { keep: true });
  }

  /** The end of the settled prefix: a boundary where the fences seen so far are balanced. */
  settleUpTo(text) {
    let cut = this.settled;
    let fences = this.fences;
    let i = this.settled;
    while (i < text.length) {
      const nl = text.indexOf("\n", i);
      if (nl < 0) break;
      if (/^(`{3,}|~{3,})/.test(text.slice(i, nl))) fences += 1;
      const blank = text.charCodeAt(nl + 1) === 10;
      const longTail = nl - cut > 2048 && !/^\s*([-*+]|\d+[.)])\s/.test(text.slice(nl + 1, nl + 6));
      if (fences % 2 === 0 && (blank || longTail)) {
        cut = nl + 1;
        this.fences = fences;
      }
      i = nl + 1;
    }
    return cut;
  }
}
