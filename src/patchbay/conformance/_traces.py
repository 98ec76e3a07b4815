"""Model-trace conformance: replay Quint traces (ITF) step by step against the real core.

``quint run --out-itf`` writes traces of the command-lifecycle and session-generation models.
Each model state carries ``last``, the action just taken with its parameters. The replayer
performs that action on an in-process core (journal on disk, restarts included) and then
compares the model's state with the core's: every command's state, every session's
generation, label, deployment scope, activity and tombstones, and the outcome the model gave
the action (accepted/refused/stale) with the core's answer. The first difference is reported
with the trace step, so a divergence between spec and code is a test failure, not a shrug.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from patchbay.conformance._driver import SETTINGS, CoreHost
from patchbay.conformance._match import VectorFailure
from patchbay.conformance._steps import Context, login, submit
from patchbay.registry import Failure, SessionActivityState, SnapshotTier, SubmissionOutcome

JSON = dict[str, Any]


def decode(value: Any) -> Any:
    """ITF values -> plain Python (ints, dicts, lists)."""
    if isinstance(value, dict):
        if "#bigint" in value:
            return int(value["#bigint"])
        if "#map" in value:
            return {decode(k): decode(v) for k, v in value["#map"]}
        if "#set" in value:
            return sorted(decode(v) for v in value["#set"])
        if "#tup" in value:
            return [decode(v) for v in value["#tup"]]
        return {k: decode(v) for k, v in value.items() if k != "#meta"}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def model_states(document: JSON) -> list[JSON]:
    """States with variable names stripped of their module prefixes."""
    return [{name.rsplit("::", 1)[-1]: decode(v) for name, v in state.items() if name != "#meta"}
            for state in document["states"]]


def generate(root: Path, model: str, directory: Path, *, traces: int, steps: int, seed: int) -> list[Path]:
    quint = root / "tools" / "node_modules" / ".bin" / "quint"
    argv = [str(quint), "run", str(root / "specs" / f"{model}.qnt"), f"--main={model}", "--backend=typescript",
            "--max-steps", str(steps), "--max-samples", str(traces), "--n-traces", str(traces),
            "--seed", str(seed), "--out-itf", str(directory / f"{model}_{{seq}}.itf.json")]
    done = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=240)
    if done.returncode != 0:
        raise RuntimeError(f"quint could not generate traces: {done.stdout}{done.stderr}")
    return sorted(directory.glob(f"{model}_*.itf.json"))


# -- command lifecycle -------------------------------------------------------------------


async def _live_again(ctx: Context) -> None:
    adapter = await ctx.host.adapter("shell-1")
    await adapter.attach(ctx.core, generation=1, deployment_scope="vector-host")
    await adapter.send(ctx.core, {"type": "session", "runtime_session_id": "demo", "generation": 1,
                                  "snapshot_tier": SnapshotTier.authoritative})


async def _command_step(ctx: Context, state: JSON) -> None:
    last = state["last"]
    name = last["name"]
    if name == "submit":
        result = await submit(ctx, {"command_id": last["cmd"], "key": last["key"], "text": "true"})
        if result["outcome"] != last["state"]:
            raise VectorFailure(f"submit {last['cmd']}/{last['key']}: model {last['state']}, core {result}")
        answer = state["answers"][-1]
        if result["command"] is not None and (result["command"]["command_id"], result["command"]["state"]) != (
                answer["answered"], answer["state"]):
            raise VectorFailure(f"submit answered {result['command']}, model answered {answer}")
    elif name == "report":
        adapter = await ctx.host.adapter("shell-1")
        await adapter.send(ctx.core, {"type": "report", "command_id": last["cmd"], "state": last["state"]})
    elif name == "adapterLost":
        adapter = await ctx.host.adapter("shell-1")
        assert adapter.connection is not None
        await ctx.core.adapters.detached(adapter.connection, "model: adapter lost")
        await ctx.host.advance(SETTINGS.offline_after + 1)
        await _live_again(ctx)
    elif name == "checkpoint":
        await ctx.core.journal.checkpoint()
    elif name == "restart":
        await ctx.host.restart()
        await _live_again(ctx)
    else:
        raise VectorFailure(f"unknown model action {name}")
    await ctx.host.settle()
    core = {c: r.state.value for c, r in ctx.core.state.commands.items()}
    core.update((c, a.state.value) for c, a in ctx.core.state.archived.items())
    if core != state["commands"]:
        raise VectorFailure(f"after {last}: model commands {state['commands']}, core {core}")


async def _command_setup(ctx: Context) -> None:
    await login(ctx, {})
    await ctx.host.adapter("shell-1")
    await _live_again(ctx)


# -- session generation --------------------------------------------------------------------


def _runtime_session(target: str) -> str:
    return target.split("/", 1)[1]


async def _session_step(ctx: Context, state: JSON) -> None:
    last = state["last"]
    name = last["name"]
    adapter = await ctx.host.adapter("shell-1")
    if name == "report":
        if last["scope"] != adapter.deployment_scope:
            await adapter.attach(ctx.core, generation=1, deployment_scope=last["scope"])
        answer = await adapter.send(ctx.core, {
            "type": "session", "runtime_session_id": _runtime_session(last["target"]),
            "generation": last["generation"], "label": last["label"], "activity": SessionActivityState.idle,
            "snapshot_tier": SnapshotTier.authoritative})
    elif name == "observe":
        answer = await adapter.send(ctx.core, {
            "type": "observation", "runtime_session_id": _runtime_session(last["target"]),
            "generation": last["generation"], "observation": {"text": "model"}, "activity": SessionActivityState.working})
    elif name == "submit":
        result = await submit(ctx, {"command_id": last["cmd"], "target": last["target"], "text": "true"})
        answer = {"type": "ack" if result["outcome"] == SubmissionOutcome.accepted else "error"}
        bound = result["command"]["target"] if result["command"] else ""
        if bound != last["label"]:
            raise VectorFailure(f"submit {last['cmd']} to {last['target']}: model bound {last['label']!r}, "
                                f"core {bound!r} ({result['reason']})")
    elif name == "reply":
        answer = await adapter.send(ctx.core, {
            "type": "reply", "runtime_session_id": _runtime_session(last["target"]),
            "generation": last["generation"], "reply_id": f"r{ctx.host.clock.now()}-{adapter.seq}",
            "correlates_kind": "command", "correlates_id": last["cmd"]})
    else:
        raise VectorFailure(f"unknown model action {name}")
    await ctx.host.settle()
    outcome = "ok" if answer.get("type") == "ack" else ("stale" if answer.get("code") == Failure.stale_event else "refused")
    if outcome != last["outcome"]:
        raise VectorFailure(f"{name} {last}: model outcome {last['outcome']}, core answered {answer}")
    core = {t: {"generation": s.generation, "label": s.label, "scope": s.deployment_scope,
                "activity": s.activity.value} for t, s in ctx.core.state.sessions.items()}
    if core != state["sessions"]:
        raise VectorFailure(f"after {last}: model sessions {state['sessions']}, core {core}")
    tombstones = {t: sorted(s.tombstoned) for t, s in ctx.core.state.sessions.items()}
    if tombstones != state["tombstones"]:
        raise VectorFailure(f"after {last}: model tombstones {state['tombstones']}, core {tombstones}")


async def _session_setup(ctx: Context) -> None:
    await login(ctx, {})
    adapter = await ctx.host.adapter("shell-1")
    await adapter.attach(ctx.core, generation=1, deployment_scope="host-a")


Replayer = tuple[Callable[[Context], Awaitable[None]], Callable[[Context, JSON], Awaitable[None]]]
REPLAYERS: dict[str, Replayer] = {
    "command_lifecycle": (_command_setup, _command_step),
    "session_generation": (_session_setup, _session_step),
}


async def replay_trace(model: str, document: JSON) -> int:
    """Replay one ITF trace; returns the number of steps compared, raises VectorFailure."""
    setup, step = REPLAYERS[model]
    states = model_states(document)
    divergence: VectorFailure | None = None
    with tempfile.TemporaryDirectory(prefix="patchbay-trace-") as directory:
        host = CoreHost(Path(directory))
        async with trio.open_nursery() as nursery:
            await host.start(nursery)
            ctx = Context(host)
            try:
                await setup(ctx)
                for index, state in enumerate(states[1:], start=1):
                    try:
                        await step(ctx, state)
                    except VectorFailure as failure:
                        divergence = VectorFailure(f"trace step {index}: {failure}")
                        break
            finally:
                await host.stop()
                nursery.cancel_scope.cancel()
    if divergence is not None:
        raise divergence
    return len(states) - 1


def load_trace(path: Path) -> JSON:
    document: JSON = json.loads(path.read_text())
    return document
