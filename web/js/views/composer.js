// The composer: the exact identity a message goes to, the draft kept per session, Enter to send
// (Shift+Enter for a new line), while a turn runs the choice to queue or steer, and after a
// leading "/" the session's slash commands (slash.js).

import { h } from "../dom.js";
import { unavailableReason } from "../labels.js";
import { state } from "../store.js";
import { submit } from "../submit.js";
import { makeSlashList } from "./slash.js";

export function makeComposer(target) {
  const draftKey = `pb.draft.${target}`;
  const text = h("textarea", { id: "composer-text", rows: "1", "aria-describedby": "composer-target composer-help", placeholder: "Message…", enterkeyhint: "send" });
  text.value = localStorage.getItem(draftKey) || "";
  const targetLine = h("p", { class: "mono muted clip", id: "composer-target" });
  const modeQueue = h("input", { type: "radio", name: "mode", id: "mode-queue", value: "followUp", checked: true });
  const modeSteer = h("input", { type: "radio", name: "mode", id: "mode-steer", value: "steer" });
  const modes = h("fieldset", { class: "modes", hidden: true }, h("legend", {}, "A turn is running:"),
    h("label", { for: "mode-queue" }, modeQueue, " Queue as follow-up"),
    h("label", { for: "mode-steer" }, modeSteer, " Steer now"));
  const why = h("p", { class: "why", id: "composer-why" });
  const sendButton = h("button", { type: "submit", class: "primary", id: "send" }, "Send");
  const slash = makeSlashList(target, text);
  const form = h("form", { class: "composer", id: "composer", "aria-label": "Composer" },
    targetLine, modes,
    h("label", { for: "composer-text", class: "sr-only" }, "Message"),
    h("div", { class: "composer-row" }, text, sendButton), slash.el,
    h("p", { class: "muted small", id: "composer-help" }, "Enter sends · Shift+Enter for a new line · ? for shortcuts · drafts stay on this device"), why);
  text.addEventListener("input", () => {
    if (text.value) localStorage.setItem(draftKey, text.value);
    else localStorage.removeItem(draftKey);
    text.rows = Math.min(8, Math.max(1, text.value.split("\n").length));
    slash.update();
  });
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
    if (event.key === "ArrowDown" && slash.focusFirst()) event.preventDefault();
    if (event.key === "Escape" && !slash.hide()) text.blur();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = text.value;
    const s = state.sessions.get(target);
    if (!value.trim() || !s || sendButton.disabled) return;
    const payload = { text: value };
    if (!modes.hidden) payload.mode = modeSteer.checked ? "steer" : "followUp";
    text.value = "";
    text.rows = 1;
    slash.hide();
    localStorage.removeItem(draftKey);
    submit("instruct", target, payload, { generation: s.generation });
  });
  function refresh() {
    const s = state.sessions.get(target);
    if (!s) { sendButton.disabled = true; return; }
    targetLine.textContent = `To: ${s.adapter_id} · ${s.deployment_scope} · ${s.runtime_session_id} · generation ${s.generation}`;
    const caps = s.capabilities || {};
    modes.hidden = !(s.activity === "working" && s.connectivity === "live" && (caps.kinds || []).includes("instruct"));
    modeSteer.disabled = !caps.steer;
    modeSteer.parentElement.hidden = !caps.steer; // an adapter that cannot steer does not offer it
    if (modeSteer.disabled) modeQueue.checked = true;
    const reason = unavailableReason(s, state.lockdown);
    const blocked = state.lockdown.active || s.connectivity === "offline" || !(caps.kinds || []).includes("instruct");
    sendButton.disabled = blocked;
    why.textContent = blocked ? (reason || "This session does not take messages.") : s.connectivity !== "live" ? "The session is not live: the message is kept and delivered when it is back." : "";
  }
  return { el: form, refresh, refreshSlash: slash.refresh, focus: () => text.focus({ preventScroll: true }) };
}
