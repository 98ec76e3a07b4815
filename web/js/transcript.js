// One session's transcript: the session's journal events (observations, replies, activity and
// connectivity changes) merged with its commands and elicitations, in LSN order. Streamed text
// deltas of one command fold into a single growing entry; a tool call is one entry keyed by its
// id *within its turn* (the command it belongs to), so ids a runtime reuses in a later turn get
// their own row. A cancel or interrupt aimed at a command of this transcript is not an entry of
// its own: it is a line on the command it targets.

import { get } from "./api.js";
import { Said, bookkeepingLine, foldUsage, repairedEntry, slashCommands } from "./observations.js";
import { changed, putCommand, putElicitation, state } from "./store.js";

export const transcripts = new Map();

const TEXT_TYPES = new Set(["text_delta", "text", "assistant_delta", "message_delta", "assistant_text", "agent_message_chunk"]);
const THINKING_TYPES = new Set(["thinking_delta", "thinking", "agent_thought_chunk"]);
const TOOL_START = new Set(["tool_call", "tool_start", "tool_execution_start", "toolcall_start"]);
const TOOL_END = new Set(["tool_result", "tool_end", "tool_execution_end", "toolcall_end"]);
const TOOL_UPDATE = new Set(["tool_update", "tool_execution_update", "tool_call_update"]);
const QUIET = new Set(["agent_start", "turn_start", "turn_end"]);
const PAGE = 2000;

export function resetTranscripts() {
  transcripts.clear();
}

export function transcriptFor(target) {
  let t = transcripts.get(target);
  if (!t) {
    t = new Transcript(target);
    transcripts.set(target, t);
  }
  return t;
}

export function addEvent(target, event) {
  notePreview(target, event);
  const t = transcripts.get(target);
  if (t) t.add(event);
}

/** Per session, from the stream: the last message's text and time, and where messages began. */
export const previews = new Map();

function notePreview(target, event) {
  if (event.kind !== "session.observation" && event.kind !== "reply.recorded") return;
  const p = event.payload || {};
  const obs = event.kind === "reply.recorded" ? { type: "text", text: p.content && p.content.text } : p.observation || {};
  const type = String(obs.type || "");
  const text = textOf(obs);
  if (!text || !(TEXT_TYPES.has(type) || type === "assistant_message" || type === "output" || type === "user_message")) return;
  let entry = previews.get(target);
  if (!entry) { entry = { text: "", lsn: 0, ts: 0, command: undefined, starts: [] }; previews.set(target, entry); }
  const commandId = p.command_id || null;
  const continues = entry.command === commandId && entry.type === type && TEXT_TYPES.has(type);
  if (!continues && type !== "user_message") entry.starts = [...entry.starts.slice(-98), event.lsn];
  entry.text = continues && entry.text.length < 200 ? entry.text + text : type === "assistant_message" || !continues ? text : entry.text;
  if (type === "user_message") entry.text = `You: ${text}`;
  Object.assign(entry, { lsn: event.lsn, ts: event.ts || entry.ts, command: commandId, type });
  changed("previews");
}

/** The target command id of a cancel or interrupt, or null. */
export function aimedAt(command) {
  if (command.kind !== "cancel" && command.kind !== "interrupt") return null;
  return (command.payload && command.payload.command_id) || null;
}

class Transcript {
  constructor(target) {
    this.target = target;
    this.entries = [];
    this.byKey = new Map();
    this.tools = new Map(); // "turn id" -> entry key of the newest call with that id in that turn
    this.epoch = 0; // turns without a command id are told apart by agent_start / agent_end
    this.applied = 0; // highest session-entity LSN folded in
    this.loaded = false;
    this.loading = null;
    this.queue = [];
    this.dirty = new Set();
    this.error = null;
    this.caughtUp = 0; // counts completed loads: the view scrolls to the newest entry after each
    this.events = []; // what was folded, oldest first (folded again when older history arrives)
    this.hasOlder = false;
    this.oldest = null;
    this.loadingOlder = null;
    this.usage = null; // what usage observations said (the header prefers the session's own usage)
    this.slash = null; // the agent's slash commands, from available_commands_update
    this.said = new Said(); // what user echoes and complete messages said (for repair entries)
    this.echoes = new Map(); // command id -> the key of the runtime's echo of its message
  }

  load() {
    if (!this.loading) this.loading = this.fetchAll().finally(() => { this.loading = null; });
    return this.loading;
  }

  catchUp() {
    if (this.loaded) this.load();
  }

  async fetchAll() {
    try {
      if (!this.loaded) {
        // Open from the newest end: one page, older pages on demand (loadOlder). Without an
        // answer (offline: the service worker mirrors only the forward reads) walk forward.
        try {
          const answer = await get(`/api/sessions/${this.path()}/history?limit=${PAGE}`);
          this.hasOlder = answer.more;
          this.oldest = answer.events.length ? answer.events[0].lsn : null;
          for (const event of answer.events) this.fold(event);
        } catch (problem) {
          if (problem.status !== 0) throw problem;
        }
      }
      for (let page = 0; page < 100; page += 1) { // what happened since (after a reconnect or a snapshot)
        const answer = await get(`/api/sessions/${this.path()}/transcript?after=${this.applied}&limit=${PAGE}`);
        for (const event of answer.events) this.fold(event);
        if (answer.events.length < PAGE) break;
      }
      if (!this.loaded) {
        const [commands, elicitations] = await Promise.all([
          get(`/api/commands?target=${encodeURIComponent(this.target)}&limit=1000`),
          get("/api/elicitations"),
        ]);
        for (const c of commands.commands) putCommand(c);
        for (const e of elicitations.elicitations) if (e.target === this.target) putElicitation(e);
        this.touchAll();
      }
      this.loaded = true;
      this.error = null;
      const queued = this.queue;
      this.queue = [];
      for (const event of queued) this.fold(event);
      this.caughtUp += 1;
    } catch (problem) {
      this.error = problem.message;
    }
    changed(`transcript:${this.target}`);
  }

  path() {
    return this.target.split("/").map(encodeURIComponent).join("/");
  }

  touchAll() {
    for (const c of state.commands.values()) if (c.target === this.target) this.touchCommand(c);
    for (const e of state.elicitations.values()) if (e.target === this.target) this.touchElicitation(e);
  }

  /**
   * Fetch the page before the oldest loaded event and fold everything again, in order, into a
   * fresh transcript — in slices, so no task runs long — then take its entries over.
   */
  loadOlder() {
    if (!this.hasOlder || this.oldest === null) return Promise.resolve();
    if (!this.loadingOlder) {
      this.loadingOlder = this.refold().catch((problem) => { this.error = problem.message; })
        .finally(() => { this.loadingOlder = null; changed(`transcript:${this.target}`); });
    }
    return this.loadingOlder;
  }

  async refold() {
    const answer = await get(`/api/sessions/${this.path()}/history?before=${this.oldest}&limit=${PAGE}`);
    this.hasOlder = answer.more;
    if (!answer.events.length) return;
    const next = new Transcript(this.target);
    const events = [...answer.events, ...this.events];
    for (let i = 0; i < events.length; i += 250) {
      for (const event of events.slice(i, i + 250)) next.fold(event);
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    for (const event of this.events) next.fold(event); // what arrived meanwhile (older ones are skipped)
    next.touchAll();
    // Only an entry that now starts earlier (older events joined it) is drawn again.
    for (const [key, entry] of next.byKey) {
      const old = this.byKey.get(key);
      if (!old || old.sort !== entry.sort) this.dirty.add(key);
      else if (old.open) entry.open = old.open;
    }
    for (const key of ["entries", "byKey", "tools", "epoch", "applied", "events", "usage", "slash", "said", "echoes"]) this[key] = next[key];
    this.oldest = answer.events[0].lsn;
  }

  add(event) {
    if (!this.loaded || this.loading) {
      if (this.loading) this.queue.push(event);
      return;
    }
    this.fold(event);
  }

  fold(event) {
    if (event.lsn <= this.applied) return;
    this.applied = event.lsn;
    this.events.push(event);
    const p = event.payload || {};
    if (event.kind === "session.observation") this.observation(event, p.observation || {}, p.command_id || null);
    else if (event.kind === "reply.recorded") {
      const text = p.content && typeof p.content.text === "string" ? p.content.text : "";
      if (text) this.put({ key: `reply:${p.reply_id || event.lsn}`, sort: event.lsn, type: "assistant", text, command_id: p.correlates_id });
    } else if (event.kind === "session.superseded") {
      this.system(event, `The session was replaced (generation ${p.old_generation} → ${p.new_generation}); older commands no longer reach it.`);
    } else if (event.kind === "session.connectivity") {
      const words = { live: "The session is back", stale: "The session went quiet", offline: "The session went offline", failed: "The session failed", unknown: "The session's state is unknown" };
      this.system(event, `${words[p.connectivity] || `Connectivity: ${p.connectivity}`}${p.reason ? ` (${p.reason})` : ""}.`);
    }
    changed(`transcript:${this.target}`);
  }

  observation(event, obs, commandId) {
    const type = String(obs.type || "event");
    const last = this.entries[this.entries.length - 1];
    if (TEXT_TYPES.has(type) || THINKING_TYPES.has(type) || type === "output") {
      const kind = TEXT_TYPES.has(type) ? "assistant" : THINKING_TYPES.has(type) ? "thinking" : "output";
      const text = textOf(obs);
      if (last && last.type === kind && last.command_id === commandId && last.streaming) {
        last.text += text;
        this.dirty.add(last.key);
        return;
      }
      this.put({ key: `${kind}:${event.lsn}`, sort: event.lsn, type: kind, text, command_id: commandId, streaming: true });
      return;
    }
    if (type === "user_message" || type === "assistant_message") this.said.add(type === "user_message" ? "user" : "assistant", obs.text);
    if (type === "assistant_message") {
      // The complete text of a message whose deltas came before: it is authoritative.
      const open = this.openReply(commandId);
      if (open) {
        open.text = String(obs.text ?? open.text);
        open.streaming = false;
        this.dirty.add(open.key);
      } else if (obs.text) {
        this.put({ key: `assistant:${event.lsn}`, sort: event.lsn, type: "assistant", text: String(obs.text), command_id: commandId });
      }
      if (obs.error) this.system(event, `The agent reported an error: ${obs.error}`);
      return;
    }
    if (type === "agent_start") this.epoch += 1;
    if (QUIET.has(type)) return;
    if (type === "usage_update") { this.usage = foldUsage(this.usage, obs); changed(`session:${this.target}`); return; }
    if (type === "available_commands_update") { this.slash = slashCommands(obs.commands); changed(`slash:${this.target}`); return; }
    if (type === "entry") { this.repaired(event, obs); return; }
    if (type === "bash_output") { this.observation(event, { ...obs, type: "output" }, commandId); return; }
    if (last && last.streaming) { last.streaming = false; this.dirty.add(last.key); }
    if (TOOL_START.has(type) || TOOL_END.has(type) || TOOL_UPDATE.has(type)) {
      this.tool(event, obs, type, commandId);
      return;
    }
    if (type === "plan") {
      const key = `plan:${commandId || `epoch-${this.epoch}`}`;
      const entry = this.byKey.get(key) || { key, sort: event.lsn, type: "plan", command_id: commandId };
      entry.items = Array.isArray(obs.entries) ? obs.entries : Array.isArray(obs.items) ? obs.items : [];
      this.put(entry);
      return;
    }
    if (type === "user_message") {
      // The runtime's echo of a message; one sent through Patchbay already has its bubble.
      const known = commandId && state.commands.get(commandId);
      if (!(known && known.kind === "instruct")) { // its command may not be loaded yet: the row hides once it is
        this.put({ key: `user:${event.lsn}`, sort: event.lsn, type: "user", text: textOf(obs), images: imagesOf(obs), command_id: commandId });
        if (commandId) this.echoes.set(commandId, `user:${event.lsn}`);
      }
      return;
    }
    if (type === "agent_end") {
      this.epoch += 1;
      if (!obs.stop_reason || ["stop", "end_turn"].includes(obs.stop_reason)) return; // a turn's end is quiet
    }
    if (type === "queue" && !obs.follow_up && !obs.steering) return;
    const line = systemLine(type, obs);
    if (line) this.system(event, line);
  }

  /** Pi's repair entry: shown only when it is a message this transcript has not shown. */
  repaired(event, obs) {
    const known = (role, text) => this.said.has(role, text) || this.entries.slice(-400).some((e) => {
      const command = role === "user" && e.type === "command" ? state.commands.get(e.command_id) : null;
      const shown = e.type === role ? e.text : command && command.payload ? command.payload.text : null;
      if (typeof shown !== "string" || !shown.trim()) return false;
      return shown === text || shown.startsWith(text) || (role === "assistant" && text.startsWith(shown.trim()));
    });
    const entry = repairedEntry(obs, known);
    if (entry) this.put({ key: `${entry.type}:${event.lsn}`, sort: event.lsn, type: entry.type, text: entry.text });
  }

  openReply(commandId) {
    for (let i = this.entries.length - 1; i >= 0 && i >= this.entries.length - 50; i -= 1) {
      const e = this.entries[i];
      if (e.type === "assistant" && e.command_id === commandId && e.streaming) return e;
    }
    return null;
  }

  tool(event, obs, type, commandId) {
    const id = String(obs.tool_call_id ?? obs.toolCallId ?? obs.id ?? obs.call_id ?? `lsn-${event.lsn}`);
    const slot = `${commandId || `epoch-${this.epoch}`} ${id}`;
    let key = this.tools.get(slot) || `tool:${slot}`;
    let entry = this.byKey.get(key);
    if (entry && TOOL_START.has(type) && entry.status !== "running") { // the id reused after the call ended
      key = `tool:${slot}:${event.lsn}`;
      entry = null;
    }
    this.tools.set(slot, key);
    if (!entry) entry = { key, sort: event.lsn, type: "tool", call_id: id, name: "tool", status: "running", args: null, result: "", images: [], diffs: [], command_id: commandId };
    entry.name = String(obs.name || obs.tool || obs.title || obs.toolName || entry.name);
    const args = obs.args ?? obs.arguments ?? obs.input ?? obs.rawInput;
    if (args !== undefined && args !== null && args !== "") entry.args = parseArgs(args);
    const output = obs.result ?? obs.output ?? obs.text;
    if (output !== undefined && output !== null) entry.result = typeof output === "string" ? output : readable(output);
    const content = Array.isArray(obs.content) ? obs.content : [];
    for (const item of content) {
      const inner = item && item.type === "content" ? item.content : item;
      if (!inner) continue;
      if (inner.type === "diff") entry.diffs = [...entry.diffs.filter((d) => d.path !== inner.path), { path: String(inner.path || ""), old: String(inner.oldText ?? ""), new: String(inner.newText ?? "") }];
      else if (inner.type === "text" && typeof inner.text === "string" && !output) entry.result = inner.text;
    }
    entry.images = [...entry.images, ...imagesOf(obs)];
    if (TOOL_END.has(type) || obs.status === "completed" || obs.status === "failed") {
      entry.status = obs.is_error || obs.isError || obs.error || obs.status === "failed" ? "error" : "done";
    }
    this.put(entry);
  }

  system(event, text) {
    this.put({ key: `sys:${event.lsn}`, sort: event.lsn, type: "system", text });
  }

  touchCommand(view) {
    if (view.kind === "approval-response" || view.kind === "elicitation-response") return;
    const aimed = aimedAt(view);
    if (aimed && this.byKey.has(`cmd:${aimed}`)) {
      this.dirty.add(`cmd:${aimed}`); // a line on the command it targets
      changed(`transcript:${this.target}`);
      return;
    }
    const key = `cmd:${view.command_id}`;
    if (this.echoes.has(view.command_id)) this.dirty.add(this.echoes.get(view.command_id));
    if (!this.byKey.has(key)) {
      this.put({ key, sort: view.accepted_lsn ?? Number.MAX_SAFE_INTEGER, type: "command", command_id: view.command_id });
      for (const other of state.commands.values()) if (aimedAt(other) === view.command_id) this.dirty.add(key);
    } else {
      this.dirty.add(key);
    }
    if (view.terminal) {
      for (let i = this.entries.length - 1; i >= 0 && i >= this.entries.length - 200; i -= 1) {
        const e = this.entries[i];
        if (e.command_id === view.command_id && e.streaming) { e.streaming = false; this.dirty.add(e.key); }
      }
    }
    changed(`transcript:${this.target}`);
  }

  touchElicitation(view, lsn) {
    const key = `eli:${view.elicitation_id}`;
    if (!this.byKey.has(key)) {
      const command = view.command_id && state.commands.get(view.command_id);
      const sort = lsn ?? (command ? command.accepted_lsn + 0.5 : view.revision);
      this.put({ key, sort, type: "elicitation", elicitation_id: view.elicitation_id, command_id: view.command_id });
    } else {
      this.dirty.add(key);
    }
    changed(`transcript:${this.target}`);
  }

  /** Insert or refresh an entry, keeping LSN order. */
  put(entry) {
    this.dirty.add(entry.key);
    if (this.byKey.has(entry.key)) return;
    this.byKey.set(entry.key, entry);
    let i = this.entries.length;
    while (i > 0 && this.entries[i - 1].sort > entry.sort) i -= 1;
    this.entries.splice(i, 0, entry);
  }
}

function textOf(obs) {
  const value = obs.text ?? obs.delta ?? (obs.content && obs.content.text) ?? "";
  return typeof value === "string" ? value : "";
}

/** Tool arguments: an object when they are (or parse as) one, else the string. */
function parseArgs(args) {
  if (typeof args !== "string") return args;
  const s = args.trim();
  if (s.startsWith("{")) {
    try { return JSON.parse(s); } catch { return args; }
  }
  return args;
}

/** Structured tool output as readable text: strings joined, other values as indented JSON. */
function readable(value) {
  if (Array.isArray(value) && value.every((v) => v && typeof v.text === "string")) return value.map((v) => v.text).join("\n");
  if (value && typeof value === "object" && Array.isArray(value.content)) return readable(value.content.filter((v) => v && v.type === "text"));
  return JSON.stringify(value, null, 2);
}

const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

/** Inline images an observation carries ({data, mimeType} base64, as Pi and ACP send them). */
export function imagesOf(obs) {
  const found = [];
  const visit = (item) => {
    if (!item || typeof item !== "object") return;
    const inner = item.type === "content" && item.content ? item.content : item;
    const mime = inner.mimeType || inner.mime_type || inner.media_type;
    if (inner.type === "image" && typeof inner.data === "string" && IMAGE_TYPES.has(mime) && inner.data.length < 4_000_000) {
      found.push({ mime, data: inner.data });
    }
  };
  for (const list of [obs.images, obs.content, obs.result && obs.result.content]) if (Array.isArray(list)) list.forEach(visit);
  return found;
}

/** One plain line for an observation the transcript has no richer shape for (never raw JSON). */
function systemLine(type, obs) {
  if (type === "compaction") {
    const what = obs.phase === "start" ? "Compacting the context…" : obs.aborted ? "Compaction aborted" : "Context compacted";
    return `${what}${obs.summary ? `: ${obs.summary}` : ""}${obs.error ? ` (${obs.error})` : ""}`;
  }
  if (type === "queue") return `Waiting in the runtime: ${obs.follow_up ?? 0} follow-up, ${obs.steering ?? 0} steering`;
  if (type === "agent_end") return obs.stop_reason === "aborted" ? "The turn was stopped." : `The turn ended: ${obs.stop_reason}.`;
  if (type === "retry") return obs.phase === "end" ? "Retry finished." : `Retrying (attempt ${obs.attempt ?? "?"})${obs.error ? `: ${obs.error}` : ""}`;
  if (type === "error") return `Error${obs.source ? ` from ${obs.source}` : ""}: ${obs.text ?? ""}`;
  const bookkeeping = bookkeepingLine(type, obs);
  if (bookkeeping !== null) return bookkeeping;
  const text = [obs.text, obs.message, obs.summary].find((v) => typeof v === "string" && v);
  const name = type.replace(/_/g, " ");
  return text ? `${name[0].toUpperCase()}${name.slice(1)}: ${text.slice(0, 2000)}` : `${name[0].toUpperCase()}${name.slice(1)}.`;
}
