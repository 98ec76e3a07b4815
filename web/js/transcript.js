// One session's transcript: the session's journal events (observations, replies, activity and
// connectivity changes) merged with its commands and elicitations, in LSN order. Streamed
// text deltas of one command are folded into a single growing entry, so 5,000 deltas are one
// entry that the view re-renders at most once per frame.

import { get } from "./api.js";
import { changed, putCommand, putElicitation, state } from "./store.js";

export const transcripts = new Map();

const TEXT_TYPES = new Set(["text_delta", "text", "assistant_delta", "message_delta", "assistant_text"]);
const THINKING_TYPES = new Set(["thinking_delta", "thinking"]);
const TOOL_START = new Set(["tool_call", "tool_start", "tool_execution_start", "toolcall_start"]);
const TOOL_END = new Set(["tool_result", "tool_end", "tool_execution_end", "toolcall_end"]);
const TOOL_UPDATE = new Set(["tool_update", "tool_execution_update"]);
const QUIET = new Set(["agent_start", "turn_start", "turn_end"]); // activity already says this
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
  const t = transcripts.get(target);
  if (t) t.add(event);
}

class Transcript {
  constructor(target) {
    this.target = target;
    this.entries = [];
    this.byKey = new Map();
    this.applied = 0; // highest session-entity LSN folded in
    this.loaded = false;
    this.loading = null;
    this.queue = [];
    this.dirty = new Set();
    this.error = null;
  }

  load() {
    if (!this.loading) this.loading = this.fetchAll().finally(() => { this.loading = null; });
    return this.loading;
  }

  catchUp() {
    if (this.loaded) this.load();
  }

  async fetchAll() {
    const path = this.target.split("/").map(encodeURIComponent).join("/");
    try {
      for (let page = 0; page < 50; page += 1) {
        const answer = await get(`/api/sessions/${path}/transcript?after=${this.applied}&limit=${PAGE}`);
        for (const event of answer.events) this.fold(event);
        if (answer.events.length < PAGE) break;
      }
      if (!this.loaded) {
        const [commands, elicitations] = await Promise.all([
          get(`/api/commands?target=${encodeURIComponent(this.target)}&limit=200`),
          get("/api/elicitations"),
        ]);
        for (const c of commands.commands) putCommand(c);
        for (const e of elicitations.elicitations) if (e.target === this.target) putElicitation(e);
        for (const c of state.commands.values()) if (c.target === this.target) this.touchCommand(c);
        for (const e of state.elicitations.values()) if (e.target === this.target) this.touchElicitation(e);
      }
      this.loaded = true;
      this.error = null;
      const queued = this.queue;
      this.queue = [];
      for (const event of queued) this.fold(event);
    } catch (problem) {
      this.error = problem.message;
    }
    changed(`transcript:${this.target}`);
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
    const p = event.payload || {};
    if (event.kind === "session.observation") this.observation(event, p.observation || {}, p.command_id || null);
    else if (event.kind === "reply.recorded") {
      const text = p.content && typeof p.content.text === "string" ? p.content.text : JSON.stringify(p.content ?? "");
      this.put({ key: `reply:${p.reply_id || event.lsn}`, sort: event.lsn, type: "assistant", text, command_id: p.correlates_id });
    } else if (event.kind === "session.superseded") {
      this.system(event, `Session replaced: generation ${p.old_generation} → ${p.new_generation}. Older commands no longer reach it.`);
    } else if (event.kind === "session.connectivity") {
      this.system(event, `Connectivity: ${p.connectivity}${p.reason ? ` — ${p.reason}` : ""}`);
    } else if (event.kind === "session.stale_event") {
      this.system(event, `Ignored a late event from generation ${p.generation}.`);
    }
    changed(`transcript:${this.target}`);
  }

  observation(event, obs, commandId) {
    const type = String(obs.type || "event");
    const last = this.entries[this.entries.length - 1];
    if (TEXT_TYPES.has(type) || THINKING_TYPES.has(type) || type === "output") {
      const kind = TEXT_TYPES.has(type) ? "assistant" : THINKING_TYPES.has(type) ? "thinking" : "output";
      const text = String(obs.text ?? obs.delta ?? "");
      if (last && last.type === kind && last.command_id === commandId && last.streaming) {
        last.text += text;
        this.dirty.add(last.key);
        return;
      }
      this.put({ key: `${kind}:${event.lsn}`, sort: event.lsn, type: kind, text, command_id: commandId, streaming: true });
      return;
    }
    if (type === "assistant_message") {
      // The complete text of a message whose deltas came before: it is authoritative.
      const open = [...this.entries].reverse().find((e) => e.type === "assistant" && e.command_id === commandId && e.streaming);
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
    if (QUIET.has(type)) return;
    if (last && last.streaming) { last.streaming = false; this.dirty.add(last.key); }
    if (TOOL_START.has(type) || TOOL_END.has(type) || TOOL_UPDATE.has(type)) {
      const id = String(obs.tool_call_id ?? obs.id ?? obs.call_id ?? `lsn-${event.lsn}`);
      const key = `tool:${id}`;
      const entry = this.byKey.get(key) || { key, sort: event.lsn, type: "tool", name: obs.name || obs.tool || "tool", status: "running", args: "", result: "", command_id: commandId };
      if (TOOL_START.has(type)) {
        entry.name = obs.name || obs.tool || entry.name;
        entry.args = typeof obs.args === "string" ? obs.args : JSON.stringify(obs.args ?? obs.arguments ?? obs.input ?? "", null, 1);
      } else if (TOOL_UPDATE.has(type)) {
        const partial = obs.output ?? obs.text ?? "";
        entry.result = typeof partial === "string" ? partial : JSON.stringify(partial, null, 1);
      } else {
        entry.status = obs.is_error || obs.isError || obs.error ? "error" : "done";
        const result = obs.result ?? obs.output ?? obs.text ?? "";
        entry.result = typeof result === "string" ? result : JSON.stringify(result, null, 1);
      }
      this.put(entry);
      return;
    }
    if (type === "user_message") {
      // The runtime's echo of a message; one sent through Patchbay already has its card.
      const known = commandId && state.commands.get(commandId);
      if (!(known && known.kind === "instruct")) this.put({ key: `user:${event.lsn}`, sort: event.lsn, type: "user", text: String(obs.text ?? "") });
      return;
    }
    this.system(event, systemLine(type, obs));
  }

  system(event, text) {
    this.put({ key: `sys:${event.lsn}`, sort: event.lsn, type: "system", text });
  }

  touchCommand(view) {
    const key = `cmd:${view.command_id}`;
    if (!this.byKey.has(key) && view.kind !== "approval-response" && view.kind !== "elicitation-response") {
      this.put({ key, sort: view.accepted_lsn ?? Number.MAX_SAFE_INTEGER, type: "command", command_id: view.command_id });
    } else {
      this.dirty.add(key);
    }
    const aimed = view.payload && view.payload.command_id; // a cancel's outcome explains its target's card
    if (aimed && this.byKey.has(`cmd:${aimed}`)) this.dirty.add(`cmd:${aimed}`);
    if (view.terminal) {
      for (const e of this.entries) {
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
      this.put({ key, sort, type: "elicitation", elicitation_id: view.elicitation_id });
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
    entry.index = i;
  }
}

/** One plain line for an observation the transcript has no richer shape for. */
function systemLine(type, obs) {
  if (type === "compaction") {
    const what = obs.phase === "start" ? "Compacting the context…" : obs.aborted ? "Compaction aborted" : "Context compacted";
    return `${what}${obs.summary ? `: ${obs.summary}` : ""}${obs.error ? ` (${obs.error})` : ""}`;
  }
  if (type === "queue") return `Queued in the runtime: ${obs.follow_up ?? 0} follow-up, ${obs.steering ?? 0} steering`;
  if (type === "agent_end") return `Turn ended${obs.stop_reason && obs.stop_reason !== "stop" ? `: ${obs.stop_reason}` : ""}`;
  if (type === "retry") return `Retrying (attempt ${obs.attempt ?? "?"})${obs.error ? `: ${obs.error}` : ""}`;
  if (type === "error") return `Error${obs.source ? ` (${obs.source})` : ""}: ${obs.text ?? ""}`;
  const text = obs.text ?? obs.message ?? obs.summary ?? JSON.stringify(obs);
  return `${type}: ${String(text).slice(0, 2000)}`;
}
