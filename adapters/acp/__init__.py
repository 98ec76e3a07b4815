"""The ACP adapter: drives Agent Client Protocol agents (Claude Code, Codex, Gemini CLI,
OpenCode) over their stdio for Patchbay (see docs/ADAPTER-ACP.md).

``adapter`` — the runtime the CLI runs (``build_runtime``), manifest, delivery;
``slot`` — one supervised agent per workspace slot, its session (load or new);
``incoming`` — the agent's updates, permission requests and file requests;
``commands`` — what the slot does with each command kind;
``mapping`` / ``transcript`` — the pure deciding rules and the update → observation mapping;
``jsonrpc`` — JSON-RPC 2.0 over stdio on trio; ``fs`` — workspace-confined file access;
``records`` — config, turn and persisted slot state; ``presets`` — the four agents' defaults.
"""
