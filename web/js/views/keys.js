// Keyboard shortcuts (desktop). None fires while typing in a field, except Escape. `?` lists them.

import { h } from "../dom.js";

export const SHORTCUTS = [
  ["/", "Write a message (in a session) or search (in the list)"],
  ["Esc", "Leave the message box; close this list"],
  ["Enter / Shift+Enter", "Send / new line (in the message box)"],
  ["j / k", "Next / previous session"],
  ["g s / g a", "Go to Sessions / Attention"],
  ["End", "Jump to the newest entry"],
  ["?", "Show these shortcuts"],
];

let dialog = null;
let pendingG = false;

export function installShortcuts() {
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = event.target instanceof HTMLElement && event.target.closest("input, textarea, select, [contenteditable]");
    if (typing) return;
    const key = event.key;
    if (pendingG) {
      pendingG = false;
      if (key === "s") { location.hash = "#/sessions"; event.preventDefault(); }
      if (key === "a") { location.hash = "#/attention"; event.preventDefault(); }
      return;
    }
    if (key === "g") { pendingG = true; return; }
    if (key === "/") {
      const field = document.getElementById("composer-text") || document.getElementById("session-search");
      if (field) { field.focus(); event.preventDefault(); }
    } else if (key === "?") {
      showHelp();
      event.preventDefault();
    } else if (key === "j" || key === "k") {
      move(key === "j" ? 1 : -1);
      event.preventDefault();
    } else if (key === "End") {
      window.scrollTo(0, document.documentElement.scrollHeight);
    }
  });
}

function move(step) {
  const links = [...document.querySelectorAll("#side-list .session-link, #session-list .session-link")];
  if (!links.length) return;
  const at = links.findIndex((a) => a.getAttribute("aria-current") === "page" || a === document.activeElement);
  const next = links[Math.min(links.length - 1, Math.max(0, at + step))];
  if (!document.getElementById("side-list")) { next.focus(); return; }
  if (next.getAttribute("aria-current") === "page") return; // at either end: no route, nothing to refocus
  // The session opened focuses its message box (in a frame after the route): keep the focus on
  // the list instead, so j / k go on moving; `/` goes to the message box.
  window.addEventListener("hashchange", () => requestAnimationFrame(() => {
    document.querySelector('#side-list .session-link[aria-current="page"]')?.focus({ preventScroll: true });
  }), { once: true });
  location.hash = next.getAttribute("href");
}

function showHelp() {
  if (!dialog) {
    const close = h("button", { type: "button", class: "primary" }, "Close");
    dialog = h("dialog", { class: "shortcuts", "aria-labelledby": "shortcuts-title" },
      h("h2", { id: "shortcuts-title" }, "Keyboard shortcuts"),
      h("dl", {}, SHORTCUTS.map(([k, what]) => [h("dt", {}, h("kbd", {}, k)), h("dd", {}, what)])), close);
    close.addEventListener("click", () => dialog.close());
    document.body.append(dialog);
  }
  if (!dialog.open) dialog.showModal();
}
