// Plain words for the adapters' bookkeeping observations (ACP and Pi): reconnects, notices,
// refused or written files, unknown agent updates, mode changes; the usage they report; and
// which of Pi's repair `entry` observations add something the transcript has not shown.

const FS = { "fs/read_text_file": "read", "fs/write_text_file": "write" };

/** One sentence for an observation, "" for none (quiet), or null: not one of these. */
export function bookkeepingLine(type, obs) {
  if (type === "resync") {
    const count = Number.isInteger(obs.message_count) ? ` (${obs.message_count} messages)` : "";
    if (obs.resumed) return `Reconnected: the agent resumed its session${count}.`;
    return obs.replaced ? `Reconnected to a new runtime session${count}.` : `Connected to the runtime${count}.`;
  }
  if (type === "notice") { // the runtime's own words, as they came
    const text = String(obs.text ?? "").trim() || "The runtime sent a notice.";
    return obs.level === "warning" || obs.level === "error" ? `Warning: ${text}` : text;
  }
  if (type === "fs_refused") {
    return `The agent was refused a file ${FS[obs.method] || "access"} of ${obs.path || "a path"}${obs.reason ? `: ${obs.reason}` : ""}.`;
  }
  if (type === "fs_write") return `The agent wrote ${obs.path || "a file"}.`;
  if (type === "agent_update") return `The agent sent an update this cockpit does not show (${String(obs.update || "unnamed").replace(/_/g, " ")}).`;
  if (type === "current_mode_update") return obs.mode_id ? `The agent switched to ${obs.mode_id} mode.` : "";
  if (type === "agent_settled") return obs.aborted ? "The run was stopped." : "";
  return null;
}

/** Fold a usage observation into `usage` (the transcript's own, for adapters without metadata). */
export function foldUsage(usage, obs) {
  const next = { ...(usage || {}) };
  if (obs.scope === "turn" && obs.tokens) {
    const t = obs.tokens;
    next.tokens = { input: t.inputTokens ?? t.input, output: t.outputTokens ?? t.output,
      cache_read: t.cachedReadTokens ?? t.cache_read, cache_write: t.cachedWriteTokens ?? t.cache_write };
    next.last_turn = true; // ACP reports a turn's tokens, not the session's
  } else {
    if (Number.isFinite(obs.used)) next.context = { tokens: obs.used, window: Number.isFinite(obs.size) ? obs.size : null };
    if (obs.cost && Number.isFinite(obs.cost.amount)) Object.assign(next, { cost: obs.cost.amount, currency: obs.cost.currency });
  }
  return next;
}

function count(n) {
  if (!Number.isFinite(n)) return null;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${Math.round(n / 1e3)}k`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** The header's compact usage line ("1.2k in · 340 out · 5.0k cached · $0.04 · 12% of context"), or "". */
export function usageLine(usage) {
  if (!usage || typeof usage !== "object") return "";
  const t = usage.tokens || {};
  const parts = [];
  if (count(t.input)) parts.push(`${count(t.input)} in`);
  if (count(t.output)) parts.push(`${count(t.output)} out`);
  const cached = (Number(t.cache_read) || 0) + (Number(t.cache_write) || 0);
  if (cached) parts.push(`${count(cached)} cached`);
  if (usage.last_turn && parts.length) parts[parts.length - 1] += " (last turn)";
  if (Number.isFinite(usage.cost)) {
    const currency = usage.currency && usage.currency !== "USD" ? ` ${usage.currency}` : "";
    parts.push(`${currency ? "" : "$"}${usage.cost.toFixed(usage.cost < 1 ? 3 : 2)}${currency}`);
  }
  const c = usage.context;
  if (c && Number.isFinite(c.percent)) parts.push(`${Math.round(c.percent)}% of context`);
  else if (c && Number.isFinite(c.tokens) && Number.isFinite(c.window) && c.window > 0) parts.push(`${Math.round((100 * c.tokens) / c.window)}% of context`);
  else if (c && Number.isFinite(c.tokens)) parts.push(`${count(c.tokens)} context`);
  return parts.join(" · ");
}

/**
 * Pi's repair `entry` observation as an entry shape ({type, text}) when it is a message the
 * transcript has not shown (`known(role, text)` says whether it has); null otherwise.
 */
export function repairedEntry(obs, known) {
  if (obs.entry_type !== "message" || typeof obs.text !== "string" || !obs.text.trim()) return null;
  if (obs.role !== "user" && obs.role !== "assistant") return null;
  return known(obs.role, obs.text) ? null : { type: obs.role, text: obs.text };
}

/**
 * The messages a transcript's events said (user echoes, complete assistant messages), by role
 * and the head of their text: a repair entry repeating one of them adds nothing, even when the
 * command bubble it echoes is not loaded yet. Bounded: the oldest are forgotten first.
 */
export class Said {
  constructor(limit = 5000) { this.keys = new Set(); this.limit = limit; }

  static key(role, text) { return `${role}\n${String(text).trim().slice(0, 1000)}`; }

  add(role, text) {
    if (typeof text !== "string" || !text.trim()) return;
    this.keys.add(Said.key(role, text));
    if (this.keys.size > this.limit) this.keys.delete(this.keys.values().next().value);
  }

  has(role, text) { return this.keys.has(Said.key(role, text)); }
}

/** Slash commands ({name, description}) from a list of names or of objects, names without "/". */
export function slashCommands(list) {
  if (!Array.isArray(list)) return [];
  return list.map((c) => (typeof c === "string" ? { name: c, description: "" } : { name: String(c && c.name || ""), description: String(c && c.description || "") }))
    .map((c) => ({ ...c, name: c.name.replace(/^\//, "") })).filter((c) => c.name);
}
