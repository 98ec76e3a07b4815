"""The CLI as a person uses it, against a real ``serve``, the shell adapter and the scripted one.

``send --wait`` streams output while the command runs and says what it waits for; approvals
and questions are listed and answered in words; ids work by unique prefix; errors name the
thing and the fix (never a route); ``audit --kind`` is validated; ``serve`` on a busy port
says so in one line.
"""

from __future__ import annotations

import os
import re
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_cli import Cli, api_of
from tests.support.processes import (
    PASSWORD,
    Deployment,
    Proc,
    environment,
    patchbay_argv,
    run_cli,
    wait_for,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHELL, CHAT = "shell-1/demo", "scripted-1/chat"
ROUTE = re.compile(r"\b(GET|POST|PUT|DELETE)\b|/api/")


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("cli-humane"))
    try:
        d.serve()
        d.shell_adapter()
        credential = d.add_adapter("scripted-1", kind="pi")
        d.procs.append(Proc([sys.executable, str(ROOT / "tests" / "support" / "scripted_adapter.py"), "--id",
                             "scripted-1", "--core", d.url, "--credential-file", str(credential)],
                            dict(d.env, PYTHONPATH=str(ROOT)), d.tmp / "scripted.log"))
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def cli(deploy: Deployment) -> Cli:
    main = Cli(deploy)
    main.login()
    api = api_of(main)
    api.wait_session(SHELL, "live", timeout=60)
    api.wait_session(CHAT, "live", timeout=60)
    return main


class Streams:
    """A child process whose stdout and stderr are read separately, incrementally, with bounds."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        start_new_session=True)
        self.text = {"stdout": "", "stderr": ""}
        self._selector = selectors.DefaultSelector()
        for name in ("stdout", "stderr"):
            pipe = getattr(self.process, name)
            os.set_blocking(pipe.fileno(), False)
            self._selector.register(pipe, selectors.EVENT_READ, name)

    def pump(self, timeout: float) -> None:
        for key, _ in self._selector.select(timeout):
            chunk = os.read(key.fileobj.fileno(), 65536)  # type: ignore[union-attr]
            if chunk:
                self.text[key.data] += chunk.decode()
            else:
                self._selector.unregister(key.fileobj)

    def wait_for(self, name: str, pattern: re.Pattern[str], timeout: float = 30.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = pattern.search(self.text[name])
            if found:
                return found
            left = deadline - time.monotonic()
            if left <= 0 or not self._selector.get_map():
                raise AssertionError(f"no {pattern.pattern!r} on {name} within {timeout} s: {self.text}")
            self.pump(min(left, 0.5))

    def finish(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while self._selector.get_map() and time.monotonic() < deadline:
            self.pump(0.5)
        return self.process.wait(timeout=max(deadline - time.monotonic(), 1))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


def test_send_wait_streams_output_while_the_command_runs(cli: Cli) -> None:
    api = api_of(cli)
    sending = Streams(patchbay_argv("send", SHELL, "echo first; sleep 3; echo second", "--wait"), cli.env)
    try:
        accepted = sending.wait_for("stderr", re.compile(r"(cmd-\w+) accepted → shell-1/demo"))
        seen_accepted = time.monotonic()
        command_id = accepted.group(1)
        sending.wait_for("stdout", re.compile(r"^first\n"), timeout=2.0)
        first_after = time.monotonic() - seen_accepted
        assert "second" not in sending.text["stdout"] and sending.process.poll() is None
        assert api.command(command_id)["state"] == "running"  # printed while still running
        assert sending.finish() == 0
    finally:
        sending.stop()
    assert first_after < 2.0
    assert sending.text["stdout"] == "first\nsecond\n"  # the output once, as text, nothing else
    assert f"{command_id} instruct → {SHELL} (generation 1): completed" in sending.text["stderr"]

    failed = cli("send", SHELL, "echo partial; exit 3", "--wait", code=3)
    assert failed.stdout == "partial\n" and "failed (execution_failed) — exit code 3" in failed.stderr
    as_json = cli.json("send", SHELL, "echo one-document", "--wait")  # --json stays one JSON document
    assert as_json["result"]["output"] == "one-document\n"
    replied = cli("send", CHAT, "tool", "--wait")  # an assistant's reply is text, not JSON
    assert replied.stdout == "Listed the directory\n" and "· tool bash" in replied.stderr


def test_a_waiting_approval_is_announced_listed_and_answered_in_words(cli: Cli) -> None:
    waiting = Streams(patchbay_argv("send", CHAT, "approve Allow bash?", "--wait"), cli.env)
    try:
        prompt = waiting.wait_for("stderr", re.compile(
            r"waiting for approval: Allow bash\? — patchbay approve (\S+) --allow"))
        eid = prompt.group(1)
        listed = cli.json("approvals")
        assert [(e["elicitation_id"], e["kind"], e["target"], e["title"]) for e in listed] == \
               [(eid, "approval", CHAT, "Allow bash?")]
        table = cli("approvals").stdout
        assert eid in table and "Allow bash?" in table and CHAT in table and "never" in table
        answered = cli("approve", eid[:12], "--allow")  # a unique prefix
        assert answered.stdout.startswith(f"allowed: Allow bash? on {CHAT}")
        assert waiting.finish() == 0
    finally:
        waiting.stop()
    assert "The operator chose **approve**." in waiting.text["stdout"]
    again = cli("approve", eid, "--deny", code=2)
    assert "already answered" in again.stderr and again.stdout == ""
    assert "nothing is waiting" in cli("approvals").stdout
    assert cli.json("approvals", "--all")[0]["state"] == "answered"

    asked = cli.json("send", CHAT, "ask Which branch?")["command_id"]
    question = wait_for(lambda: [e for e in cli.json("approvals") if e["command_id"] == asked], what="question")[0]
    wrong = cli("approve", question["elicitation_id"], "--allow", code=2)
    assert f"patchbay answer {question['elicitation_id']} TEXT" in wrong.stderr
    said = cli("answer", question["elicitation_id"], "release-2")
    assert said.stdout.startswith(f"answered 'release-2': Which branch? on {CHAT}")
    assert api_of(cli).wait_state(asked, "completed")["result"] == {"decision": "release-2"}


def test_ids_by_prefix_ambiguity_and_unknown_ids_in_words(cli: Cli) -> None:
    for suffix in ("a1", "b2"):
        cli("send", SHELL, f"echo {suffix}", "--command-id", f"cli-pfx-{suffix}", "--wait")
    outputs = []
    inspected = cli("inspect", "cli-pfx-a")  # unique prefix: text, timeline, output
    assert "cli-pfx-a1 instruct" in inspected.stdout and "text: echo a1" in inspected.stdout
    assert "timeline:" in inspected.stdout and "output:\na1" in inspected.stdout
    assert cli.json("inspect", "cli-pfx-b")["command_id"] == "cli-pfx-b2"
    ambiguous = cli("inspect", "cli-pfx", code=2)
    assert "cli-pfx matches 2 commands" in ambiguous.stderr
    assert "cli-pfx-a1" in ambiguous.stderr and "cli-pfx-b2" in ambiguous.stderr
    completed = subprocess.run([str(Path(sys.executable).parent / "patchbay")], env={**cli.env, "_PATCHBAY_COMPLETE": "bash_complete",
                                                     "COMP_WORDS": "patchbay inspect cli-pfx-", "COMP_CWORD": "2"},
                               capture_output=True, text=True, timeout=60)
    assert completed.stdout.split() == ["plain,cli-pfx-b2", "plain,cli-pfx-a1"]  # tab completes ids, newest first
    unknown = cli("inspect", "cmd-d504f0f", code=2)
    assert unknown.stderr.strip() == "error: no command cmd-d504f0f (check the id with patchbay commands)"
    short = cli("cancel", "cli-p", code=2)
    assert "at least 6 characters" in short.stderr
    outputs += [inspected, ambiguous, unknown, short]

    long = cli.json("send", SHELL, "sleep 30", "--command-id", "cli-long-running")["command_id"]
    api_of(cli).wait_state(long, "running")
    stopped = cli.json("cancel", "cli-long-r", "--wait")  # cancel by prefix
    assert (stopped["payload"], stopped["state"]) == ({"command_id": long}, "completed")
    outputs += [cli("approve", "eli-nowhere", "--allow", code=2), cli("answer", "eli-nowhere", "x", code=2),
                cli("grants", "revoke", "grant-nowhere", code=2), cli("revoke", "session", "ses-nowhere", code=2),
                cli("revoke", "endpoint", "end-nowhere", code=2), cli("interrupt", "cmd-nowhere", code=2)]
    assert "no elicitation eli-nowhere (check the id with patchbay approvals)" in outputs[-6].stderr
    assert "no grant grant-nowhere" in outputs[-4].stderr
    for args in (("inspect", "../sessions"), ("grants", "revoke", "../../lockdown")):  # never a path
        outputs.append(cli(*args, code=2))
        assert "id (letters, digits and . _ : - only)" in outputs[-1].stderr
    for result in outputs:
        assert not ROUTE.search(result.stdout + result.stderr), result
        assert "Traceback" not in result.stderr


def test_readable_commands_watch_and_audit_views(cli: Cli, deploy: Deployment) -> None:
    sent = cli.json("send", SHELL, "echo listed-in-the-table", "--wait")["command_id"]
    listing = cli("commands", "--session", SHELL).stdout
    row = next(line for line in listing.splitlines() if line.startswith(sent))  # the full id, never cut
    assert "echo listed-in-the-table" in row and "completed" in row

    head = api_of(cli).http.get("/api/sessions").json()["lsn"]
    watcher = Proc(patchbay_argv("watch", "--from", str(head)), cli.env, deploy.tmp / "watch-human.log")
    try:
        watched = cli.json("send", SHELL, "echo watched")["command_id"]
        watcher.wait_line(re.compile(rf"^\d\d:\d\d:\d\d {SHELL} {watched} running  #\d+$"))
        watcher.wait_line(re.compile(rf"^\d\d:\d\d:\d\d {SHELL} {watched} completed  #\d+$"))
    finally:
        watcher.stop()

    security = cli("audit", "--limit", "200").stdout
    assert "login.succeeded" in security and "session.reported" not in security
    assert "command.transitioned" not in security
    assert "session.reported" in cli("audit", "--all", "--limit", "200").stdout
    bogus = cli("audit", "--kind", "bogus", code=2)
    assert "unknown audit kind bogus" in bogus.stderr and "login.failed" in bogus.stderr
    assert cli("audit", "--kind", "login.succeeded,bogus", code=2).stdout == ""
    assert {r["kind"] for r in cli.json("audit", "--kind", "login.succeeded")} == {"login.succeeded"}


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    env = environment(tmp_path)
    assert run_cli(env, "init", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        busy = run_cli(env, "serve", "--listen", f"127.0.0.1:{port}")
    assert busy.returncode == 1, busy
    assert busy.stdout == ""
    assert busy.stderr.splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: the port is already in use; stop what uses it or choose "
        "another with --listen HOST:PORT (port 0 picks a free one)"]
