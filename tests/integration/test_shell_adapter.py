"""`patchbay serve` + `patchbay adapter run shell` as real processes on loopback."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.integration._liveness import alive
from tests.support.processes import deployment, run_cli, wait_for

pytestmark = pytest.mark.slow


def test_commands_run_stream_output_queue_cancel_and_retry_once(tmp_path: Path) -> None:
    with deployment(tmp_path) as d:
        d.serve()
        d.shell_adapter()
        api = d.api()
        api.wait_session("shell-1/demo", "live")

        ok = api.submit("ok-1", "echo hello; echo err >&2")
        assert ok["outcome"] == "accepted"
        done = api.wait_state("ok-1", "completed")
        assert done["result"]["exit_code"] == 0 and "hello" in done["result"]["output"] and "err" in done["result"]["output"]
        transcript = api.http.get("/api/sessions/shell-1/demo/transcript").json()["events"]
        assert any(e["payload"].get("observation", {}).get("text", "").startswith("hello") for e in transcript)

        api.submit("fail-1", "exit 7")
        failed = api.wait_state("fail-1", "failed")
        assert (failed["failure"], failed["result"]["exit_code"]) == ("execution_failed", 7)

        api.submit("sleep-1", "sleep 30")
        api.wait_state("sleep-1", "running")
        queued = api.submit("after-1", "echo after")
        assert queued["command"]["state"] in ("accepted", "delivered")
        assert api.wait_state("after-1", "delivered")["state"] == "delivered"  # waits behind the sleep
        cancel = api.submit("cancel-1", kind="cancel", payload={"command_id": "sleep-1"})
        assert cancel["outcome"] == "accepted"
        assert api.wait_state("sleep-1", "cancelled")["failure"] == "cancelled"
        assert api.wait_state("after-1", "completed")["result"]["output"] == "after\n"

        marker = tmp_path / "side-effect"
        text = f"echo x >> {marker}"
        first = api.submit("once-1", text, key="once-key")
        second = api.submit("once-1", text, key="once-key")
        assert first["outcome"] == second["outcome"] == "accepted"
        assert second["reason"].startswith("duplicate")
        api.wait_state("once-1", "completed")
        third = api.submit("once-1", text, key="once-key")
        assert third["command"]["state"] == "completed"
        assert marker.read_text() == "x\n"


def test_unsupported_kind_is_rejected_by_the_adapter_at_delivery(tmp_path: Path) -> None:
    with deployment(tmp_path) as d:
        d.serve()
        d.shell_adapter()
        api = d.api()
        api.wait_session("shell-1/demo", "live")
        api.submit("reconf", kind="reconfigure", payload={"thinking_level": "high"})
        rejected = api.wait_state("reconf", "rejected")
        assert rejected["failure"] == "unsupported_command"


def test_killed_adapter_settles_its_command_and_the_session_goes_stale_then_offline(tmp_path: Path) -> None:
    with deployment(tmp_path, timeouts={"stale_after": 2.0, "offline_after": 2.0, "heartbeat_interval": 0.25}) as d:
        d.serve()
        adapter = d.shell_adapter()
        api = d.api()
        api.wait_session("shell-1/demo", "live")
        api.submit("long", "sleep 60")
        api.wait_state("long", "running")
        api.submit("behind", "echo never")
        api.wait_state("behind", "delivered")
        adapter.kill(signal.SIGKILL)
        api.wait_session("shell-1/demo", "stale", timeout=10)
        settled = api.wait_state("long", "failed", timeout=10)
        assert settled["failure"] == "execution_outcome_unknown"
        behind = api.wait_state("behind", "failed", timeout=10)
        assert behind["failure"] == "adapter_unavailable"
        # the bound, on the core's own clock: settled offline_after (2 s) after the loss
        lost = api.http.get("/api/audit", params={"kind": "adapter.detached,adapter.failed"}).json()["records"][0]
        assert 2.0 <= settled["history"][-1]["ts"] - lost["ts"] <= 2.0 + 2.0
        assert api.sessions()["shell-1/demo"]["connectivity"] == "offline"
        refused = api.submit("later", "echo")
        assert (refused["outcome"], refused["failure"]) == ("rejected", "target_offline")


def test_killed_core_records_the_outcome_exactly_once_after_restart(tmp_path: Path) -> None:
    with deployment(tmp_path) as d:
        url = d.serve()
        port = url.rsplit(":", 1)[1]
        d.shell_adapter()
        api = d.api()
        api.wait_session("shell-1/demo", "live")
        marker = tmp_path / "ran"
        api.submit("across", f"sleep 2; echo done >> {marker}")
        api.wait_state("across", "running")
        queued_marker = tmp_path / "queued-ran"
        api.submit("queued-across", f"echo q >> {queued_marker}")
        api.wait_state("queued-across", "delivered")
        assert d.serve_proc is not None
        d.serve_proc.kill(signal.SIGKILL)
        d.serve(listen=f"127.0.0.1:{port}")
        api = d.api()
        final = api.wait_state("across", "completed", "failed", timeout=40)
        assert final["state"] == "completed", final
        assert marker.read_text() == "done\n"
        # redelivered on re-attach (at least once), run once (the adapter deduplicates by id)
        assert api.wait_state("queued-across", "completed")["result"]["output"] == ""
        assert queued_marker.read_text() == "q\n"
        completions = [h for h in final["history"] if h["state"] == "completed"]
        assert len(completions) == 1
        result = run_cli(d.env, "replay", str(d.home / "journal.db"), "--check")
        assert result.returncode == 0, result.stdout


def test_second_adapter_credential_cannot_report_for_the_first(tmp_path: Path) -> None:
    import json

    import trio
    from trio_websocket import open_websocket_url

    with deployment(tmp_path) as d:
        d.serve()
        d.shell_adapter("shell-1")
        intruder_credential = d.add_adapter("shell-2").read_text().strip()
        api = d.api()
        api.wait_session("shell-1/demo", "live")
        api.submit("victim", "sleep 5")
        api.wait_state("victim", "running")

        async def intrude() -> list[dict[str, object]]:
            ws_url = d.url.replace("http://", "ws://") + "/adapter/v1"
            async with open_websocket_url(ws_url) as ws:
                await ws.send_message(json.dumps({
                    "type": "hello", "protocol": 1, "adapter_id": "shell-1", "credential": intruder_credential,
                    "adapter_generation": 99, "deployment_scope": "x", "manifest": {"kinds": []}}))
                refused = json.loads(await ws.get_message())
            async with open_websocket_url(ws_url) as ws:
                await ws.send_message(json.dumps({
                    "type": "hello", "protocol": 1, "adapter_id": "shell-2", "credential": intruder_credential,
                    "adapter_generation": 1, "deployment_scope": "x", "manifest": {"kinds": []}}))
                assert json.loads(await ws.get_message())["type"] == "welcome"
                answers = [refused]
                for frame in (
                    {"type": "report", "seq": 1, "command_id": "victim", "state": "completed"},
                    {"type": "session", "seq": 2, "runtime_session_id": "demo", "generation": 5},
                    {"type": "observation", "seq": 3, "runtime_session_id": "demo", "generation": 1,
                     "observation": {"type": "output", "text": "spoofed"}},
                ):
                    await ws.send_message(json.dumps(frame))
                    answers.append(json.loads(await ws.get_message()))
                return answers

        answers = trio.run(intrude)
        assert answers[0]["type"] == "error" and answers[0]["code"] == "attach_refused"
        assert answers[1]["type"] == "error"
        assert answers[3]["type"] == "error"
        assert api.command("victim")["state"] == "running"
        sessions = api.sessions()
        assert sessions["shell-1/demo"]["generation"] == 1 and sessions["shell-1/demo"]["adapter_id"] == "shell-1"
        assert "shell-2/demo" in sessions  # its own namespace only
        audit = api.http.get("/api/audit", params={"kind": "adapter.protocol_error"}).json()["records"]
        assert any("bad credential" in r["details"]["reason"] for r in audit)
        wait_for(lambda: api.command("victim")["state"] == "completed", timeout=20, what="victim completes")


def test_a_newer_adapter_process_takes_over_and_the_old_one_exits_clearly(tmp_path: Path) -> None:
    with deployment(tmp_path) as d:
        d.serve()
        old = d.shell_adapter()
        api = d.api()
        api.wait_session("shell-1/demo", "live")
        job_pid_file = tmp_path / "old-job.pid"
        api.submit("old-job", f"echo $$ > {job_pid_file}; exec sleep 30")
        api.wait_state("old-job", "running")
        job_pid = int(wait_for(lambda: job_pid_file.exists() and job_pid_file.read_text().strip(), what="job"))
        api.submit("queued-old", "echo ran under the new process")
        api.wait_state("queued-old", "delivered")  # queued in the old process, behind old-job
        new = d.shell_adapter()  # same id and credential: adapter generation 2
        assert old.process.wait(timeout=30) == 1
        old.pump()
        assert any("older than the attached generation 2" in line for line in old.lines), old.lines[-5:]
        assert not alive(job_pid)  # the old process stopped its job before it exited
        lost = api.wait_state("old-job", "failed")
        assert lost["failure"] == "execution_outcome_unknown"  # it may have run under the old process
        redelivered = api.wait_state("queued-old", "completed")  # redelivered to the new process
        assert redelivered["result"]["output"] == "ran under the new process\n"
        api.submit("new-job", "echo fresh")
        assert api.wait_state("new-job", "completed")["result"]["output"] == "fresh\n"
        adapters = {a["adapter_id"]: a for a in api.http.get("/api/adapters").json()["adapters"]}
        assert adapters["shell-1"]["adapter_generation"] == 2 and adapters["shell-1"]["attached"]
        assert new.process.poll() is None


def test_a_frozen_adapter_is_detected_by_silence_and_its_late_outcome_never_rewrites(tmp_path: Path) -> None:
    with deployment(tmp_path, timeouts={"stale_after": 2.0, "offline_after": 1.0, "heartbeat_interval": 0.25}) as d:
        d.serve()
        adapter = d.shell_adapter()
        api = d.api()
        api.wait_session("shell-1/demo", "live")
        api.submit("frozen", "sleep 4; echo finished")
        api.wait_state("frozen", "running")
        adapter.process.send_signal(signal.SIGSTOP)  # alive, connected, silent
        try:
            api.wait_session("shell-1/demo", "stale", timeout=15)
            settled = api.wait_state("frozen", "failed", timeout=15)
            assert settled["failure"] == "execution_outcome_unknown"
            failed = api.http.get("/api/audit", params={"kind": "adapter.failed"}).json()["records"]
            assert failed and "heartbeat lost" in failed[0]["details"]["reason"]
        finally:
            adapter.process.send_signal(signal.SIGCONT)
        api.wait_session("shell-1/demo", "live", timeout=30)  # the same process re-attaches
        late = wait_for(lambda: (c := api.command("frozen"))["late_outcomes"] and c, timeout=30, what="late outcome")
        assert late["state"] == "failed" and late["failure"] == "execution_outcome_unknown"  # first terminal wins
        assert late["late_outcomes"][0]["candidate_state"] == "completed"
        api.submit("after-thaw", "echo thawed")
        assert api.wait_state("after-thaw", "completed")["result"]["output"] == "thawed\n"
        result = run_cli(d.env, "replay", str(d.home / "journal.db"), "--check")
        assert result.returncode == 0, result.stdout
