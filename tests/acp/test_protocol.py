"""The ACP adapter against a scripted fake agent (tests/acp/fake_agent.py), in-process.

A FakeLink stands in for the core; the agent is a real child process speaking JSON-RPC over
stdio, so framing, ordering, process groups and restarts are the real ones.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import trio
from patchbay_adapters.acp.records import SlotState
from patchbay_adapters.common.child import kill_orphaned_group, started_at

from tests.acp.conftest import agent_log, harness


async def test_a_prompt_streams_its_reply_and_completes_with_the_final_text(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        command = await h.say("SAY:hello from the fake agent")
        done = await h.outcome(command)
        assert done["state"] == "completed" and done["result"] == {"text": "hello from the fake agent",
                                                                   "stop_reason": "end_turn"}
        assert [r["state"] for r in h.reports(command)] == ["delivered", "running", "completed"]
        assert "".join(o["text"] for o in h.observations("assistant_delta")) == "hello from the fake agent"
        assert len(h.observations("assistant_delta")) < 6  # chunks were batched
        assert h.observations("user_message")[-1]["text"] == "SAY:hello from the fake agent"
        replies = h.link.of("reply")
        assert [r["correlates_id"] for r in replies] == [command]
        assert replies[0]["content"]["text"] == "hello from the fake agent"
        session = h.link.of("session")[-1]
        assert session["activity"] == "idle" and session["connectivity"] == "live"
        assert session["metadata"]["agent"] == "fake-acp" and session["metadata"]["modes"] == ["ask", "auto"]


async def test_a_follow_up_waits_in_the_queue_until_the_turn_ends(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        first = await h.say("SLOW:" + "a" * 20)
        await h.link.wait_until(lambda: h.observations("assistant_delta"))
        second = await h.say("SAY:second")
        assert [r["state"] for r in h.reports(second)] == ["delivered"]
        assert (await h.outcome(first))["state"] == "completed"
        assert (await h.outcome(second))["result"]["text"] == "second"
        prompts = [m["params"]["prompt"][0]["text"] for m in agent_log(tmp_path) if m.get("method") == "session/prompt"]
        assert prompts == ["SLOW:" + "a" * 20, "SAY:second"]


async def test_an_allowed_permission_runs_the_tool_and_a_denied_one_does_not(tmp_path: Path) -> None:
    allowed, denied, always = tmp_path / "allowed.txt", tmp_path / "denied.txt", tmp_path / "always.txt"
    async with harness(tmp_path) as h:
        command = await h.say(f"ASK:{allowed}")
        asked = await h.elicitation()
        assert asked["kind"] == "approval" and asked["command_id"] == command
        assert asked["options"] == ["Allow once", "Always allow", "Reject"]
        assert asked["title"] == "Allow Write allowed.txt?" and str(allowed) in asked["body"]
        assert asked["expires_at"] is not None
        answer = await h.send("approval-response", {"elicitation_id": asked["elicitation_id"], "decision": "approve"})
        assert (await h.outcome(answer))["result"]["sent"] == {"outcome": "selected", "optionId": "allow"}
        assert (await h.outcome(command))["result"]["text"] == "tool ran (allow)"
        assert allowed.read_text() == "ran\n"
        tools = [o for o in h.observations() if o["type"].startswith("tool_")]
        assert [(t["type"], t["tool_call_id"]) for t in tools] == [("tool_start", "call-1"), ("tool_end", "call-1")]
        assert tools[1]["output"] == "ran" and tools[1]["is_error"] is False

        command = await h.say(f"ASK:{denied}")
        asked = await h.elicitation(2)
        answer = await h.send("approval-response", {"elicitation_id": asked["elicitation_id"], "decision": "deny"})
        assert (await h.outcome(answer))["result"]["sent"]["optionId"] == "reject"
        assert (await h.outcome(command))["result"]["text"] == "tool denied"
        assert not denied.exists()
        assert h.observations("tool_end")[-1]["is_error"] is True

        command = await h.say(f"ASK:{always}")
        asked = await h.elicitation(3)
        answer = await h.send("approval-response", {"elicitation_id": asked["elicitation_id"], "decision": "approve",
                                                    "answer": "Always allow"})
        assert (await h.outcome(answer))["state"] == "completed"
        assert (await h.outcome(command))["result"]["text"] == "tool ran (always)"
        again = await h.send("approval-response", {"elicitation_id": asked["elicitation_id"], "decision": "deny"})
        assert (await h.outcome(again))["state"] == "rejected"  # answered exactly once


async def test_an_unanswered_permission_expires_as_a_rejection(tmp_path: Path) -> None:
    marker = tmp_path / "never.txt"
    async with harness(tmp_path, approval_timeout=0.5) as h:
        command = await h.say(f"ASK:{marker}")
        asked = await h.elicitation()
        closed = await h.link.wait_until(lambda: h.link.of("elicitation_closed"))
        assert closed[0]["elicitation_id"] == asked["elicitation_id"] and closed[0]["state"] == "expired"
        assert (await h.outcome(command))["result"]["text"] == "tool denied"
        assert not marker.exists()
        late = await h.send("approval-response", {"elicitation_id": asked["elicitation_id"], "decision": "approve"})
        assert (await h.outcome(late))["state"] == "rejected"


async def test_cancel_mid_stream_ends_the_turn_cancelled_quickly(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        command = await h.say("SLOW:" + "x" * 200)
        await h.link.wait_until(lambda: h.observations("assistant_delta"))
        cancel = await h.send("cancel", {"command_id": command})
        done = await h.outcome(command)
        assert (done["state"], done["failure"], done["reason"]) == ("cancelled", "cancelled", f"cancelled by {cancel}")
        assert (await h.outcome(cancel))["result"]["effect"] == "cancel_requested"
        assert any(m.get("method") == "session/cancel" for m in agent_log(tmp_path))
        assert (await h.outcome(await h.say("SAY:after")))["state"] == "completed"


async def test_an_agent_out_of_step_after_a_cancel_is_restarted_and_loads_its_session(tmp_path: Path) -> None:
    async with harness(tmp_path, load=True, restart_after_cancel=True) as h:
        session_id, generation = h.slot.session_id, h.slot.generation
        command = await h.say("SLOW:" + "x" * 200)
        await h.link.wait_until(lambda: h.observations("assistant_delta"))
        await h.send("cancel", {"command_id": command})
        assert (await h.outcome(command))["state"] == "cancelled"
        after = await h.say("SAY:in step")
        assert (await h.outcome(after))["result"]["text"] == "in step"
        assert h.slot.restarts == 1 and (h.slot.session_id, h.slot.generation) == (session_id, generation)
        assert any("restarted" in n["text"] for n in h.observations("notice"))
        assert not [e for e in h.observations("error") if e["source"] == "agent"]


async def test_cancel_at_a_pending_permission_answers_it_cancelled(tmp_path: Path) -> None:
    marker = tmp_path / "never.txt"
    async with harness(tmp_path) as h:
        command = await h.say(f"ASK:{marker}")
        asked = await h.elicitation()
        await h.send("cancel", {})
        assert (await h.outcome(command))["state"] == "cancelled"
        closed = h.link.of("elicitation_closed")
        assert [(c["elicitation_id"], c["state"]) for c in closed] == [(asked["elicitation_id"], "cancelled")]
        answers = [m for m in agent_log(tmp_path) if "result" in m and "outcome" in m["result"]]
        assert answers[-1]["result"] == {"outcome": {"outcome": "cancelled"}}
        assert not marker.exists()


async def test_a_permission_asked_after_a_cancel_is_answered_cancelled_without_asking(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        command = await h.say("LATEASK:" + "y" * 200)
        await h.link.wait_until(lambda: h.observations("assistant_delta"))
        await h.send("cancel", {"command_id": command})
        assert (await h.outcome(command))["state"] == "cancelled"
        assert not h.link.of("elicitation")
        answers = [m for m in agent_log(tmp_path) if "result" in m and "outcome" in m["result"]]
        assert answers == [{"jsonrpc": "2.0", "id": answers[0]["id"], "result": {"outcome": {"outcome": "cancelled"}}}]


async def test_malformed_lines_and_unknown_requests_are_reported_and_survived(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        command = await h.say("GARBAGE")
        done = await h.outcome(command)
        assert done["state"] == "completed" and done["result"]["text"] == "survived -32601"
        errors = [o["text"] for o in h.observations("error") if o["source"] == "rpc"]
        assert any("not JSON" in e for e in errors)
        assert any("not a JSON object" in e for e in errors)
        assert any("neither a request" in e for e in errors)
        assert any("999" in e and "nobody waits" in e for e in errors)
        assert any("terminal/create" in e for e in errors)


async def test_an_agent_dying_mid_turn_gives_an_unknown_outcome_and_a_new_generation(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        generation = h.slot.generation
        command = await h.say("DIE")
        done = await h.outcome(command)
        assert (done["state"], done["failure"]) == ("failed", "execution_outcome_unknown")
        assert "exited (code 3)" in done["reason"]
        await h.live()
        assert h.slot.generation == generation + 1  # the fake cannot load: a new session, a notice
        assert any("cannot resume" in n["text"] for n in h.observations("notice"))
        assert h.slot.restarts == 1
        assert (await h.outcome(await h.say("SAY:back")))["result"]["text"] == "back"


async def test_a_restarted_agent_loads_its_session_without_replaying_it(tmp_path: Path) -> None:
    async with harness(tmp_path, load=True) as h:
        assert (await h.outcome(await h.say("SAY:remember me")))["state"] == "completed"
        session_id, generation = h.slot.session_id, h.slot.generation
        seen = len(h.observations())
        assert h.slot.child is not None
        os.killpg(h.slot.child.pid, signal.SIGKILL)
        await h.link.wait_until(lambda: h.slot.restarts == 1 and h.slot.live_peer is not None)
        assert (h.slot.session_id, h.slot.generation) == (session_id, generation)
        later = h.observations()[seen:]
        assert not [o for o in later if o["type"] in ("user_message", "assistant_delta")]  # the replay is not re-observed
        assert [o for o in later if o["type"] == "resync"][-1]["resumed"] is True
        loads = [m for m in agent_log(tmp_path) if m.get("method") == "session/load"]
        assert loads[-1]["params"]["sessionId"] == session_id
        assert (await h.outcome(await h.say("SAY:still")))["result"]["text"] == "still"


async def test_plan_usage_commands_mode_and_diffs_become_observations(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        done = await h.outcome(await h.say("RICH"))
        assert done["result"]["text"] == "rich done"
        assert h.observations("thinking_delta")[0]["text"] == "thinking it over"
        assert [e["content"] for e in h.observations("plan")[0]["entries"]] == ["read", "edit"]
        end = h.observations("tool_end")[0]
        assert end["diffs"] == [{"path": "/w/a.txt", "old": "old", "new": "new"}]
        assert h.observations("usage")[0] == {"type": "usage", "scope": "session", "used": 1200, "size": 200000,
                                              "cost": {"amount": 0.01, "currency": "USD"}}
        assert h.observations("commands")[0]["commands"] == [{"name": "review", "description": "Review the diff"}]
        assert h.observations("mode")[0]["mode_id"] == "auto"
        metadata = h.link.of("session")[-1]["metadata"]
        assert metadata["commands"] == ["review"] and metadata["mode"] == "auto"


async def test_file_requests_are_served_inside_the_workspace_only(tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    (tmp_path / "escape").symlink_to(tmp_path.parent)
    async with harness(tmp_path) as h:
        inside = await h.outcome(await h.say(f"FS:{tmp_path / 'sub' / 'in.txt'}"))
        assert inside["result"]["text"] == '{"write": "ok", "read": "via fs"}'
        assert (tmp_path / "sub" / "in.txt").read_text() == "via fs"
        for path in (outside, tmp_path / ".." / outside.name, tmp_path / "escape" / outside.name):
            refused = await h.outcome(await h.say(f"FS:{path}"))
            assert "outside the workspace" in refused["result"]["text"]
        assert not outside.exists()
        assert len(h.observations("fs_refused")) == 6


async def test_refusals_and_errors_fail_the_turn_with_the_reason(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        refused = await h.outcome(await h.say("REFUSE"))
        assert (refused["state"], refused["failure"]) == ("failed", "execution_failed")
        assert refused["reason"] == "the agent refused to continue"
        failed = await h.outcome(await h.say("FAIL"))
        assert failed["failure"] == "execution_failed" and "the model is down" in failed["reason"]


async def test_steer_is_refused_and_mode_changes_answer_out_of_order_during_a_turn(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        steer = await h.send("instruct", {"text": "x", "mode": "steer"})
        assert (await h.outcome(steer))["failure"] == "unsupported_command"
        bad = await h.send("reconfigure", {"mode": "yolo"})
        assert "ask, auto" in (await h.outcome(bad))["reason"]
        turn = await h.say("SLOW:" + "z" * 60)
        await h.link.wait_until(lambda: h.observations("assistant_delta"))
        mode = await h.send("reconfigure", {"mode": "auto"})
        assert (await h.outcome(mode))["result"]["mode"] == "auto"
        assert [r["state"] for r in h.reports(turn)] == ["delivered", "running"]  # answered before the prompt
        assert (await h.outcome(turn))["state"] == "completed"
        query = await h.outcome(await h.send("query", {}))
        assert query["result"]["mode"] == "auto" and query["result"]["busy"] is False
        images = await h.send("instruct", {"text": "look", "images": [{"data": "aGk=", "mime_type": "image/png"}]})
        assert (await h.outcome(images))["state"] == "completed"
        prompt = [m for m in agent_log(tmp_path) if m.get("method") == "session/prompt"][-1]["params"]["prompt"]
        assert prompt[1] == {"type": "image", "data": "aGk=", "mimeType": "image/png"}


async def test_models_are_listed_and_set_and_an_unknown_one_fails(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        listed = await h.outcome(await h.send("reconfigure", {"list_models": True}))
        assert listed["result"] == {"models": [{"model_id": "m1", "name": "One"}, {"model_id": "m2", "name": "Two"}],
                                    "current": "m1"}
        chosen = await h.outcome(await h.send("reconfigure", {"model": {"model_id": "m2"}}))
        assert chosen["result"]["model"] == "m2" and h.link.of("session")[-1]["metadata"]["model"] == "m2"
        unknown = await h.outcome(await h.send("reconfigure", {"model": {"model_id": "m9"}}))
        assert unknown["failure"] == "execution_failed" and "unknown model" in unknown["reason"]


async def test_new_session_bumps_the_generation(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        before, old = h.slot.generation, h.slot.session_id
        done = await h.outcome(await h.send("session-management", {"action": "new_session"}))
        assert done["result"]["generation"] == before + 1 and done["result"]["acp_session_id"] != old
        assert h.link.of("session")[-1]["generation"] == before + 1
        compact = await h.send("session-management", {"action": "compact"})
        assert (await h.outcome(compact))["failure"] == "unsupported_command"


async def test_interrupt_kills_an_agent_that_ignores_the_cancel(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        command = await h.say("HANG")
        await h.link.wait_until(lambda: h.observations("assistant_delta"))
        pid = h.slot.child.pid
        await h.send("interrupt", {})
        done = await h.outcome(command)
        assert done["state"] == "cancelled" and "interrupted by" in done["reason"]
        await h.live()
        assert h.slot.child.pid != pid


async def test_shutdown_terminates_an_agent_that_ignores_a_closed_stdin(tmp_path: Path) -> None:
    async with harness(tmp_path, stubborn=True) as h:
        child = h.slot.child
        with trio.fail_after(10):
            code = await child.close(0.2)
        assert code == -signal.SIGTERM
        try:
            os.killpg(child.pid, 0)
            group_alive = True
        except ProcessLookupError:
            group_alive = False
        assert not group_alive


async def test_an_agent_left_running_by_a_killed_adapter_is_reaped_at_the_next_start(tmp_path: Path) -> None:
    orphan = await trio.lowlevel.open_process(["sleep", "300"], start_new_session=True)
    try:
        started = started_at(orphan.pid)
        assert started is not None
        state = SlotState.load(tmp_path / "state", "main")
        state.agent = (orphan.pid, started)
        state.save()
        assert not kill_orphaned_group(orphan.pid, started + 1)  # another start time: another process
        async with harness(tmp_path) as h:
            with trio.fail_after(10):
                assert await orphan.wait() == -signal.SIGKILL
            assert any(f"stopped agent pid {orphan.pid}" in n["text"] for n in h.observations("notice"))
            assert SlotState.load(tmp_path / "state", "main").agent == (h.slot.child.pid, started_at(h.slot.child.pid))
        assert SlotState.load(tmp_path / "state", "main").agent is None  # a clean stop forgets it
    finally:
        if orphan.returncode is None:
            orphan.kill()
            await orphan.wait()
