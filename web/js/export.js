// A session's own export (Pi's export_html) as a download: `query {"what": "export"}` is
// submitted like any command, and once it completes its result ({filename, media_type,
// encoding: "gzip+base64", data}) is decoded in the browser (DecompressionStream) and saved.

import { h } from "./dom.js";
import { state, subscribe } from "./store.js";
import { submit } from "./submit.js";
import { failureSentence } from "./labels.js";

const WAIT_MS = 130_000;

/** Whether the session declares the export (its manifest's features) and takes queries. */
export function offersExport(session) {
  const caps = session.capabilities || {};
  return (caps.features || []).includes("export_html") && (caps.kinds || []).includes("query");
}

function settled(commandId) {
  return new Promise((resolve) => {
    const done = () => {
      const view = state.commands.get(commandId);
      if (!view || !view.terminal) return false;
      stop();
      clearTimeout(timer);
      resolve(view);
      return true;
    };
    const stop = subscribe(() => done());
    const timer = setTimeout(() => { stop(); resolve(state.commands.get(commandId) || null); }, WAIT_MS);
    done();
  });
}

/** The exported file as a Blob; throws when the result is not one. */
export async function decodeExport(result) {
  if (!result || typeof result.data !== "string") throw new Error("the session returned no export");
  const bytes = Uint8Array.from(atob(result.data), (c) => c.charCodeAt(0));
  let blob = new Blob([bytes]);
  if (result.encoding === "gzip+base64") blob = await new Response(blob.stream().pipeThrough(new DecompressionStream("gzip"))).blob();
  return new Blob([blob], { type: result.media_type || "text/html" });
}

/** Submit the export, wait for it, download it; `say` gets one status sentence at each step. */
export async function downloadExport(session, say) {
  say("Asking the session for its transcript…");
  const answer = await submit("query", session.target, { what: "export" }, { generation: session.generation });
  if (answer.outcome !== "accepted") {
    say(`The export was not sent: ${(answer.record && answer.record.error) || answer.outcome}.`);
    return;
  }
  const view = await settled(answer.command.command_id);
  if (!view || !view.terminal) { say("No export came in time; it is still in the transcript as a command."); return; }
  if (view.state !== "completed") { say(`The export failed: ${view.reason || failureSentence(view) || view.state}.`); return; }
  try {
    const blob = await decodeExport(view.result);
    const url = URL.createObjectURL(blob);
    const name = String(view.result.filename || "transcript.html").replace(/[\\/]/g, "_");
    const link = h("a", { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    say(`Downloaded ${name} (${blob.size} bytes).`);
  } catch (problem) {
    say(`The export is damaged: ${problem.message}`);
  }
}
