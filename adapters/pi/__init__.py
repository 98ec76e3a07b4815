"""The Pi adapter: drives `pi --mode rpc` children for Patchbay (see docs/ADAPTER-PI.md).

``adapter`` — the runtime the CLI runs (``build_runtime``), manifest, delivery, spawn;
``slot`` — one supervised pi per workspace slot, its events and dialogs;
``commands`` — what the slot does with each command kind;
``mapping`` — the pure deciding rules (kinds, outcomes, transcript, dialogs, environment);
``rpc`` — the JSONL RPC client; ``process`` — the child process; ``state`` — persisted
generations; ``extension/approval.ts`` — the approval gate loaded into pi.
"""
