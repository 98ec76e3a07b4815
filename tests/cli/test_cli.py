"""The ``patchbay`` CLI client against a real ``serve`` and a real shell adapter.

One deployment for the module; tests run in order and the lockdown test, which logs everyone
out and restarts the server, is last. Exit codes are the contract: 0 ok, 1 local/transport
error, 2 rejected before acceptance, 3 non-success terminal state, 4 outcome unknown.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from patchbay.journal import JournalStore
from tests.cli.proxy import SwallowingProxy
from tests.support.processes import (
    PASSWORD,
    Api,
    Deployment,
    Proc,
    patchbay_argv,
    run_cli,
    wait_for,
)
from tests.web.browser import Browser, audit
from tests.web.test_browser_access import assert_absent_from_journal

pytestmark = pytest.mark.slow

TARGET = "shell-1/demo"


class Cli:
    """Runs ``patchbay`` with the deployment's environment (optionally another login file)."""

    def __init__(self, deploy: Deployment, config: Path | None = None) -> None:
        self.deploy = deploy
        self.env = dict(deploy.env)
        if config is not None:
            self.env["PATCHBAY_CLI_CONFIG"] = str(config)

    @property
    def config(self) -> Path:
        return Path(self.env["PATCHBAY_CLI_CONFIG"])

    def __call__(self, *args: str, stdin: str | None = None, code: int | None = 0) -> subprocess.CompletedProcess[str]:
        result = run_cli(self.env, *args, stdin=stdin)
        if code is not None:
            assert result.returncode == code, (args, result.returncode, result.stdout, result.stderr)
        return result

    def json(self, *args: str, code: int | None = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)

    def login_data(self) -> dict[str, Any]:
        return dict(json.loads(self.config.read_text()))

    def login(self) -> dict[str, Any]:
        self("login", "--url", self.deploy.url, "--password-stdin", stdin=PASSWORD + "\n")
        return dict(json.loads(self.config.read_text()))


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("cli"))
    try:
        d.serve()
        d.shell_adapter()
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def cli(deploy: Deployment) -> Cli:
    main = Cli(deploy)
    main.login()
    Api(deploy.url, json.loads(main.config.read_text())["token"]).wait_session(TARGET, "live")
    return main


def api_of(cli: Cli) -> Api:
    return Api(cli.deploy.url, json.loads(cli.config.read_text())["token"])


def test_login_writes_a_private_file_atomically(deploy: Deployment) -> None:
    folder = deploy.tmp / "other-config"
    folder.mkdir()
    path = folder / "cli.json"
    path.write_text("left over from an old install\n")
    os.chmod(path, 0o644)
    other = Cli(deploy, path)
    refused = other("login", "--url", deploy.url, "--password-stdin", stdin="wrong-password\n", code=2)
    assert "login refused" in refused.stderr and path.read_text() == "left over from an old install\n"

    saved = other.login()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # replaced, not rewritten in place
    assert set(saved) == {"url", "token", "session_id", "endpoint_id"} and saved["url"] == deploy.url
    assert PASSWORD not in path.read_text()
    assert sorted(p.name for p in folder.iterdir()) == ["cli.json"]  # no temporary file left behind
    assert other.json("sessions") is not None
    other("logout")
    assert not path.exists()


def test_sessions_send_inspect_commands_audit_and_exit_codes(cli: Cli) -> None:
    listed = cli.json("sessions")
    demo = next(s for s in listed if s["target"] == TARGET)
    for field in ("adapter_id", "runtime_session_id", "generation", "connectivity", "activity", "label"):
        assert field in demo
    assert demo["connectivity"] == "live"
    assert TARGET in cli("sessions").stdout

    done = cli.json("send", TARGET, "echo hello-cli", "--wait")
    assert (done["state"], done["failure"], done["result"]["output"]) == ("completed", None, "hello-cli\n")
    for field in ("command_id", "idempotency_key", "kind", "target", "generation", "revision", "elicitations"):
        assert field in done
    failed = cli("send", TARGET, "exit 3", "--wait", code=3)
    assert "failed (execution_failed) — exit code 3" in failed.stderr and failed.stdout == ""
    unknown_target = cli.json("send", "shell-1/nowhere", "echo x", code=2)
    assert (unknown_target["outcome"], unknown_target["failure"]) == ("rejected", "target_not_found")

    first = cli("send", TARGET, "echo once", "--command-id", "cli-once", "--idempotency-key", "key-once", "--wait")
    again = cli("send", TARGET, "echo once", "--command-id", "cli-once", "--idempotency-key", "key-once")
    assert first.stdout == "once\n" and "completed" in first.stderr and "duplicate of command cli-once" in again.stdout
    reused = cli.json("send", TARGET, "echo other", "--command-id", "cli-twice", "--idempotency-key", "key-once",
                      code=2)
    assert reused["failure"] == "validation_failed"

    assert cli.json("inspect", "cli-once")["command_id"] == "cli-once"
    assert cli.json("inspect", "--key", "key-once")["state"] == "completed"
    assert "never accepted" in cli("inspect", "--key", "key-never-used", code=2).stdout
    assert cli("inspect", "no-such-command", code=2).returncode == 2
    listed_commands = cli.json("commands", "--session", TARGET)
    assert {"cli-once", done["command_id"]} <= {c["command_id"] for c in listed_commands}
    assert "cli-once" in cli("commands").stdout
    kinds = {r["kind"] for r in cli.json("audit", "--limit", "200")}
    assert {"command.accepted", "login.succeeded", "submission.refused"} <= kinds
    assert "login.succeeded" in cli("audit", "--kind", "login.succeeded", "--limit", "3").stdout


def test_transport_errors_and_missing_login_are_local_errors(cli: Cli, deploy: Deployment) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    nowhere = deploy.tmp / "nowhere.json"
    nowhere.write_text(json.dumps({**json.loads(cli.config.read_text()), "url": f"http://127.0.0.1:{closed_port}"}))
    unreachable = Cli(deploy, nowhere)
    assert "cannot reach" in unreachable("sessions", code=1).stderr
    assert "cannot reach" in unreachable("send", TARGET, "echo never-sent", code=1).stderr  # never sent: not unknown
    missing = Cli(deploy, deploy.tmp / "absent.json")
    assert "not logged in" in missing("sessions", code=1).stderr


def test_cancel_and_interrupt_stop_running_commands(cli: Cli) -> None:
    api = api_of(cli)
    for verb in ("cancel", "interrupt"):
        long = cli.json("send", TARGET, "sleep 30")["command_id"]
        api.wait_state(long, "running")
        stop = cli.json(verb, long, "--wait")
        assert (stop["kind"], stop["state"]) == (verb, "completed")
        ended = cli.json("inspect", long, code=3)
        assert ended["terminal"] and ended["state"] != "completed", verb


def test_watch_resumes_from_a_cursor_or_starts_with_a_snapshot(cli: Cli, deploy: Deployment) -> None:
    head = api_of(cli).http.get("/api/sessions").json()["lsn"]
    watcher = Proc(patchbay_argv("watch", "--from", str(head), "--json"), cli.env, deploy.tmp / "watch.log")
    try:
        hello = json.loads(watcher.wait_line(re.compile(r'"type": "hello"')).string)
        assert (hello["verdict"], hello["cursor"]) == ("ok", head)
        sent = cli.json("send", TARGET, "echo watched")["command_id"]
        watcher.wait_line(re.compile(rf'"command_id": "{sent}"'))
    finally:
        watcher.stop()
    fresh = Proc(patchbay_argv("watch"), cli.env, deploy.tmp / "watch-fresh.log")
    try:
        assert fresh.wait_line(re.compile(r"# resume verdict: (\w+)")).group(1) == "snapshot"
        fresh.wait_line(re.compile(r"# snapshot at LSN \d+: 1 sessions"))
    finally:
        fresh.stop()


def test_grants_add_list_revoke_and_revocation_policies(cli: Cli) -> None:
    api = api_of(cli)
    default = cli.json("grants", "list")
    assert len(default) == 1 and default[0]["scope"] == {"type": "all"}
    assert "grant-" in cli("grants", "list").stdout

    only_demo = cli.json("grants", "add", "--scope", f"session:{TARGET}", "--kind", "instruct",
                         "--revocation-policy", "cancel")
    assert only_demo["scope"] == {"type": "session", "target": TARGET} and only_demo["kinds"] == ["instruct"]
    earlier = cli.json("send", TARGET, "echo under-default", "--wait")
    cli("grants", "revoke", default[0]["grant_id"])  # policy continue: nothing it authorized changes
    assert cli.json("inspect", earlier["command_id"])["revision"] == earlier["revision"]

    busy = cli.json("send", TARGET, "sleep 30")["command_id"]
    api.wait_state(busy, "running")
    queued_cancel = cli.json("send", TARGET, "echo queued-cancel")["command_id"]
    cli("grants", "revoke", only_demo["grant_id"])
    cancelled = cli.json("inspect", queued_cancel, code=3)
    assert (cancelled["state"], cancelled["failure"]) == ("cancelled", "cancelled")
    stopped = api.wait_state(busy, "cancelled", "failed")  # the adapter was asked to stop it
    assert stopped["terminal"]
    denied = cli.json("send", TARGET, "echo no-grant", code=2)
    assert denied["failure"] == "authorization_denied"

    reauth = cli.json("grants", "add", "--kind", "instruct", "--revocation-policy", "require-reauthorization")
    blocker = cli.json("send", TARGET, "sleep 30")["command_id"]
    api.wait_state(blocker, "running")
    queued_reauth = cli.json("send", TARGET, "echo queued-reauth")["command_id"]
    cli("grants", "revoke", reauth["grant_id"])
    failed = cli.json("inspect", queued_reauth, code=3)
    assert (failed["state"], failed["failure"]) == ("failed", "authorization_denied")
    assert cli.json("inspect", blocker)["state"] == "running"  # this policy leaves running commands

    keep = cli.json("grants", "add", "--scope", "adapter:shell-1", "--kind", "instruct", "--kind", "cancel",
                    "--expires-in", "600")
    assert keep["expires_at"] is not None and keep["revocation_policy"] == "continue"
    queued_keep = cli.json("send", TARGET, "echo queued-continue")["command_id"]
    cli("grants", "revoke", keep["grant_id"])
    assert not cli.json("inspect", queued_keep)["terminal"]
    wrong = cli("grants", "add", "--kind", "no-such-kind", code=2)
    assert "no-such-kind" in wrong.stderr

    everything = ["instruct", "cancel", "interrupt", "query", "approval-response", "elicitation-response",
                  "reconfigure", "session-management", "spawn", "attach"]
    cli("grants", "add", *[arg for kind in everything for arg in ("--kind", kind)])
    cli("cancel", blocker, "--wait")
    assert api.wait_state(queued_keep, "completed")["result"]["output"] == "queued-continue\n"
    kinds = [r["kind"] for r in audit(api.http, "grant.created", "grant.revoked")]
    assert kinds.count("grant.revoked") == 4 and kinds.count("grant.created") == 5


def test_revoke_session_and_endpoint_from_the_cli(cli: Cli, deploy: Deployment) -> None:
    second, third = Cli(deploy, deploy.tmp / "second.json"), Cli(deploy, deploy.tmp / "third.json")
    second_login, third_login = second.login(), third.login()
    browser = Browser(deploy.url)
    overview = cli.json("security")
    endpoints = {e["endpoint_id"]: e for e in overview["endpoints"]}
    assert endpoints[second_login["endpoint_id"]]["kind"] == "cli" and not endpoints[second_login["endpoint_id"]]["current"]
    assert [s for s in overview["operator_sessions"] if s["current"]][0]["endpoint_id"] == cli.login_data()["endpoint_id"]
    assert browser.session_id in cli("security").stdout
    cli("revoke", "endpoint", second_login["endpoint_id"])
    assert "log in again" in second("sessions", code=1).stderr
    cli("revoke", "session", third_login["session_id"])
    assert "log in again" in third("sessions", code=1).stderr
    cli("revoke", "session", browser.session_id)
    assert browser.get("/api/me").status_code == 401
    assert cli.json("sessions")  # the revoking CLI itself is untouched
    assert cli("revoke", "session", "ses-unknown", code=2).returncode == 2


def test_a_server_killed_between_send_and_answer_gives_unknown_then_reconciles(cli: Cli, deploy: Deployment) -> None:
    port = int(deploy.url.rsplit(":", 1)[1])
    assert deploy.serve_proc is not None
    browser = Browser(deploy.url)
    waiting = Proc(patchbay_argv("send", TARGET, "sleep 30", "--command-id", "cli-waiting", "--wait"), cli.env,
                   deploy.tmp / "waiting.log")
    http = api_of(cli).http
    wait_for(lambda: http.get("/api/commands/cli-waiting").json().get("state") == "running", timeout=30,
             what="cli-waiting running")
    proxy = SwallowingProxy(port, deploy.serve_proc.kill)
    via_proxy = deploy.tmp / "via-proxy.json"
    via_proxy.write_text(json.dumps({**json.loads(cli.config.read_text()), "url": f"http://127.0.0.1:{proxy.port}"}))
    unknown = Cli(deploy, via_proxy)("send", TARGET, "echo reconciled", "--command-id", "cli-kill",
                                     "--idempotency-key", "key-kill", code=4)
    proxy.join()
    assert b"POST /api/commands" in proxy.request and b"200" in proxy.swallowed.split(b"\r\n")[0]
    assert "outcome unknown" in unknown.stderr and "failed" not in unknown.stderr
    assert "patchbay inspect --key key-kill" in unknown.stderr
    assert "--command-id cli-kill --idempotency-key key-kill" in unknown.stderr
    assert waiting.process.wait(timeout=60) == 4  # accepted, then the stream died: its outcome is unknown
    waiting.stop()
    assert any("follow with: patchbay inspect cli-waiting" in line for line in waiting.lines)

    deploy.serve(listen=f"127.0.0.1:{port}")  # same port: the adapter and the CLI login find it again
    assert browser.get("/api/me").json()["session_id"] == browser.session_id  # a restart logs nobody out
    cli("cancel", "cli-waiting")  # it kept running on the adapter; it would hold the workspace
    found = cli.json("inspect", "--key", "key-kill")
    assert found["command_id"] == "cli-kill" and found["state"] not in ("rejected", "failed")
    retried = cli.json("send", TARGET, "echo reconciled", "--command-id", "cli-kill", "--idempotency-key",
                       "key-kill", "--wait")
    assert (retried["state"], retried["result"]["output"]) == ("completed", "reconciled\n")
    assert len([c for c in cli.json("commands") if c["idempotency_key"] == "key-kill"]) == 1


def test_the_journal_holds_no_secrets_and_the_audit_no_prompt_bodies(cli: Cli, deploy: Deployment) -> None:
    api = api_of(cli)
    browser = Browser(deploy.url)
    accepted_body, refused_body = "true prompt-body-marker-7d1e", "echo refused-body-marker-4c2a"
    accepted = cli.json("send", TARGET, accepted_body, "--wait")
    assert accepted["state"] == "completed"
    cli("send", "shell-1/nowhere", refused_body, code=2)
    tokens = {f"token {p.name}": json.loads(p.read_text())["token"]
              for p in deploy.tmp.glob("*.json") if p.exists() and "token" in p.read_text()}
    assert tokens
    assert_absent_from_journal(deploy.home, {
        "password": PASSWORD, "cookie": browser.cookie.value, "csrf": browser.csrf, "refused prompt": refused_body,
        "adapter credential": (deploy.home / "adapters" / "shell-1.credential").read_text().strip(), **tokens})

    store = JournalStore.open(deploy.home / "journal.db", read_only=True)
    try:
        holding = {e.kind for e in store.read() if "prompt-body-marker-7d1e" in json.dumps(e.payload)}
    finally:
        store.close()
    assert holding == {"command.accepted"}  # the accepted command itself, needed to deliver it after a restart
    everything = json.dumps(api.http.get("/api/audit", params={"limit": 500}).json())
    assert "prompt-body-marker" not in everything and "refused-body-marker" not in everything
    assert PASSWORD not in everything


def test_lockdown_rejects_survives_restart_and_exits_only_locally(cli: Cli, deploy: Deployment) -> None:
    declined = cli("lockdown", "enter", "--reason", "drill", stdin="n\n", code=1)
    assert "Continue?" in declined.stdout + declined.stderr
    assert httpx.get(deploy.url + "/api/status").json()["lockdown"] is False

    cli("lockdown", "enter", "--reason", "drill", "--yes")
    assert "log in again" in cli("sessions", code=1).stderr  # lockdown ended every operator session
    cli.login()  # a fresh login is allowed; commands are not
    assert next(s for s in cli.json("sessions") if s["target"] == TARGET)["connectivity"] == "stale"
    assert cli.json("send", TARGET, "echo locked", code=2)["failure"] == "authorization_denied"

    http = api_of(cli).http
    for method, path in [("POST", "/api/lockdown/exit"), ("DELETE", "/api/lockdown"), ("PUT", "/api/lockdown")]:
        assert http.request(method, path, json={}).status_code in (404, 405), (method, path)
    assert http.post("/api/lockdown", json={"reason": "again", "active": False}).json()["active"] is True

    assert deploy.serve_proc is not None
    port = deploy.url.rsplit(":", 1)[1]
    deploy.serve_proc.kill(signal.SIGTERM)  # an orderly stop; the deployment closes its log later
    deploy.serve(listen=f"127.0.0.1:{port}")
    assert httpx.get(deploy.url + "/api/status").json()["lockdown"] is True
    assert cli.json("send", TARGET, "echo still-locked", code=2)["failure"] == "authorization_denied"

    assert "lockdown exited" in cli("lockdown", "exit", "--home", str(deploy.home)).stdout
    assert httpx.get(deploy.url + "/api/status").json()["lockdown"] is False
    api_of(cli).wait_session(TARGET, "live")
    assert cli.json("send", TARGET, "echo unlocked", "--wait")["state"] == "completed"
    kinds = [r["kind"] for r in cli.json("audit", "--kind", "lockdown.entered,lockdown.exited")]
    assert kinds == ["lockdown.exited", "lockdown.entered"]

    assert "revoked" in cli("revoke", "all-sessions").stdout
    assert "log in again" in cli("sessions", code=1).stderr
