"""The shell adapter's jobs and spawn, with real processes: bounded output, query, interrupt,
cancel escalating to SIGKILL, spawn under a lease, and the lease's end with its holder."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from patchbay_adapters.shell.runtime import OUTPUT_TAIL

from tests.support.processes import Api, deployment, run_cli, wait_for

pytestmark = pytest.mark.slow


def transcript_text(api: Api, target: str, command_id: str) -> str:
    after = api.command(command_id)["history"][0]["lsn"]
    events = api.http.get(f"/api/sessions/{target}/transcript", params={"after": after, "limit": 1000}).json()["events"]
    return "".join(e["payload"].get("observation", {}).get("text", "") for e in events
                   if e["payload"].get("command_id") == command_id)


def test_output_tail_query_interrupt_and_cancel_escalation(tmp_path: Path) -> None:
    with deployment(tmp_path) as d:
        d.serve()
        credential = d.add_adapter("shell-1")
        refused = run_cli(d.env, "adapter", "run", "shell", "--id", "shell-1", "--core", d.url,
                          "--credential-file", str(credential), "--cancel-grace", "-1")
        assert refused.returncode == 2 and "--cancel-grace" in refused.stderr
        d.shell_adapter(extra=["--cancel-grace", "0.5"])
        api = d.api()
        api.wait_session("shell-1/demo", "live")

        api.submit("big", "seq 1 30000")
        big = api.wait_state("big", "completed")
        output = big["result"]["output"]
        assert len(output.encode()) <= OUTPUT_TAIL and output.endswith("\n29999\n30000\n")
        assert wait_for(lambda: transcript_text(api, "shell-1/demo", "big").endswith("30000\n"), what="stream")
        assert transcript_text(api, "shell-1/demo", "big").startswith("1\n2\n3\n")  # streamed in full

        api.submit("busy", "echo started; while true; do sleep 0.1; done")
        api.wait_state("busy", "running")
        api.submit("q", kind="query", payload={})
        status = api.wait_state("q", "completed")["result"]
        assert (status["workspace"], status["activity"], status["running_command"]) == ("demo", "working", "busy")

        api.submit("int", kind="interrupt", payload={"command_id": "busy"})
        assert api.wait_state("int", "completed")["result"]["effect"] == "interrupted"
        interrupted = api.wait_state("busy", "cancelled", "failed", "completed")
        assert interrupted["state"] == "cancelled" and interrupted["result"]["exit_code"] != 0

        api.submit("stubborn", "trap '' TERM; echo ready; sleep 30")
        api.wait_state("stubborn", "running")
        wait_for(lambda: "ready" in transcript_text(api, "shell-1/demo", "stubborn"), what="trap installed")
        api.submit("stop", kind="cancel", payload={"command_id": "stubborn"})
        killed = api.wait_state("stubborn", "cancelled", "failed", "completed", timeout=30)
        assert killed["state"] == "cancelled" and killed["failure"] == "cancelled"
        assert killed["result"]["exit_code"] == -signal.SIGKILL  # SIGTERM was ignored: SIGKILL after grace
        wait_for(lambda: api.sessions()["shell-1/demo"]["activity"] == "idle", what="the workspace idle again")


def test_spawn_takes_an_exclusive_lease_that_ends_with_its_holder(tmp_path: Path) -> None:
    root = tmp_path / "spawn-root"
    root.mkdir()
    with deployment(tmp_path, timeouts={"stale_after": 2.0, "offline_after": 1.0, "heartbeat_interval": 0.25}) as d:
        d.serve()
        adapter = d.shell_adapter(extra=["--spawn-root", str(root)])
        api = d.api()
        api.wait_session("shell-1/demo", "live")

        api.submit("sp-1", kind="spawn", payload={"directory": "p1", "name": "p1"})
        spawned = api.wait_state("sp-1", "completed")["result"]
        assert spawned["target"] == "shell-1/p1" and spawned["directory"] == str((root / "p1").resolve())
        api.wait_session("shell-1/p1", "live")
        api.submit("in-p1", "pwd", target="shell-1/p1")
        assert api.wait_state("in-p1", "completed")["result"]["output"].strip() == str((root / "p1").resolve())

        leases = api.http.get("/api/leases").json()["leases"]
        held = [lease for lease in leases if lease["state"] == "held"]
        assert len(held) == 1 and held[0]["lease_id"] == spawned["lease_id"]
        assert held[0]["resource"] == f"dir:{(root / 'p1').resolve()}" and held[0]["holder"].startswith("adapter:shell-1#")

        api.submit("sp-2", kind="spawn", payload={"directory": "p1", "name": "other"})
        refused = api.wait_state("sp-2", "rejected", "failed", "completed")
        assert refused["state"] == "rejected" and held[0]["holder"] in refused["reason"]
        api.submit("sp-3", kind="spawn", payload={"directory": "../outside"})
        assert api.wait_state("sp-3", "rejected")["failure"] == "validation_failed"

        replayed = json.loads(run_cli(d.env, "replay", str(d.home / "journal.db"), "--json").stdout)
        assert [lease["lease_id"] for lease in replayed["held_leases"]] == [spawned["lease_id"]]
        text = run_cli(d.env, "replay", str(d.home / "journal.db")).stdout
        assert f"lease {spawned['lease_id']} held: dir:{(root / 'p1').resolve()}" in text

        adapter.kill(signal.SIGKILL)  # the holder disappears
        api.wait_session("shell-1/p1", "offline", timeout=20)
        lease = next(x for x in api.http.get("/api/leases").json()["leases"] if x["lease_id"] == spawned["lease_id"])
        assert lease["state"] == "released"
        audit = api.http.get("/api/audit", params={"kind": "lease.released"}).json()["records"]
        assert any("holder disappeared" in r["details"]["reason"] for r in audit)
        check = run_cli(d.env, "replay", str(d.home / "journal.db"), "--check")
        assert check.returncode == 0, check.stdout
