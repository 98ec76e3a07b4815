// The composer's slash commands: typing "/" at the start of an empty message lists what the
// session offers — ACP's available_commands_update (and metadata.commands), Pi's get_commands
// (asked once, as a `query {"what": "commands"}`, the first time "/" is typed). Picking one
// puts "/name " in the message; nothing is sent until the operator sends it.

import { h } from "../dom.js";
import { slashCommands } from "../observations.js";
import { state } from "../store.js";
import { submit } from "../submit.js";
import { transcripts } from "../transcript.js";

const asked = new Set(); // targets whose Pi commands were asked for in this page

/** The session's slash commands, newest source first, one per name. */
export function commandsFor(target) {
  const s = state.sessions.get(target);
  const t = transcripts.get(target);
  let reported = [];
  for (const c of state.commands.values()) {
    if (c.target === target && c.kind === "query" && c.payload && c.payload.what === "commands" && c.state === "completed"
      && c.result && Array.isArray(c.result.commands)) reported = c.result.commands;
  }
  const all = [...slashCommands(t && t.slash), ...slashCommands(reported), ...slashCommands(s && s.metadata && s.metadata.commands)];
  const seen = new Map();
  for (const c of all) if (!seen.has(c.name) || (!seen.get(c.name).description && c.description)) seen.set(c.name, c);
  return [...seen.values()];
}

function askPi(target) {
  const s = state.sessions.get(target);
  const caps = (s && s.capabilities) || {};
  if (asked.has(target) || !(caps.features || []).includes("get_commands") || !(caps.kinds || []).includes("query")) return;
  asked.add(target);
  submit("query", target, { what: "commands" }, { generation: s.generation });
}

export function makeSlashList(target, text) {
  const list = h("ul", { class: "slash-list", id: "slash-list", "aria-label": "Slash commands", hidden: true });
  const note = h("p", { class: "muted small slash-note", hidden: true });
  const el = h("div", { class: "slash" }, list, note);
  function pick(name) {
    text.value = `/${name} `;
    text.dispatchEvent(new Event("input"));
    text.focus();
  }
  function refresh() {
    const m = /^\/(\S*)$/.exec(text.value);
    if (!m) { hide(); return; }
    askPi(target);
    const prefix = m[1].toLowerCase();
    const found = commandsFor(target).filter((c) => c.name.toLowerCase().startsWith(prefix)).slice(0, 30);
    list.replaceChildren(...found.map((c) => h("li", {}, h("button", { type: "button", class: "slash-item", onclick: () => pick(c.name) },
      h("span", { class: "mono" }, `/${c.name}`), c.description ? h("span", { class: "muted small" }, ` ${c.description}`) : null))));
    list.hidden = !found.length;
    note.hidden = !!found.length;
    note.textContent = found.length ? "" : prefix ? `No slash command starts with /${prefix}.` : "This session reports no slash commands.";
  }
  function hide() {
    const shown = !list.hidden || !note.hidden;
    list.hidden = true;
    note.hidden = true;
    return shown;
  }
  list.addEventListener("keydown", (event) => {
    const items = [...list.querySelectorAll("button")];
    const at = items.indexOf(document.activeElement);
    if (event.key === "ArrowDown" && at < items.length - 1) { items[at + 1].focus(); event.preventDefault(); }
    if (event.key === "ArrowUp") { (at > 0 ? items[at - 1] : text).focus(); event.preventDefault(); }
    if (event.key === "Escape") { hide(); text.focus(); }
  });
  return {
    el, refresh: () => { if (!list.hidden || !note.hidden) refresh(); }, hide,
    focusFirst: () => { const first = list.hidden ? null : list.querySelector("button"); if (first) first.focus(); return !!first; },
    update: refresh,
  };
}
