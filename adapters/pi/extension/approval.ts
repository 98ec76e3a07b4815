/**
 * Patchbay approval gate for pi: asks before the tool calls a policy selects.
 *
 * Loaded by the Patchbay Pi adapter with `-e`. Before a selected tool runs, it raises a
 * `confirm` dialog; in RPC mode that is an `extension_ui_request` the adapter turns into a
 * Patchbay approval elicitation. Approved → the tool runs. Denied, dismissed or timed out →
 * the tool is blocked with a reason the model can read.
 *
 * Flags (set by the adapter):
 *   --patchbay-approve <tools>           comma-separated tool names, "*" for all, "none" for no gate
 *                                        (default: bash,edit,write)
 *   --patchbay-approval-timeout <secs>   how long pi waits for an answer (default: 300)
 */
import type { ExtensionAPI } from "@mariozechner/pi-coding-agent";

const DEFAULT_TOOLS = "bash,edit,write";
const DEFAULT_TIMEOUT_SECONDS = 300;

function describe(toolName: string, input: Record<string, unknown>): string {
	if (toolName === "bash" && typeof input.command === "string") return input.command;
	if (typeof input.path === "string") return `${toolName} ${input.path}`;
	return JSON.stringify(input).slice(0, 2000);
}

export default function (pi: ExtensionAPI) {
	pi.registerFlag("patchbay-approve", {
		description: "Tools that need a Patchbay approval (comma-separated, * for all, none for no gate)",
		type: "string",
		default: DEFAULT_TOOLS,
	});
	pi.registerFlag("patchbay-approval-timeout", {
		description: "Seconds to wait for a Patchbay approval before blocking the tool",
		type: "string",
		default: String(DEFAULT_TIMEOUT_SECONDS),
	});

	pi.on("tool_call", async (event, ctx) => {
		const policy = String(pi.getFlag("patchbay-approve") ?? DEFAULT_TOOLS).trim();
		const tools = policy.split(",").map((name) => name.trim()).filter((name) => name.length > 0);
		const gated = tools.includes("*") || tools.includes(event.toolName);
		if (policy === "none" || !gated) return undefined;
		if (!ctx.hasUI) return { block: true, reason: "Blocked: no operator is connected to approve this tool call" };

		const seconds = Number(pi.getFlag("patchbay-approval-timeout") ?? DEFAULT_TIMEOUT_SECONDS);
		const timeout = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : DEFAULT_TIMEOUT_SECONDS * 1000;
		const started = Date.now();
		const input = (event.input ?? {}) as Record<string, unknown>;
		const approved = await ctx.ui.confirm(`Allow ${event.toolName}?`, describe(event.toolName, input), { timeout });
		if (approved) return undefined;
		const timedOut = Date.now() - started >= timeout;
		return {
			block: true,
			reason: timedOut
				? "Blocked: the operator did not answer the approval request in time"
				: "Blocked: the operator denied this tool call",
		};
	});
}
