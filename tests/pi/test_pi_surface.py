"""The rest of Pi's RPC surface end to end, against both lines of the support matrix: usage,
the queue, the session tree and its generations, bash in pi's context, export, commands and
settings. What the legacy pi lacks is refused at delivery (checked), then skipped for it alone.

One deployment per pi line; the scenarios run in file order and leave the slot idle.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pi.conftest import PiBuild
from tests.pi.fake_llm import USAGE_COMPLETION, USAGE_PROMPT, FakeLLM
from tests.pi.world import TARGET, World, adapter_extra, make_world, submit
from tests.support.processes import PASSWORD, run_cli, wait_for

pytestmark = pytest.mark.pi


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM, pi_build: PiBuild) -> Iterator[World]:
    yield from make_world(tmp_path_factory, fake_llm, pi_build)


def cli(world: World, *args: str) -> Any:
    """The ``patchbay`` CLI, logged in to the world's core."""
    login = run_cli(world.d.env, "login", "--url", world.d.url, "--password-stdin", stdin=PASSWORD + "\n")
    assert login.returncode == 0, login.stderr
    return run_cli(world.d.env, *args)


def done(world: World, command_id: str, timeout: float = 60) -> dict[str, Any]:
    return world.api.wait_state(command_id, "completed", "failed", "cancelled", "rejected", timeout=timeout)


def say(world: World, command_id: str, text: str) -> dict[str, Any]:
    submit(world, command_id, f"SAY:{text}")
    record = done(world, command_id)
    assert record["state"] == "completed" and record["result"]["text"] == text, record
    return record


def refused_without(world: World, build: PiBuild, feature: str, command_id: str, kind: str,
                    payload: dict[str, Any]) -> None:
    """On a pi without ``feature``: the manifest hides it and delivery refuses it; then skip."""
    if feature in build.features:
        return
    assert feature not in world.session()["capabilities"]["features"]
    submit(world, command_id, kind=kind, payload=payload)
    record = done(world, command_id)
    assert (record["state"], record["failure"]) == ("rejected", "unsupported_command")
    assert "needs pi 1.6" in record["reason"]
    build.need(feature)


def test_the_manifest_names_the_running_pi_and_its_features(world: World, pi_build: PiBuild) -> None:
    capabilities = world.session()["capabilities"]
    assert set(capabilities["features"]) == set(pi_build.features)
    adapter = world.api.http.get("/api/adapters").json()["adapters"][0]
    assert adapter["manifest"]["runtime"]["pi"] == pi_build.version


def test_usage_is_reported_after_each_turn_and_carried_by_sessions_json(world: World) -> None:
    first = world.session()["usage"]
    before = first["tokens"]["input"] if first else 0
    say(world, "usage-1", "counted")
    usage = wait_for(lambda: (u := world.session()["usage"]) and u["tokens"]["input"] == before + USAGE_PROMPT and u,
                     timeout=30, what="usage after the turn")
    assert usage["tokens"]["output"] >= USAGE_COMPLETION and usage["context"]["window"] == 128000
    say(world, "usage-2", "counted again")
    wait_for(lambda: world.session()["usage"]["tokens"]["input"] == before + 2 * USAGE_PROMPT, timeout=30,
             what="usage after the second turn")
    listed = cli(world, "sessions", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = [s for s in json.loads(listed.stdout) if s["target"] == TARGET]
    assert row["usage"]["tokens"]["input"] == before + 2 * USAGE_PROMPT
    submit(world, "usage-q", kind="query", payload={"what": "usage"})
    assert done(world, "usage-q")["result"]["tokens"]["input"] == before + 2 * USAGE_PROMPT


def test_clear_queue_drops_queued_follow_ups_and_steers_pi_had_not_taken(world: World, pi_build: PiBuild,
                                                                         fake_llm: FakeLLM) -> None:
    refused_without(world, pi_build, "clear_queue", "clear-legacy", "session-management", {"action": "clear_queue"})
    submit(world, "q-busy", "SLOW:" + "q" * 40)
    wait_for(lambda: world.observations("q-busy", "assistant_delta"), timeout=60, what="streaming")
    submit(world, "q-later", "SAY:never asked")
    assert world.api.wait_state("q-later", "delivered")["state"] == "delivered"
    submit(world, "q-steer", payload={"text": "SAY:never steered", "mode": "steer"})
    wait_for(lambda: any(o["texts"] == ["SAY:never steered"] for o in world.observations("q-busy", "queue")),
             timeout=30, what="pi's queue_update naming the steer")
    submit(world, "q-clear", kind="session-management", payload={"action": "clear_queue"})
    cleared = done(world, "q-clear")
    assert cleared["state"] == "completed", cleared
    assert set(cleared["result"]["cleared"]) == {"q-later", "q-steer"}
    assert cleared["result"]["steering"] == ["SAY:never steered"]
    for command_id in ("q-later", "q-steer"):
        record = done(world, command_id)
        assert (record["state"], record["failure"]) == ("cancelled", "cancelled") and "q-clear" in record["reason"]
    busy = done(world, "q-busy")
    assert busy["state"] == "completed" and busy["result"]["text"] == "q" * 40
    assert not any("never" in text for text in fake_llm.user_texts())


def test_a_fork_is_a_new_generation_of_the_same_slot(world: World, pi_build: PiBuild) -> None:
    say(world, "fork-a", "first branch point")
    say(world, "fork-b", "second branch point")
    original = world.session()
    submit(world, "fork-list", kind="query", payload={"what": "fork_messages"})
    messages = done(world, "fork-list")["result"]["messages"]
    entry = next(m["entry_id"] for m in messages if m["text"] == "SAY:second branch point")
    submit(world, "fork-1", kind="session-management", payload={"action": "fork", "entry_id": entry})
    forked = done(world, "fork-1")
    assert forked["state"] == "completed", forked
    assert forked["result"]["text"] == "SAY:second branch point"  # the prompt forked from, to edit and resend
    after = world.session()
    assert after["generation"] == original["generation"] + 1 == forked["result"]["generation"]
    assert original["generation"] in after["tombstoned_generations"]
    assert after["metadata"]["pi_session_id"] != original["metadata"]["pi_session_id"]
    assert after["runtime_session_id"] == original["runtime_session_id"]  # the same slot
    say(world, "fork-say", "on the fork")
    submit(world, "fork-state", kind="query", payload={})
    texts = [m["text"] for m in done(world, "fork-state")["result"]["recent_messages"]]
    assert "SAY:first branch point" in texts and "SAY:second branch point" not in texts

    submit(world, "clone-1", kind="session-management", payload={"action": "clone"})
    cloned = done(world, "clone-1")
    assert cloned["state"] == "completed" and cloned["result"]["generation"] == after["generation"] + 1

    submit(world, "switch-1", kind="session-management",
           payload={"action": "switch_session", "session": original["metadata"]["pi_session_id"]})
    switched = done(world, "switch-1")
    assert switched["state"] == "completed", switched
    assert switched["result"]["pi_session_id"] == original["metadata"]["pi_session_id"]
    assert world.session()["generation"] == after["generation"] + 2
    # pi restarts into the session the slot is on, not the most recent file (the clone)
    switched_to = world.session()
    os.kill(switched_to["metadata"]["pi_pid"], signal.SIGKILL)
    restarted = wait_for(lambda: (s := world.session())["connectivity"] == "live"
                         and s["metadata"]["pi_pid"] != switched_to["metadata"]["pi_pid"] and s, timeout=90,
                         what="pi restarted")
    assert restarted["metadata"]["pi_session_id"] == original["metadata"]["pi_session_id"]
    assert restarted["generation"] == switched_to["generation"]
    submit(world, "switch-bad", kind="session-management", payload={"action": "switch_session", "session": "nope"})
    assert done(world, "switch-bad")["state"] == "failed"

    submit(world, "name-1", kind="session-management", payload={"action": "set_session_name", "name": "the original"})
    assert done(world, "name-1")["state"] == "completed"
    wait_for(lambda: world.session()["metadata"]["session_name"] == "the original", what="the session name")
    if "get_tree" in pi_build.features:
        submit(world, "tree-1", kind="query", payload={"what": "tree"})
        nodes = done(world, "tree-1")["result"]["nodes"]
        users = [n["text"] for n in nodes if n["role"] == "user"]
        assert users.index("SAY:first branch point") < users.index("SAY:second branch point")


def test_bash_in_pis_context_streams_its_output_and_can_be_aborted(world: World, pi_build: PiBuild) -> None:
    submit(world, "bash-ok", payload={"bash": "echo hello from bash"})
    ok = done(world, "bash-ok")
    assert ok["state"] == "completed" and ok["result"]["exit_code"] == 0, (ok["reason"], ok["result"])
    assert "hello from bash" in "".join(o["text"] for o in world.observations("bash-ok", "bash_output"))
    submit(world, "bash-bad", payload={"bash": "exit 3"})
    bad = done(world, "bash-bad")
    assert (bad["state"], bad["failure"], bad["result"]["exit_code"]) == ("failed", "execution_failed", 3)

    submit(world, "bash-long", payload={"bash": "for i in $(seq 1 600); do echo line$i; sleep 0.05; done"})
    world.api.wait_state("bash-long", "running", timeout=30)
    if "bash_streaming" in pi_build.features:
        wait_for(lambda: len(world.observations("bash-long", "bash_output")) >= 2, timeout=30,
                 what="streamed bash output")
    submit(world, "bash-stop", kind="cancel", payload={"command_id": "bash-long"})
    stopped = done(world, "bash-long")
    assert (stopped["state"], stopped["failure"]) == ("cancelled", "cancelled"), stopped
    assert stopped["result"]["aborted"] is True and "bash-stop" in stopped["reason"]
    assert "line600" not in stopped["result"]["output"]
    assert done(world, "bash-stop")["result"]["effect"] == "aborted"
    pi_build.need("bash_streaming")  # the legacy pi ran and aborted it; only 1.6 streams the output


def test_export_returns_the_html_and_patchbay_export_writes_it(world: World) -> None:
    say(world, "export-say", "worth exporting")
    submit(world, "export-1", kind="query", payload={"what": "export"})
    exported = done(world, "export-1")
    assert exported["state"] == "completed", exported
    html = gzip.decompress(base64.b64decode(exported["result"]["data"]))
    assert len(html) == exported["result"]["bytes"] and b"<html" in html.lower()
    target = world.tmp / "exported.html"
    written = cli(world, "export", TARGET, str(target))
    assert written.returncode == 0, written.stderr
    page = target.read_text()
    assert page.lower().startswith("<!doctype html")
    embedded = page.split('id="session-data" type="application/json">', 1)[1].split("<", 1)[0]
    assert "SAY:worth exporting" in base64.b64decode(embedded.strip()).decode()  # pi embeds the session


def test_commands_settings_and_thinking_levels(world: World, pi_build: PiBuild) -> None:
    submit(world, "cmds-1", kind="query", payload={"what": "commands"})
    names = {c["name"] for c in done(world, "cmds-1")["result"]["commands"]}
    assert "ping" in names  # registered by the test's extension
    submit(world, "retry-off", kind="reconfigure", payload={"auto_retry": False})
    assert done(world, "retry-off")["state"] == "completed"
    submit(world, "compaction-on", kind="reconfigure", payload={"auto_compaction": True})
    assert done(world, "compaction-on")["state"] == "completed"
    wait_for(lambda: world.session()["metadata"]["auto_compaction"] is True, what="auto_compaction metadata")
    submit(world, "compaction-off", kind="reconfigure", payload={"auto_compaction": False})
    assert done(world, "compaction-off")["state"] == "completed"
    submit(world, "retry-bad", kind="reconfigure", payload={"auto_retry": "yes"})
    assert done(world, "retry-bad")["failure"] == "validation_failed"
    refused_without(world, pi_build, "thinking_levels", "levels-legacy", "query", {"what": "thinking_levels"})
    submit(world, "levels-1", kind="query", payload={"what": "thinking_levels"})
    assert done(world, "levels-1")["result"]["levels"] == ["off"]  # the fake model does not reason


def reported_entries(world: World, generation: int) -> list[str]:
    return [e["payload"]["observation"]["entry_id"] for e in world.transcript()
            if e["payload"]["observation"]["type"] == "entry" and e["payload"]["generation"] == generation]


def pi_entries(world: World, pi_session_id: str) -> list[str]:
    """Pi's own record: the entries of its session file (after the header), in append order."""
    sessions = world.d.home / "adapters" / "pi-1.pi-state" / "sessions" / "main"
    (path,) = sessions.glob(f"*{pi_session_id}.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["id"] for r in records if r.get("type") != "session"]


def test_transcript_repair_after_the_adapter_is_killed_mid_turn(world: World, pi_build: PiBuild) -> None:
    pi_build.need("get_entries")
    submit(world, "repair-new", kind="session-management", payload={"action": "new_session"})
    assert done(world, "repair-new")["state"] == "completed"
    session = world.session()
    generation, pi_session = session["generation"], session["metadata"]["pi_session_id"]
    say(world, "repair-1", "before the kill")
    wait_for(lambda: (r := reported_entries(world, generation)) and r == pi_entries(world, pi_session), timeout=30,
             what="the entries of the first turn")

    submit(world, "repair-slow", "SLOW:" + "r" * 300)
    wait_for(lambda: world.observations("repair-slow", "assistant_delta"), timeout=60, what="streaming")
    pid = world.session()["metadata"]["pi_pid"]
    world.adapter.kill(signal.SIGKILL)
    seen = reported_entries(world, generation)
    world.adapter = world.setup.adapter(world.d, extra=adapter_extra(world.tmp))
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or "State:\tZ" in Path(f"/proc/{pid}/status").read_text(),
             timeout=30, what="the orphaned pi to be stopped")
    lost = done(world, "repair-slow", timeout=90)
    assert (lost["state"], lost["failure"]) == ("failed", "execution_outcome_unknown")
    wait_for(lambda: reported_entries(world, generation) == pi_entries(world, pi_session), timeout=60,
             what="the missed entries, filled from pi's own record")
    say(world, "repair-2", "after the kill")
    wait_for(lambda: reported_entries(world, generation) == pi_entries(world, pi_session), timeout=30,
             what="the entries after the restart")
    reported = reported_entries(world, generation)
    assert len(reported) == len(set(reported))  # no duplicates; equality with pi's list: no gaps
    assert len(reported) > len(seen) + 2  # the killed turn's entries came after the restart
    texts = [e["payload"]["observation"].get("text") for e in world.transcript()
             if e["payload"]["observation"]["type"] == "entry" and e["payload"]["generation"] == generation]
    assert "SLOW:" + "r" * 300 in texts and "after the kill" in texts
