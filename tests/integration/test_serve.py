"""``patchbay serve`` as a real process: TLS refusal, supervised local adapters, orderly stop,
and the one-command demo of ``scripts/run``."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.integration._liveness import alive
from tests.support.processes import (
    LISTENING,
    Api,
    Deployment,
    Proc,
    deployment,
    environment,
    run_cli,
    wait_for,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STARTED = re.compile(r"adapter shell-1 started \(pid (\d+)\)")


def started_pids(proc: Proc) -> list[int]:
    proc.pump(0.05)
    return [int(m.group(1)) for line in proc.lines if (m := STARTED.search(line))]


def adapter(api: Api, adapter_id: str) -> dict[str, Any]:
    adapters = api.http.get("/api/adapters").json()["adapters"]
    return dict(next(a for a in adapters if a["adapter_id"] == adapter_id))


def configure_local_adapter(d: Deployment, workspace: Path) -> None:
    d.add_adapter("shell-1")
    with (d.home / "patchbay.toml").open("a") as config:
        config.write(f'\n[[adapters]]\nid = "shell-1"\nkind = "shell"\nargs = ["--workspace", "demo:{workspace}"]\n')


class ClosingProbe:
    """A websocket in a thread that reads until the server closes it, and records how."""

    def __init__(self, url: str, hello: dict[str, Any] | None = None, token: str | None = None) -> None:
        self.url = url.replace("http://", "ws://")
        self.hello = hello
        self.headers = [(b"Authorization", f"Bearer {token}".encode())] if token else None
        self.ready = threading.Event()
        self.closed: tuple[int | None, str | None] | None = None
        self.thread = threading.Thread(target=lambda: trio.run(self._run), daemon=True)
        self.thread.start()

    async def _run(self) -> None:
        async with open_websocket_url(self.url, extra_headers=self.headers) as ws:
            if self.hello is not None:
                await ws.send_message(json.dumps(self.hello))
            first = json.loads(await ws.get_message())
            assert first["type"] in ("welcome", "hello"), first
            self.ready.set()
            try:
                with trio.fail_after(60):
                    while True:
                        await ws.get_message()
            except ConnectionClosed as closed:
                self.closed = (closed.reason.code, closed.reason.reason)


def test_a_non_loopback_listen_address_without_tls_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    d = Deployment(tmp_path)
    result = run_cli(d.env, "serve", "--listen", "0.0.0.0:0")
    message = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1
    assert "refusing to listen on 0.0.0.0" in message and "needs TLS" in message
    assert "cert and key" in message and "trusted_proxy = true" in message
    assert not (d.home / "admin.sock").exists()


def test_adapter_add_writes_a_private_credential_and_journals_only_its_hash(tmp_path: Path) -> None:
    d = Deployment(tmp_path)
    result = run_cli(d.env, "adapter", "add", "shell-9", "--kind", "shell")
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip().splitlines()[-1])  # the path is the last line
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    credential = path.read_text().strip()
    assert len(credential) >= 32
    journal = b"".join(f.read_bytes() for f in d.home.glob("journal.db*"))
    assert credential.encode() not in journal
    again = run_cli(d.env, "adapter", "add", "shell-10", "--kind", "shell")
    assert Path(again.stdout.strip().splitlines()[-1]).read_text().strip() != credential  # unique per adapter


def test_local_adapters_are_supervised_and_sigterm_stops_everything_in_order(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with deployment(tmp_path, timeouts={"heartbeat_interval": 0.5}) as d:
        configure_local_adapter(d, workspace)
        probe_credential = d.add_adapter("probe").read_text().strip()
        d.serve()
        serve = d.serve_proc
        assert serve is not None
        first_pid = wait_for(lambda: started_pids(serve)[:1], what="the local adapter")[0]
        api = d.api()
        api.wait_session("shell-1/demo", "live")

        # supervised: a killed child adapter is restarted (a new process, a new generation)
        os.kill(first_pid, signal.SIGKILL)
        serve.wait_line(re.compile(r"adapter shell-1 exited with code -9; restarting"))
        second_pid = wait_for(lambda: (pids := started_pids(serve))[1:] and pids[1], what="a restarted adapter")
        assert second_pid != first_pid
        wait_for(lambda: adapter(api, "shell-1")["adapter_generation"] == 2 and adapter(api, "shell-1")["attached"],
                 what="the restarted adapter attached")
        api.wait_session("shell-1/demo", "live")
        api.submit("after-restart", "echo back")
        assert api.wait_state("after-restart", "completed")["result"]["output"] == "back\n"

        # a running job, a raw adapter attachment, a client submitting while the stop begins
        job_pid_file = tmp_path / "job.pid"
        api.submit("long", f"echo $$ > {job_pid_file}; exec sleep 60")
        api.wait_state("long", "running")
        job_pid = int(wait_for(lambda: job_pid_file.exists() and job_pid_file.read_text().strip(), what="job"))
        probe = ClosingProbe(d.url + "/adapter/v1", hello={
            "type": "hello", "protocol": 1, "adapter_id": "probe", "credential": probe_credential,
            "adapter_generation": 1, "deployment_scope": "test", "manifest": {"kinds": []}})
        token = api.http.headers["Authorization"].split()[1]
        stream = ClosingProbe(d.url + "/api/stream?cursor=0", token=token)
        assert probe.ready.wait(30) and stream.ready.wait(30)
        accepted: list[str] = []
        stop_load = threading.Event()

        def load() -> None:
            n = 0
            client = Api(d.url, token)
            while not stop_load.is_set():
                n += 1
                try:
                    answer = client.submit(f"load-{n}", "true")
                except httpx.HTTPError:
                    return
                if answer.get("outcome") == "accepted":
                    accepted.append(f"load-{n}")

        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        wait_for(lambda: len(accepted) >= 5, what="load running")
        serve.process.send_signal(signal.SIGTERM)
        assert serve.process.wait(timeout=30) == 0
        stop_load.set()
        loader.join(30)
        probe.thread.join(30)
        stream.thread.join(30)
        serve.pump()
        assert "patchbay stopped" in serve.lines
        for closed in (probe.closed, stream.closed):  # both websockets were closed with a reason
            assert closed is not None and closed[0] == 1001 and "shutting down" in (closed[1] or ""), closed
        wait_for(lambda: not alive(second_pid) and not alive(job_pid), timeout=15, what="children gone")
        assert not (d.home / "admin.sock").exists()

        check = run_cli(d.env, "replay", str(d.home / "journal.db"), "--check", "--json")
        assert check.returncode == 0, check.stdout
        d.serve()
        api = d.api()
        for command_id in accepted:  # every acceptance a client saw survived the stop
            assert api.command(command_id)["command_id"] == command_id
        audit = api.http.get("/api/audit", params={"kind": "adapter.detached"}).json()["records"]
        assert any("shutting down" in r["details"]["reason"] for r in audit)


def test_scripts_run_starts_a_working_demo(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    env = environment(tmp_path, PATCHBAY_DEMO_HOME=str(demo), PATCHBAY_PORT="0", PATCHBAY_NO_INSTALL="1")
    run = Proc(["bash", str(ROOT / "scripts" / "run")], env, tmp_path / "run.log")
    try:
        url = run.wait_line(LISTENING, timeout=60).group(1)
        password = (demo / "operator-password.txt").read_text().strip()
        assert any(password in line for line in run.lines)
        assert httpx.get(url + "/api/status", timeout=30).json()["setup_required"] is False
        api = Api.login(url, password)
        api.wait_session("shell-1/demo", "live", timeout=60)
        api.submit("demo-1", "echo hello from the demo")
        done: dict[str, Any] = api.wait_state("demo-1", "completed")
        assert done["result"]["output"] == "hello from the demo\n"
        child = int(run.wait_line(STARTED).group(1))
    finally:
        run.process.send_signal(signal.SIGTERM)
        code = run.process.wait(timeout=30)
        run.stop()
    assert code == 0
    wait_for(lambda: not alive(child), timeout=15, what="demo adapter stopped")
