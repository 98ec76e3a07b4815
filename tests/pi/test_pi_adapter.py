"""The Pi adapter end to end: real `patchbay serve`, real `patchbay adapter run pi`, the real
pi from npm (pinned in tools/package.json), and a scripted fake LLM.

One deployment is shared by the scenarios of this module (pi starts take a second or two);
each scenario leaves the slot idle. They run in file order; the last one restarts the adapter.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from trio_websocket import open_websocket_url

from tests.pi.conftest import PiBuild
from tests.pi.fake_llm import FakeLLM
from tests.pi.world import World, adapter_extra, make_world, submit
from tests.support.processes import wait_for

pytestmark = pytest.mark.pi



@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM, pi_build: PiBuild) -> Iterator[World]:
    yield from make_world(tmp_path_factory, fake_llm, pi_build)


def test_prompt_completes_with_the_final_assistant_text(world: World) -> None:
    submit(world, "say-1", "SAY:hello from the fake model")
    done = world.api.wait_state("say-1", "completed", "failed", timeout=60)
    assert done["state"] == "completed" and done["result"]["text"] == "hello from the fake model"
    assert [h["state"] for h in done["history"]] == ["accepted", "delivered", "running", "completed"]
    assert world.observations("say-1", "user_message")[0]["text"] == "SAY:hello from the fake model"
    deltas = "".join(o["text"] for o in world.observations("say-1", "assistant_delta"))
    assert deltas == "hello from the fake model"
    assert world.observations("say-1", "assistant_message")[0]["stop_reason"] == "stop"
    assert world.session()["activity"] == "idle"
    assert world.session()["snapshot_tier"] == "partial"
    submit(world, "query-1", kind="query", payload={})
    state = world.api.wait_state("query-1", "completed", "failed")["result"]
    assert state["message_count"] == 2 and state["is_streaming"] is False
    assert state["recent_messages"][-1] == {"role": "assistant", "text": "hello from the fake model"}
    assert state["pi_session_id"] == world.session()["metadata"]["pi_session_id"]
    replies = world.api.http.get("/api/audit", params={"kind": "reply.recorded"}).json()["records"]
    assert [r["details"]["correlates_id"] for r in replies] == ["say-1"]  # the answer, correlated to its command


def test_approved_tool_call_runs_and_denied_one_is_blocked(world: World) -> None:
    allowed, denied = world.tmp / "allowed.txt", world.tmp / "denied.txt"
    submit(world, "tool-ok", f"BASH:echo yes > {allowed}")
    asked = world.pending_elicitation("tool-ok")
    assert asked["kind"] == "approval" and asked["title"] == "Allow bash?" and str(allowed) in asked["body"]
    answer = world.api.http.post(f"/api/elicitations/{asked['elicitation_id']}", json={"decision": "approve"})
    assert answer.status_code == 200, answer.text
    done = world.api.wait_state("tool-ok", "completed", "failed", timeout=60)
    assert done["state"] == "completed" and done["result"]["text"].startswith("tool said:")
    assert allowed.read_text() == "yes\n"
    again = world.api.http.post(f"/api/elicitations/{asked['elicitation_id']}", json={"decision": "deny"})
    assert again.status_code == 409 and "answered" in again.text

    submit(world, "tool-no", f"BASH:echo no > {denied}")
    asked = world.pending_elicitation("tool-no")
    world.api.http.post(f"/api/elicitations/{asked['elicitation_id']}", json={"decision": "deny"}).raise_for_status()
    done = world.api.wait_state("tool-no", "completed", "failed", timeout=60)
    assert "denied" in done["result"]["text"]
    assert not denied.exists()
    ends = world.observations("tool-no", "tool_end")
    assert ends and ends[0]["is_error"] is True and "denied" in ends[0]["output"]


def test_question_dialog_becomes_a_question_elicitation_answered_once(world: World) -> None:
    notes = world.tmp / "notes.txt"
    notes.write_text("the notes")
    submit(world, "read-1", f"READ:{notes}")
    asked = world.pending_elicitation("read-1")
    assert (asked["kind"], asked["options"]) == ("question", ["read it", "skip it"])
    answer = world.api.http.post(f"/api/elicitations/{asked['elicitation_id']}", json={"answer": "read it"})
    assert answer.status_code == 200, answer.text
    done = world.api.wait_state("read-1", "completed", "failed", timeout=60)
    assert "the notes" in done["result"]["text"]

    submit(world, "read-2", f"READ:{notes}")
    asked = world.pending_elicitation("read-2")
    refused = world.api.http.post(f"/api/elicitations/{asked['elicitation_id']}", json={"answer": "perhaps"})
    assert refused.status_code == 409 and refused.json()["failure"] == "validation_failed"
    assert "'read it', 'skip it'" in refused.json()["reason"]
    assert refused.json()["elicitation"]["state"] == "pending"  # the wrong answer resolved nothing
    declined = world.api.http.post(f"/api/elicitations/{asked['elicitation_id']}", json={"decline": True})
    assert declined.status_code == 200, declined.text
    done = world.api.wait_state("read-2", "completed", "failed", timeout=60)
    assert "Skipped" in done["result"]["text"]  # pi's dialog was dismissed, the tool blocked


def test_an_extension_command_pi_handles_without_a_run_completes(world: World) -> None:
    submit(world, "ping-1", "/ping")
    done = world.api.wait_state("ping-1", "completed", "failed", timeout=60)
    assert done["result"] == {"text": "", "stop_reason": "handled_without_run"}
    notices = [e["payload"]["observation"] for e in world.transcript()
               if e["payload"]["observation"]["type"] == "notice"]
    assert notices[-1]["text"] == "pong"
    submit(world, "after-ping", "SAY:still working")
    assert world.api.wait_state("after-ping", "completed", timeout=60)["result"]["text"] == "still working"


def test_unanswered_approval_expires_and_blocks_the_tool(world: World) -> None:
    quick = world.tmp / "ws" / "quick"
    quick.mkdir(parents=True)
    marker = world.tmp / "never.txt"
    proc = world.setup.adapter(world.d, "pi-2", workspaces={"quick": quick}, extra=["--pi-approval-timeout", "2"])
    try:
        world.api.wait_session("pi-2/quick", "live", timeout=90)
        submit(world, "unanswered", f"BASH:echo x > {marker}", target="pi-2/quick")
        asked = world.pending_elicitation("unanswered")
        assert asked["expires_at"] is not None
        done = world.api.wait_state("unanswered", "completed", "failed", timeout=60)
        assert "did not answer" in done["result"]["text"] and not marker.exists()
        closed = world.api.http.get("/api/elicitations").json()["elicitations"]
        assert next(e for e in closed if e["elicitation_id"] == asked["elicitation_id"])["state"] == "expired"
        late = world.api.http.post(f"/api/elicitations/{asked['elicitation_id']}", json={"decision": "approve"})
        assert late.status_code == 409 and "expired" in late.text
        submit(world, "no-spawn", kind="spawn", payload={"directory": "x"}, target="pi-2/quick")
        unsupported = world.api.wait_state("no-spawn", "rejected", "completed", "failed")
        assert unsupported["failure"] == "unsupported_command" and "--spawn-root" in unsupported["reason"]
    finally:
        proc.stop()
        world.d.procs.remove(proc)


def test_abort_during_a_slow_stream_cancels_the_turn(world: World) -> None:
    submit(world, "slow-1", "SLOW:" + "x" * 300)
    world.api.wait_state("slow-1", "running", timeout=60)
    wait_for(lambda: world.observations("slow-1", "assistant_delta"), timeout=60, what="streaming")
    submit(world, "cancel-1", kind="cancel", payload={"command_id": "slow-1"})
    cancelled = world.api.wait_state("slow-1", "cancelled", "completed", "failed", timeout=60)
    assert (cancelled["state"], cancelled["failure"]) == ("cancelled", "cancelled")
    assert cancelled["result"]["stop_reason"] == "aborted"
    assert world.api.wait_state("cancel-1", "completed")["result"]["effect"] == "aborted"
    wait_for(lambda: world.session()["activity"] == "idle", timeout=30, what="idle")

    submit(world, "slow-2", "SLOW:" + "x" * 300)
    wait_for(lambda: world.observations("slow-2", "assistant_delta"), timeout=60, what="streaming")
    submit(world, "interrupt-1", kind="interrupt", payload={})
    interrupted = world.api.wait_state("slow-2", "cancelled", "completed", "failed", timeout=60)
    assert interrupted["state"] == "cancelled" and "interrupted by interrupt-1" in interrupted["reason"]


def test_follow_up_waits_in_the_core_and_steer_joins_the_running_turn(world: World, fake_llm: FakeLLM) -> None:
    submit(world, "busy-1", "SLOW:" + "y" * 60)
    world.api.wait_state("busy-1", "running", timeout=60)
    submit(world, "later-1", "SAY:follow-up done")
    assert world.api.wait_state("later-1", "delivered")["state"] == "delivered"
    submit(world, "steer-1", payload={"text": "SAY:steered", "mode": "steer"})
    world.api.wait_state("steer-1", "running", timeout=30)
    assert world.api.command("later-1")["state"] == "delivered"  # durable in the core, not yet sent
    busy = world.api.wait_state("busy-1", "completed", "cancelled", "failed", timeout=60)
    steer = world.api.wait_state("steer-1", "completed", "failed", timeout=60)
    assert busy["result"]["text"] == steer["result"]["text"] == "steered"
    later = world.api.wait_state("later-1", "completed", "failed", timeout=60)
    assert later["result"]["text"] == "follow-up done"
    texts = fake_llm.user_texts()
    assert texts.index("SAY:steered") < texts.index("SAY:follow-up done")


def test_reconfigure_lists_models_sets_the_model_and_thinking_level(world: World, fake_llm: FakeLLM) -> None:
    submit(world, "models-1", kind="reconfigure", payload={"list_models": True})
    models = world.api.wait_state("models-1", "completed", "failed")["result"]["models"]
    assert {m["model_id"] for m in models} == {"fake-model", "fake-model-2"}
    submit(world, "model-2", kind="reconfigure", payload={"model": {"provider": "fake", "model_id": "fake-model-2"}})
    assert world.api.wait_state("model-2", "completed", "failed")["result"]["model"]["model_id"] == "fake-model-2"
    wait_for(lambda: world.session()["metadata"]["model"]["model_id"] == "fake-model-2", what="model metadata")
    submit(world, "think-1", kind="reconfigure", payload={"thinking_level": "low"})
    assert world.api.wait_state("think-1", "completed", "failed")["state"] == "completed"
    submit(world, "say-2", "SAY:on the second model")
    world.api.wait_state("say-2", "completed", timeout=60)
    assert fake_llm.models()[-1] == "fake-model-2"
    submit(world, "bad-model", kind="reconfigure", payload={"model": {"provider": "fake", "model_id": "nope"}})
    refused = world.api.wait_state("bad-model", "failed", "completed")
    assert refused["failure"] == "execution_failed" and "nope" in refused["reason"]


def test_compact_keeps_the_session_generation(world: World) -> None:
    submit(world, "before-compact", "SAY:something to summarize")  # pi 1.6 refuses to compact an empty session
    world.api.wait_state("before-compact", "completed", timeout=60)
    generation = world.session()["generation"]
    submit(world, "compact-1", kind="session-management", payload={"action": "compact"})
    done = world.api.wait_state("compact-1", "completed", "failed", timeout=60)
    assert done["state"] == "completed", (done["reason"], done["failure"])
    phases = [o["phase"] for o in world.observations("compact-1", "compaction")]
    assert phases == ["start", "end"]
    assert world.session()["generation"] == generation


def test_killed_pi_mid_turn_restarts_with_continue_and_an_honest_outcome(world: World) -> None:
    session = world.session()
    pid, pi_session = session["metadata"]["pi_pid"], session["metadata"]["pi_session_id"]
    submit(world, "crash-1", "SLOW:" + "z" * 300)
    world.api.wait_state("crash-1", "running", timeout=60)
    wait_for(lambda: world.observations("crash-1", "assistant_delta"), timeout=60, what="streaming")
    os.kill(pid, signal.SIGKILL)
    failed = world.api.wait_state("crash-1", "failed", "completed", "cancelled", timeout=60)
    assert (failed["state"], failed["failure"]) == ("failed", "execution_outcome_unknown")
    restarted = wait_for(lambda: (s := world.session())["connectivity"] == "live" and s["metadata"]["pi_pid"] != pid
                         and s, timeout=90, what="pi restarted")
    assert restarted["metadata"]["pi_session_id"] == pi_session  # --continue resumed the same conversation
    assert restarted["metadata"]["restarts"] >= 1 and restarted["generation"] == session["generation"]
    submit(world, "after-crash", "SAY:back")
    assert world.api.wait_state("after-crash", "completed", timeout=60)["result"]["text"] == "back"


def test_spawn_leases_the_directory_and_a_failed_launch_releases_it(world: World) -> None:
    root = world.tmp / "spawn"
    submit(world, "spawn-1", kind="spawn", payload={"directory": "proj-a"})
    spawned = world.api.wait_state("spawn-1", "completed", "failed", "rejected", timeout=90)
    assert spawned["state"] == "completed", spawned
    assert spawned["result"]["target"] == "pi-1/proj-a"
    world.api.wait_session("pi-1/proj-a", "live", timeout=60)
    leases = world.api.http.get("/api/leases").json()["leases"]
    assert any(lease["resource"] == f"dir:{root / 'proj-a'}" and lease["state"] == "held" for lease in leases)

    submit(world, "spawn-2", kind="spawn", payload={"directory": str(root / "proj-a"), "name": "other"})
    second = world.api.wait_state("spawn-2", "rejected", "completed", "failed", timeout=60)
    assert second["state"] == "rejected" and "held by adapter:pi-1" in second["reason"]

    submit(world, "spawn-out", kind="spawn", payload={"directory": str(world.tmp)})
    assert world.api.wait_state("spawn-out", "rejected")["failure"] == "validation_failed"

    (root / "blocked").write_text("a file where the directory should be")
    submit(world, "spawn-3", kind="spawn", payload={"directory": "blocked"})
    failed = world.api.wait_state("spawn-3", "failed", "completed", "rejected", timeout=60)
    assert failed["state"] == "failed" and "lease is released" in failed["reason"]
    (root / "blocked").unlink()
    submit(world, "spawn-4", kind="spawn", payload={"directory": "blocked"})
    assert world.api.wait_state("spawn-4", "completed", "failed", "rejected", timeout=90)["state"] == "completed"

    submit(world, "spawned-say", "SAY:from the spawned slot", target="pi-1/proj-a")
    assert world.api.wait_state("spawned-say", "completed", timeout=60)["result"]["text"] == "from the spawned slot"

    main_session = world.session()["metadata"]["pi_session_id"]
    sessions = world.d.home / "adapters" / "pi-1.pi-state" / "sessions" / "main"
    (session_file,) = sessions.glob(f"*{main_session}.jsonl")
    submit(world, "spawn-resume", kind="spawn", payload={"directory": "proj-r", "resume": str(session_file)})
    resumed = world.api.wait_state("spawn-resume", "completed", "failed", "rejected", timeout=90)
    assert resumed["state"] == "completed" and resumed["result"]["pi_session_id"] == main_session


async def _late_observation(url: str, credential: str, adapter_generation: int, generation: int) -> dict[str, Any]:
    async with open_websocket_url(url.replace("http://", "ws://") + "/adapter/v1") as ws:
        await ws.send_message(json.dumps({
            "type": "hello", "protocol": 1, "adapter_id": "pi-1", "credential": credential,
            "adapter_generation": adapter_generation, "deployment_scope": socket.gethostname(),
            "manifest": {"kinds": []}}))
        welcome = json.loads(await ws.get_message())
        assert welcome["type"] == "welcome", welcome
        await ws.send_message(json.dumps({
            "type": "observation", "seq": 1, "runtime_session_id": "main", "generation": generation,
            "observation": {"type": "assistant_delta", "text": "late text from the old session"}}))
        answer: dict[str, Any] = json.loads(await ws.get_message())
        return answer


def test_new_session_bumps_the_generation_then_the_adapter_restarts_and_resyncs(world: World) -> None:
    before = world.session()
    submit(world, "new-1", kind="session-management", payload={"action": "new_session"})
    done = world.api.wait_state("new-1", "completed", "failed", timeout=60)
    assert done["state"] == "completed" and done["result"]["generation"] == before["generation"] + 1
    after = world.session()
    assert after["generation"] == before["generation"] + 1
    assert before["generation"] in after["tombstoned_generations"]
    assert after["metadata"]["pi_session_id"] != before["metadata"]["pi_session_id"]
    submit(world, "new-say", "SAY:fresh start")
    assert world.api.wait_state("new-say", "completed", timeout=60)["generation"] == after["generation"]

    # The adapter process dies; a late event of the old generation arrives: recorded, inert.
    world.adapter.kill(signal.SIGKILL)
    credential_file = world.d.home / "adapters" / "pi-1.credential"
    counter = credential_file.with_name(credential_file.name + ".generation")
    next_generation = int(counter.read_text()) + 1
    counter.write_text(f"{next_generation}\n")
    answer = trio.run(_late_observation, world.d.url, credential_file.read_text().strip(), next_generation,
                      before["generation"])
    assert answer["type"] == "error" and answer["code"] == "stale_event"
    audit = world.api.http.get("/api/audit", params={"kind": "session.stale_event"}).json()["records"]
    assert any(r["details"]["generation"] == before["generation"] for r in audit)

    # A new adapter process re-attaches and resynchronizes from pi (partial snapshot).
    world.adapter = world.setup.adapter(world.d, extra=adapter_extra(world.tmp))
    resynced = wait_for(lambda: (s := world.session())["connectivity"] == "live" and s, timeout=90, what="resync")
    assert resynced["generation"] == after["generation"]
    assert resynced["metadata"]["pi_session_id"] == after["metadata"]["pi_session_id"]
    resync = wait_for(lambda: (r := world.resyncs()) and r[-1]["message_count"] == 2 and r[-1], timeout=30,
                      what="the resync observation")
    assert resync["last_assistant_text"] == "fresh start" and resync["pi_session_id"] == resynced["metadata"][
        "pi_session_id"]
    submit(world, "after-restart", "SAY:still here")
    assert world.api.wait_state("after-restart", "completed", timeout=60)["result"]["text"] == "still here"

    # Work in flight when the adapter dies: the running turn's outcome is unknown, the queued
    # follow-up stays in the core and runs on the next adapter process.
    submit(world, "inflight", "SLOW:" + "w" * 300)
    wait_for(lambda: world.observations("inflight", "assistant_delta"), timeout=60, what="streaming")
    submit(world, "queued", "SAY:redelivered")
    assert world.api.wait_state("queued", "delivered")["state"] == "delivered"
    world.adapter.kill(signal.SIGKILL)
    world.adapter = world.setup.adapter(world.d, extra=adapter_extra(world.tmp))
    lost = world.api.wait_state("inflight", "failed", "completed", "cancelled", timeout=90)
    assert (lost["state"], lost["failure"]) == ("failed", "execution_outcome_unknown")
    assert world.api.wait_state("queued", "completed", "failed", timeout=90)["result"]["text"] == "redelivered"

    # The core restarts: the same adapter process re-attaches and resynchronizes again.
    assert world.d.serve_proc is not None
    port = world.d.url.rsplit(":", 1)[1]
    seen = len(world.resyncs())
    world.d.serve_proc.kill(signal.SIGKILL)
    world.d.serve(listen=f"127.0.0.1:{port}")
    world.api = world.d.api()
    wait_for(lambda: len(world.resyncs()) > seen and world.session()["connectivity"] == "live", timeout=90,
             what="resync after the core restarted")
    assert world.session()["generation"] == after["generation"]


def test_sigterm_aborts_the_running_turn_before_pi_is_closed(world: World) -> None:
    pi_session = world.session()["metadata"]["pi_session_id"]
    submit(world, "term-1", "SLOW:" + "t" * 300)
    wait_for(lambda: world.observations("term-1", "assistant_delta"), timeout=60, what="streaming")
    os.killpg(world.adapter.pid, signal.SIGTERM)
    assert world.adapter.process.wait(timeout=60) == -signal.SIGTERM
    stopped = world.api.command("term-1")
    assert (stopped["state"], stopped["reason"]) == ("cancelled", "the adapter is shutting down")
    assert world.session()["connectivity"] == "offline"
    sessions = world.d.home / "adapters" / "pi-1.pi-state" / "sessions" / "main"
    (current,) = sessions.glob(f"*{pi_session}.jsonl")
    records = [json.loads(line) for line in current.read_text().splitlines()]
    messages = [r["message"] for r in records if r.get("type") == "message"]
    assert messages[-1]["role"] == "assistant" and messages[-1]["stopReason"] == "aborted"
