// How each kind of transcript entry looks: the agent's reply (markdown), collapsed thinking, a
// command's output, tool calls as compact rows (name, one-line summary, state) that open to
// their arguments and output, diffs of edit and write tools, images, plans as checklists, the
// user's messages from other surfaces and quiet system lines.

import { h } from "../dom.js";
import { renderInto, StreamingMarkdown } from "../markdown.js";
import { state } from "../store.js";
import { images } from "./cards.js";

const TOOL_WORD = { running: "running", done: "done", error: "failed" };
const TOOL_ICON = { running: "▶", done: "✓", error: "✕" };
const PLAN_ICON = { completed: "☑", in_progress: "◐", pending: "☐" };
const PLAN_WORD = { completed: "done", in_progress: "in progress", pending: "to do" };

/** A node for an entry; `grow` gets the incremental renderer of an entry that can grow. */
export function entryNode(entry, grow) {
  if (entry.type === "assistant") {
    const md = new StreamingMarkdown();
    md.el.setAttribute("aria-label", "Agent");
    if (entry.streaming) md.update(entry.text);
    else md.finish(entry.text);
    grow({ md, length: entry.text.length });
    return h("li", { class: "entry assistant", dataset: { commandId: entry.command_id || "" } }, md.el);
  }
  if (entry.type === "output") {
    const pre = h("pre", { class: "stream", tabindex: "0", "aria-label": "Output" }, entry.text);
    grow({ pre, length: entry.text.length });
    return pre;
  }
  if (entry.type === "thinking") {
    return h("li", { class: "entry thinking" }, h("details", {}, h("summary", {}, "Thinking"), h("p", { class: "muted" }, entry.text)));
  }
  if (entry.type === "tool") return toolRow(entry);
  if (entry.type === "plan") return plan(entry);
  if (entry.type === "user" && entry.command_id && (state.commands.get(entry.command_id) || {}).kind === "instruct") {
    return h("li", { class: "entry user echo", hidden: true }); // the runtime's echo of a message with its own bubble
  }
  if (entry.type === "user") return h("li", { class: "entry user" }, h("div", { class: "user-text" }, entry.text, images(entry.images)));
  return h("li", { class: "entry system" }, entry.text);
}

function toolRow(entry) {
  const args = entry.args;
  const summary = oneLine(entry.name, args);
  const details = h("details", { open: !!entry.open },
    h("summary", {},
      h("span", { class: `tool-icon tone-${entry.status === "error" ? "bad" : entry.status === "done" ? "ok" : "busy"}`, "aria-hidden": "true" }, TOOL_ICON[entry.status]),
      h("span", { class: "tool-name" }, entry.name),
      summary ? h("span", { class: "tool-summary mono" }, summary) : null,
      h("span", { class: "tool-state" }, TOOL_WORD[entry.status])),
    argsView(args),
    entry.result ? h("pre", { class: "md-code tool-output", tabindex: "0", "aria-label": "Tool output" }, entry.result) : null);
  details.addEventListener("toggle", () => { entry.open = details.open; });
  const diffs = [...entry.diffs, ...diffsFromArgs(entry.name, args)];
  return h("li", { class: `entry tool tool-${entry.status}`, dataset: { callId: entry.call_id, commandId: entry.command_id || "" } },
    details,
    diffs.map((d) => { const box = h("div", { class: "diff-box" }); renderInto(box, { diff: d }); return box; }),
    images(entry.images));
}

/** The one-line summary of a call: a shell command, a path, or the first short argument. */
function oneLine(name, args) {
  if (typeof args === "string") return args.split("\n")[0].slice(0, 120);
  if (!args || typeof args !== "object") return "";
  const pick = args.command ?? args.cmd ?? args.path ?? args.file_path ?? args.filePath ?? args.pattern ?? args.url ?? args.query;
  const value = pick ?? Object.values(args).find((v) => typeof v === "string");
  return typeof value === "string" ? value.split("\n")[0].slice(0, 120) : "";
}

function argsView(args) {
  if (args === null || args === undefined) return null;
  if (typeof args === "string") return h("pre", { class: "md-code tool-args", tabindex: "0", "aria-label": "Arguments" }, args);
  const rows = Object.entries(args).map(([name, value]) => [h("dt", {}, name),
    h("dd", {}, typeof value === "string" ? (value.includes("\n") ? h("pre", { class: "md-code" }, value) : h("code", {}, value)) : h("code", {}, JSON.stringify(value)))]);
  return rows.length ? h("dl", { class: "tool-args" }, rows) : null;
}

/** Diffs an edit or write call describes in its arguments (Pi: path with oldText/newText or edits). */
export function diffsFromArgs(name, args) {
  if (!args || typeof args !== "object") return [];
  const path = String(args.path ?? args.file_path ?? args.filePath ?? "");
  const pair = (o) => {
    const old = o.oldText ?? o.old_string ?? o.old_str ?? o.oldString;
    const next = o.newText ?? o.new_string ?? o.new_str ?? o.newString;
    return typeof old === "string" && typeof next === "string" ? { path, old, new: next } : null;
  };
  if (Array.isArray(args.edits)) return args.edits.map(pair).filter(Boolean);
  const one = pair(args);
  if (one) return [one];
  if (/write|create/i.test(name) && typeof args.content === "string") return [{ path, old: "", new: args.content }];
  return [];
}

function plan(entry) {
  const items = entry.items || [];
  const done = items.filter((i) => i.status === "completed").length;
  return h("li", { class: "entry plan" },
    h("p", { class: "plan-head" }, `Plan · ${done} of ${items.length} done`),
    h("ul", { class: "checklist" }, items.map((item) => {
      const status = PLAN_ICON[item.status] ? item.status : "pending";
      return h("li", { class: `plan-${status}` },
        h("span", { class: "check", "aria-hidden": "true" }, PLAN_ICON[status]),
        h("span", { class: "sr-only" }, `${PLAN_WORD[status]}: `),
        String(item.content ?? item.title ?? item.text ?? ""));
    })));
}
