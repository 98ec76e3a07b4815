/**
 * Test-only pi extension: before the `read` tool runs, ask the operator a question (a pi
 * `select` dialog, which the Patchbay Pi adapter turns into a question elicitation); and a
 * `/ping` command that pi handles without an agent run.
 */
import type { ExtensionAPI } from "@mariozechner/pi-coding-agent";

export default function (pi: ExtensionAPI) {
	pi.registerCommand("ping", {
		description: "Answer with a notification, without a model call",
		handler: async (_args, ctx) => {
			ctx.ui.notify("pong", "info");
		},
	});
	pi.on("tool_call", async (event, ctx) => {
		if (event.toolName !== "read") return undefined;
		const choice = await ctx.ui.select("Read this file?", ["read it", "skip it"]);
		if (choice === "read it") return undefined;
		return { block: true, reason: `Skipped: the operator chose ${choice ?? "nothing"}` };
	});
}
