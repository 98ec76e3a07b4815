"""Real ACP agents end to end: real `patchbay serve`, real `patchbay adapter run acp`, the agents
from npm (pinned in tools/acp/package.json), each against the fake LLM server of its dialect.

One deployment per agent is shared by that agent's scenarios (agents take seconds to start);
they run in file order and leave the slot idle; the last one restarts the adapter.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from patchbay_adapters.common.child import started_at

from tests.acp.fake_llms import Anthropic, ChatCompletions, FakeServer, Gemini, Responses
from tests.support.processes import Api, Deployment, Proc, patchbay_argv, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ROOT / "tools" / "acp" / "node_modules"
BIN = AGENTS / ".bin"
TARGET = "acp-1/main"


@attrs.frozen
class Agent:
    name: str
    server: Callable[[], FakeServer]
    args: Callable[[Path, FakeServer], list[str]]
    package: str
    version: str
    resumes: bool  # session/load after a restart (else a new generation with a notice)


def claude_args(_tmp: Path, fake: FakeServer) -> list[str]:
    return ["--agent", "claude", "--agent-command", str(BIN / "claude-agent-acp"),
            "--agent-env", f"ANTHROPIC_BASE_URL={fake.url}", "--agent-env", "ANTHROPIC_API_KEY=fake-key"]


def codex_args(tmp: Path, fake: FakeServer) -> list[str]:
    home = tmp / "codex-home"
    home.mkdir(exist_ok=True)
    # A model Codex has no metadata for makes it say so in the reply; the test allows that prefix.
    (home / "config.toml").write_text(f"""model = "fake-model"
model_provider = "fake"
approval_policy = "untrusted"
sandbox_mode = "danger-full-access"

[model_providers.fake]
name = "fake"
base_url = "{fake.url}/v1"
wire_api = "responses"
env_key = "FAKE_API_KEY"
supports_websockets = false
""")
    return ["--agent", "codex", "--agent-command", str(BIN / "codex-acp"),
            "--agent-env", f"CODEX_HOME={home}", "--agent-env", "FAKE_API_KEY=fake-key"]


def opencode_args(tmp: Path, fake: FakeServer) -> list[str]:
    home = tmp / "opencode-home"
    xdg = {"XDG_CONFIG_HOME": home / ".config", "XDG_DATA_HOME": home / ".local" / "share",
           "XDG_CACHE_HOME": home / ".cache", "XDG_STATE_HOME": home / ".local" / "state"}
    for directory in xdg.values():
        directory.mkdir(parents=True, exist_ok=True)
    (xdg["XDG_CONFIG_HOME"] / "opencode").mkdir(exist_ok=True)
    (xdg["XDG_CONFIG_HOME"] / "opencode" / "opencode.json").write_text(json.dumps({
        "provider": {"fake": {"npm": "@ai-sdk/openai-compatible", "name": "Fake",
                              "options": {"baseURL": f"{fake.url}/v1", "apiKey": "fake-key"},
                              "models": {"fake-model": {"name": "Fake"}}}},
        "model": "fake/fake-model", "small_model": "fake/fake-model",
        "permission": {"bash": "ask", "edit": "ask"}}))
    args = ["--agent", "opencode", "--agent-command", f"{BIN / 'opencode'} acp", "--agent-env", f"HOME={home}"]
    for name, directory in xdg.items():
        args += ["--agent-env", f"{name}={directory}"]
    return args


def gemini_args(tmp: Path, fake: FakeServer) -> list[str]:
    home = tmp / "gemini-home"
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps({
        "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
        "privacy": {"usageStatisticsEnabled": False}, "telemetry": {"enabled": False}}))
    return ["--agent", "gemini", "--agent-command", f"{BIN / 'gemini'} --acp", "--agent-env", f"HOME={home}",
            "--agent-env", "GEMINI_API_KEY=fake-key", "--agent-env", f"GOOGLE_GEMINI_BASE_URL={fake.url}"]


CLAUDE = Agent("claude", Anthropic, claude_args, "@zed-industries/claude-agent-acp", "0.23.1", resumes=True)
CODEX = Agent("codex", Responses, codex_args, "@zed-industries/codex-acp", "0.16.0", resumes=True)
GEMINI = Agent("gemini", Gemini, gemini_args, "@google/gemini-cli", "0.61.0", resumes=False)
OPENCODE = Agent("opencode", ChatCompletions, opencode_args, "opencode-ai", "1.18.33", resumes=True)


@attrs.define
class World:
    agent: Agent
    d: Deployment
    fake: FakeServer
    api: Api
    tmp: Path
    workspace: Path
    adapter: Proc

    def start_adapter(self) -> Proc:
        credential = self.d.home / "adapters" / "acp-1.credential"
        args = ["adapter", "run", "acp", "--id", "acp-1", "--core", self.d.url, "--credential-file", str(credential),
                "--workspace", f"main:{self.workspace}", "--approval-timeout", "60",
                *self.agent.args(self.tmp, self.fake)]
        proc = Proc(patchbay_argv(*args), self.d.env, self.tmp / f"adapter-{len(self.d.procs)}.log")
        self.d.procs.append(proc)
        return proc

    def submit(self, command_id: str, text: str = "", *, kind: str = "instruct",
               payload: dict[str, Any] | None = None) -> None:
        answer = self.api.submit(command_id, text, kind=kind, payload=payload, target=TARGET)
        assert answer["outcome"] == "accepted", answer

    def observations(self, command_id: str, kind: str) -> list[dict[str, Any]]:
        page = self.api.http.get(f"/api/sessions/{TARGET}/transcript", params={"after": 0, "limit": 2000}).json()
        return [e["payload"]["observation"] for e in page["events"] if e["kind"] == "session.observation"
                and e["payload"].get("command_id") == command_id and e["payload"]["observation"]["type"] == kind]

    def elicitation(self, command_id: str) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            found = self.api.http.get("/api/elicitations", params={"state": "pending"}).json()["elicitations"]
            return next((e for e in found if e["command_id"] == command_id), None)
        return dict(wait_for(find, timeout=60, what=f"an elicitation for {command_id}"))

    def session(self) -> dict[str, Any]:
        return self.api.sessions()[TARGET]


@pytest.fixture(scope="module", params=[CLAUDE, CODEX, OPENCODE, GEMINI], ids=lambda agent: agent.name)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    agent: Agent = request.param
    manifest = json.loads((AGENTS / agent.package / "package.json").read_text())
    assert manifest["version"] == agent.version
    tmp = tmp_path_factory.mktemp(agent.name)
    workspace = tmp / "ws"
    workspace.mkdir()
    fake = agent.server()
    d = Deployment(tmp)
    try:
        d.serve()
        d.add_adapter("acp-1", kind="acp")
        world = World(agent, d, fake, d.api(), tmp, workspace, adapter=None)  # type: ignore[arg-type]
        began = time.monotonic()
        world.adapter = world.start_adapter()
        world.api.wait_session(TARGET, "live", timeout=120)
        print(f"{agent.name}: live {time.monotonic() - began:.1f} s after the adapter started")
        yield world
    finally:
        d.stop()
        fake.stop()


def test_a_prompt_streams_the_reply_and_completes(world: World) -> None:
    world.submit("say-1", "SAY:hello from the fake model")
    done = world.api.wait_state("say-1", "completed", "failed", "cancelled", timeout=90)
    assert done["state"] == "completed" and done["result"]["text"].endswith("hello from the fake model"), done
    assert [h["state"] for h in done["history"]] == ["accepted", "delivered", "running", "completed"]
    deltas = "".join(o["text"] for o in world.observations("say-1", "assistant_delta"))
    assert deltas == done["result"]["text"]
    replies = world.api.http.get("/api/audit", params={"kind": "reply.recorded"}).json()["records"]
    assert "say-1" in [r["details"]["correlates_id"] for r in replies]
    session = world.session()
    assert session["activity"] == "idle" and session["metadata"]["acp_session_id"]
    modes = session["metadata"]["modes"]
    if modes:  # the agent's session modes, switched with reconfigure
        world.submit("mode-1", kind="reconfigure", payload={"mode": modes[-1]})
        assert world.api.wait_state("mode-1", "completed", "failed", timeout=30)["result"]["mode"] == modes[-1]
        world.submit("mode-2", kind="reconfigure", payload={"mode": modes[0]})
        assert world.api.wait_state("mode-2", "completed", "failed", timeout=30)["state"] == "completed"
    steer = world.api.submit("steer-1", target=TARGET, payload={"text": "faster", "mode": "steer"})
    assert (steer["outcome"], steer["failure"]) == ("rejected", "unsupported_command")  # at acceptance


def test_an_approved_shell_tool_runs_and_a_denied_one_does_not(world: World) -> None:
    allowed, denied = world.workspace / "allowed.txt", world.workspace / "denied.txt"
    world.submit("tool-ok", f"BASH:echo yes > {allowed}")
    asked = world.elicitation("tool-ok")
    assert asked["kind"] == "approval" and str(allowed) in asked["title"] + asked["body"]
    assert len(asked["options"]) >= 2
    answer = world.api.http.post(f"/api/elicitations/{asked['elicitation_id']}", json={"decision": "approve"})
    assert answer.status_code == 200, answer.text
    done = world.api.wait_state("tool-ok", "completed", "failed", "cancelled", timeout=90)
    assert done["state"] == "completed" and "tool said:" in done["result"]["text"], done
    assert allowed.read_text() == "yes\n"
    assert world.observations("tool-ok", "tool_end")

    world.submit("tool-no", f"BASH:echo no > {denied}")
    asked = world.elicitation("tool-no")
    world.api.http.post(f"/api/elicitations/{asked['elicitation_id']}", json={"decision": "deny"}).raise_for_status()
    done = world.api.wait_state("tool-no", "completed", "failed", "cancelled", timeout=90)
    assert done["state"] in ("completed", "cancelled"), done
    assert not denied.exists()


def test_cancel_mid_stream_cancels_the_turn(world: World) -> None:
    world.submit("slow-1", "SLOW:" + "x" * 400)
    wait_for(lambda: world.observations("slow-1", "assistant_delta"), timeout=90, what="streaming")
    began = time.monotonic()
    world.submit("cancel-1", kind="cancel", payload={"command_id": "slow-1"})
    cancelled = world.api.wait_state("slow-1", "cancelled", "completed", "failed", timeout=30)
    print(f"{world.agent.name}: cancelled {time.monotonic() - began:.2f} s after the cancel was submitted")
    assert (cancelled["state"], cancelled["failure"]) == ("cancelled", "cancelled"), cancelled
    assert world.api.wait_state("cancel-1", "completed")["state"] == "completed"
    world.submit("after-cancel", "SAY:after the cancel")  # its own answer, not the cancelled turn's
    done = world.api.wait_state("after-cancel", "completed", "failed", "cancelled", timeout=90)
    assert done["state"] == "completed" and done["result"]["text"].endswith("after the cancel"), done
    wait_for(lambda: world.session()["activity"] == "idle", timeout=30, what="idle")


def test_a_killed_adapter_leaves_no_agent_behind_and_its_turn_ends_unknown(world: World) -> None:
    world.submit("inflight", "SLOW:" + "w" * 400)
    wait_for(lambda: world.observations("inflight", "assistant_delta"), timeout=90, what="streaming")
    agent_pid = world.session()["metadata"]["agent_pid"]
    world.adapter.kill(signal.SIGKILL)  # no cleanup: claude-agent-acp and codex-acp outlive a closed stdin
    world.adapter = world.start_adapter()
    lost = world.api.wait_state("inflight", "failed", "completed", "cancelled", timeout=90)
    assert (lost["state"], lost["failure"]) == ("failed", "execution_outcome_unknown"), lost
    wait_for(lambda: world.session()["connectivity"] == "live", timeout=120, what="the new adapter")
    wait_for(lambda: started_at(agent_pid) is None, timeout=30, what=f"the old agent {agent_pid} to be gone")


def test_after_an_adapter_restart_the_session_resumes_and_the_next_prompt_works(world: World) -> None:
    before = world.session()
    os.killpg(world.adapter.pid, signal.SIGTERM)
    assert world.adapter.process.wait(timeout=60) == -signal.SIGTERM
    offline = world.session()
    assert offline["connectivity"] == "offline" and "SIGTERM" in offline["metadata"]["offline_reason"]
    world.adapter = world.start_adapter()
    after = wait_for(lambda: (s := world.session())["connectivity"] == "live" and s["metadata"]["agent_pid"]
                     != before["metadata"]["agent_pid"] and s, timeout=120, what="the agent restarted")
    if world.agent.resumes:
        assert after["generation"] == before["generation"]
        assert after["metadata"]["acp_session_id"] == before["metadata"]["acp_session_id"]
    else:  # the agent could not load its session: a new one, a new generation, and a notice
        assert after["generation"] == before["generation"] + 1
        assert after["metadata"]["acp_session_id"] != before["metadata"]["acp_session_id"]
        page = world.api.http.get(f"/api/sessions/{TARGET}/transcript", params={"after": 0, "limit": 2000}).json()
        notices = [e["payload"]["observation"]["text"] for e in page["events"] if e["kind"] == "session.observation"
                   and e["payload"]["observation"]["type"] == "notice"]
        assert any("could not load session" in text for text in notices), notices
    world.submit("after-restart", "SAY:still here")
    done = world.api.wait_state("after-restart", "completed", "failed", timeout=90)
    assert done["result"]["text"].endswith("still here"), done
