// A small, safe Markdown renderer: it builds DOM nodes and sets text with text nodes only.
// Raw HTML in the source is shown as literal text, never parsed; links keep only http(s) and
// mailto targets and open with rel="noopener noreferrer". Supported: paragraphs, headings,
// fenced and indented code, block quotes, bullet and numbered lists, horizontal rules, and
// inline code, **strong**, *emphasis*, and [links](url).

import { h } from "./dom.js";

const FENCE = /^(`{3,}|~{3,})\s*([\w+-]*)\s*$/;
const HEADING = /^(#{1,6})\s+(.*)$/;
const BULLET = /^\s*[-*+]\s+(.*)$/;
const NUMBERED = /^\s*(\d{1,9})[.)]\s+(.*)$/;
const RULE = /^\s*([-*_])(\s*\1){2,}\s*$/;

/** Render markdown text into a DocumentFragment. */
export function renderMarkdown(text) {
  const out = document.createDocumentFragment();
  const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(FENCE);
    if (fence) {
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].startsWith(fence[1])) body.push(lines[i++]);
      i += 1;
      out.append(codeBlock(body.join("\n"), fence[2]));
      continue;
    }
    if (!line.trim()) { i += 1; continue; }
    const heading = line.match(HEADING);
    if (heading) {
      out.append(h(`h${Math.min(6, heading[1].length + 2)}`, { class: "md-h" }, inline(heading[2])));
      i += 1;
      continue;
    }
    if (RULE.test(line)) { out.append(h("hr")); i += 1; continue; }
    if (/^ {4}|\t/.test(line)) {
      const body = [];
      while (i < lines.length && (/^ {4}|\t/.test(lines[i]) || !lines[i].trim())) body.push(lines[i++].replace(/^ {4}|\t/, ""));
      out.append(codeBlock(body.join("\n").replace(/\n+$/, ""), ""));
      continue;
    }
    if (line.startsWith(">")) {
      const body = [];
      while (i < lines.length && lines[i].startsWith(">")) body.push(lines[i++].replace(/^>\s?/, ""));
      out.append(h("blockquote", {}, renderMarkdown(body.join("\n"))));
      continue;
    }
    if (BULLET.test(line) || NUMBERED.test(line)) {
      const numbered = NUMBERED.test(line);
      const pattern = numbered ? NUMBERED : BULLET;
      const list = h(numbered ? "ol" : "ul");
      while (i < lines.length && pattern.test(lines[i])) {
        const m = lines[i].match(pattern);
        list.append(h("li", {}, inline(numbered ? m[2] : m[1])));
        i += 1;
      }
      out.append(list);
      continue;
    }
    const para = [];
    while (i < lines.length && lines[i].trim() && !FENCE.test(lines[i]) && !HEADING.test(lines[i])
           && !BULLET.test(lines[i]) && !NUMBERED.test(lines[i]) && !lines[i].startsWith(">")) {
      para.push(lines[i++]);
    }
    const p = h("p");
    para.forEach((text, n) => { if (n) p.append(h("br")); p.append(inline(text)); });
    out.append(p);
  }
  return out;
}

function codeBlock(text, language) {
  return h("pre", { class: "md-code", tabindex: "0", "aria-label": language ? `${language} code` : "code" },
    h("code", {}, text));
}

const INLINE = /(`+)([\s\S]*?)\1|\*\*([^*]+)\*\*|__([^_]+)__|\*([^*\s][^*]*)\*|_([^_\s][^_]*)_|\[([^\]]+)\]\(([^)\s]+)\)/g;

/** Inline spans as a fragment of text nodes and elements. */
export function inline(text) {
  const out = document.createDocumentFragment();
  let last = 0;
  for (const m of String(text).matchAll(INLINE)) {
    if (m.index > last) out.append(document.createTextNode(text.slice(last, m.index)));
    if (m[1]) out.append(h("code", {}, m[2]));
    else if (m[3] || m[4]) out.append(h("strong", {}, inline(m[3] || m[4])));
    else if (m[5] || m[6]) out.append(h("em", {}, inline(m[5] || m[6])));
    else out.append(link(m[7], m[8]));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.append(document.createTextNode(text.slice(last)));
  return out;
}

function link(label, href) {
  let url = null;
  try {
    url = new URL(href, window.location.origin);
  } catch {
    url = null;
  }
  if (!url || !["http:", "https:", "mailto:"].includes(url.protocol)) return document.createTextNode(`${label} (${href})`);
  return h("a", { href: url.href, target: "_blank", rel: "noopener noreferrer" }, label);
}

/**
 * Markdown for text that grows (a streamed reply). The settled prefix — up to the last blank
 * line outside a code fence, or the last line break once the tail grows long — is rendered once
 * in chunks and kept; only the unsettled tail is re-rendered on each update, so a long stream
 * costs time proportional to what arrived, not to everything so far. Chunks end at blank lines
 * (exactly what `renderMarkdown` does), or — only inside a very long paragraph — at a line break,
 * which renders that paragraph as several. `finish` settles the tail the same way.
 */
export class StreamingMarkdown {
  constructor() {
    this.el = document.createElement("div");
    this.el.className = "md";
    this.stable = document.createElement("div");
    this.tail = document.createElement("div");
    this.el.append(this.stable, this.tail);
    this.settled = 0;
    this.fences = 0;
    this.done = false;
  }

  update(text) {
    if (this.done) return;
    const cut = this.settleUpTo(text);
    if (cut > this.settled) {
      this.stable.append(renderMarkdown(text.slice(this.settled, cut)));
      this.settled = cut;
    }
    this.tail.replaceChildren(renderMarkdown(text.slice(this.settled)));
  }

  finish(text) {
    this.done = true;
    if (this.settled === 0 || text.length < this.settled) {
      this.el.replaceChildren(renderMarkdown(text));
      return;
    }
    const cut = this.settleUpTo(text);
    if (cut > this.settled) this.stable.append(renderMarkdown(text.slice(this.settled, cut)));
    this.settled = Math.max(cut, this.settled);
    this.tail.replaceChildren(renderMarkdown(text.slice(this.settled)));
  }

  /** The end of the settled prefix: a boundary where the fences seen so far are balanced. */
  settleUpTo(text) {
    let cut = this.settled;
    let fences = this.fences;
    let i = this.settled;
    let lineStart = i;
    while (i < text.length) {
      const nl = text.indexOf("\n", i);
      if (nl < 0) break;
      const line = text.slice(lineStart, nl);
      if (FENCE.test(line)) fences += 1;
      const blank = text.charCodeAt(nl + 1) === 10;
      const longTail = nl - cut > 2048 && !/^\s*([-*+]|\d+[.)])\s/.test(text.slice(nl + 1, nl + 6));
      if (fences % 2 === 0 && (blank || longTail)) {
        cut = nl + 1;
        this.fences = fences;
      }
      i = nl + 1;
      lineStart = i;
    }
    return cut;
  }
}
