// The outbox's words on a local submission card: whether a waiting message goes by itself and
// until when (its validity window, changeable per message), or why it no longer does.

import { h } from "./dom.js";
import { isWaiting, pastWindow, setWindow, validUntil } from "./submit.js";

const WINDOWS = [[5, "5 minutes"], [15, "15 minutes"], [60, "1 hour"], [240, "4 hours"], [1440, "24 hours"]];

const hhmm = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit" });

export function outboxNote(record) {
  if (!isWaiting(record)) return null;
  const minutes = Math.round(record.window_ms / 60000);
  const id = `window-${record.command_id}`;
  const choices = WINDOWS.some(([m]) => m === minutes) ? WINDOWS : [[minutes, `${minutes} minutes`], ...WINDOWS];
  const select = h("select", { id, class: "small", onchange: (event) => setWindow(record.command_id, Number(event.target.value) * 60000) },
    choices.map(([m, words]) => h("option", { value: String(m), selected: m === minutes }, words)));
  if (pastWindow(record)) {
    return h("div", { class: "outbox-note outbox-expired", dataset: { outbox: "expired" } },
      h("p", {}, h("strong", {}, "Not sent by itself any more: "),
        `its ${minutes}-minute window closed at ${hhmm(validUntil(record))}. Send it with the button below (same command id), or discard it.`),
      h("label", { for: id }, "Send by itself within "), select);
  }
  return h("div", { class: "outbox-note", dataset: { outbox: "waiting" } },
    h("p", {}, h("strong", {}, "Waiting to send: "),
      `kept on this device and sent by itself, with the same command id, as soon as the core answers — until ${hhmm(validUntil(record))}.`),
    h("label", { for: id }, "Send by itself within "), select);
}
