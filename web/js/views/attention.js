// The global attention list: every pending approval or question across sessions, then the most
// recent commands that did not complete — each naming its session, with a link to it.

import { fill, h } from "../dom.js";
import { pendingElicitations, state } from "../store.js";
import { commandCard, elicitationCard, sessionLink } from "./cards.js";
import { pushPanel } from "../push.js";

export function mountAttention(main) {
  const waiting = h("div", { class: "stack", id: "attention-list" });
  const failed = h("div", { class: "stack", id: "failed-list" });
  fill(main, h("section", { class: "page", "aria-labelledby": "attention-title" },
    h("h1", { id: "attention-title" }, "Needs your attention"), pushPanel(),
    h("h2", {}, "Approvals and questions"), waiting,
    h("h2", {}, "Recent commands that did not complete"), failed));
  function render() {
    const pending = pendingElicitations().sort((a, b) => a.opened_ts - b.opened_ts);
    fill(waiting, pending.length ? pending.map((e) => elicitationCard(e, { showSession: true })) : h("p", { class: "muted" }, "Nothing is waiting for you."));
    const bad = [...state.commands.values()]
      .filter((c) => c.terminal && ["failed", "rejected", "expired"].includes(c.state))
      .sort((a, b) => b.accepted_lsn - a.accepted_lsn).slice(0, 10);
    fill(failed, bad.length ? bad.map((c) => h("div", { class: "attention-item" }, sessionLink(c.target), commandCard(c))) : h("p", { class: "muted" }, "None."));
  }
  render();
  return { update(tags) { if (tags.has("elicitations") || tags.has("commands") || tags.has("sessions")) render(); }, unmount() {} };
}
