/**
 * Test-only pi extension: before the `read` tool runs, ask the operator a question (a pi
 * `select` dialog, which the Patchbay Pi adapter turns into a question elicitation).
 */
import type { ExtensionAPI } from "@mariozechner/pi-coding-agent";

export default function (pi: ExtensionAPI) {
	pi.on("tool_call", async (event, ctx) => {
		if (event.toolName !== "read") return undefined;
		const choice = await ctx.ui.select("Read this file?", ["read it", "skip it"]);
		if (choice === "read it") return undefined;
		return { block: true, reason: `Skipped: the operator chose ${choice ?? "nothing"}` };
	});
}
