"""Real processes for integration tests: a Patchbay home, ``serve`` on port 0, adapters, a client.

Every process is started in its own process group and stopped by its PID (terminate, wait,
kill). Readiness is read from the process's output or from the API, with a bounded deadline;
nothing sleeps for synchronization.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

PASSWORD = "integration-password-1"
LISTENING = re.compile(r"patchbay listening on (http://[\d.]+:\d+)")
LISTENING_ANY = re.compile(r"patchbay listening on (https?://[\d.]+:\d+)")
SETUP_SECRET = re.compile(r"one-time setup secret (\S+)")


def patchbay_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "patchbay", *args]


def environment(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHBAY_")}
    env.update(HOME=str(tmp / "home"), PATCHBAY_HOME=str(tmp / "pb"),
               PATCHBAY_CLI_CONFIG=str(tmp / "cli.json"), PYTHONUNBUFFERED="1")
    env.update(extra)
    (tmp / "home").mkdir(parents=True, exist_ok=True)
    return env


def run_cli(env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(patchbay_argv(*args), input=stdin, capture_output=True, text=True, env=env, timeout=timeout)


def wait_for(predicate: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.02, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; a bounded readiness wait."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Proc:
    """A child process with its output captured line by line."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = log.open("w")
        self.lines: list[str] = []
        self.process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True)
        self._selector = selectors.DefaultSelector()
        assert self.process.stdout is not None
        os.set_blocking(self.process.stdout.fileno(), False)
        self._selector.register(self.process.stdout, selectors.EVENT_READ)
        self._buffer = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def pump(self, timeout: float = 0.0) -> None:
        assert self.process.stdout is not None
        for _key, _ in self._selector.select(timeout):
            chunk = self.process.stdout.read()
            if chunk:
                self._buffer += chunk
                self._log.write(chunk)
                self._log.flush()
        *complete, self._buffer = self._buffer.split("\n")
        self.lines.extend(complete)

    def wait_line(self, pattern: re.Pattern[str], timeout: float = 30.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                match = pattern.search(line)
                if match:
                    return match
            seen = len(self.lines)
            if self.process.poll() is not None:
                self.pump()
                raise RuntimeError(f"process exited ({self.process.returncode}) before {pattern.pattern!r}:\n"
                                   + "\n".join(self.lines[-30:]))
            if time.monotonic() > deadline:
                raise TimeoutError(f"no line matching {pattern.pattern!r} within {timeout} s:\n"
                                   + "\n".join(self.lines[-30:]))
            self.pump(0.05)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        self.process.wait(timeout=30)
        self.pump()

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.pump()
        self._selector.close()
        self._log.close()


class Api:
    """A CLI-style bearer client for the JSON API."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"})

    @classmethod
    def login(cls, url: str, password: str = PASSWORD) -> Api:
        answer = httpx.post(url + "/api/login", json={"password": password, "endpoint_kind": "cli"}, timeout=30)
        answer.raise_for_status()
        return cls(url, answer.json()["token"])

    def submit(self, command_id: str, text: str = "", *, target: str = "shell-1/demo", kind: str = "instruct",
               key: str | None = None, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {"command_id": command_id, "idempotency_key": key or command_id, "kind": kind, "target": target,
                "payload": payload if payload is not None else {"text": text}}
        return dict(self.http.post("/api/commands", json=body).json())

    def command(self, command_id: str) -> dict[str, Any]:
        return dict(self.http.get(f"/api/commands/{command_id}").json())

    def sessions(self) -> dict[str, dict[str, Any]]:
        return {s["target"]: s for s in self.http.get("/api/sessions").json()["sessions"]}

    def wait_state(self, command_id: str, *states: str, timeout: float = 30.0) -> dict[str, Any]:
        return dict(wait_for(lambda: (c := self.command(command_id))["state"] in states and c,
                             timeout=timeout, what=f"{command_id} in {states}"))

    def wait_session(self, target: str, connectivity: str, timeout: float = 30.0) -> dict[str, Any]:
        return dict(wait_for(lambda: (s := self.sessions().get(target)) and s["connectivity"] == connectivity and s,
                             timeout=timeout, what=f"{target} {connectivity}"))


class Deployment:
    """A home with ``serve`` and adapters, all real processes."""

    def __init__(self, tmp: Path, *, timeouts: dict[str, float] | None = None, web_setup: bool = False) -> None:
        self.tmp = tmp
        self.env = environment(tmp)
        self.home = tmp / "pb"
        self.procs: list[Proc] = []
        self.url = ""
        self.serve_proc: Proc | None = None
        init = ("init", "--web-setup") if web_setup else ("init", "--password-stdin")
        result = run_cli(self.env, *init, stdin=None if web_setup else PASSWORD + "\n")
        assert result.returncode == 0, result.stderr
        if timeouts:
            config = (self.home / "patchbay.toml").read_text()
            for name, value in timeouts.items():
                config = re.sub(rf"^{name} = .*$", f"{name} = {value}", config, flags=re.M)
            (self.home / "patchbay.toml").write_text(config)

    def add_adapter(self, adapter_id: str, kind: str = "shell") -> Path:
        result = run_cli(self.env, "adapter", "add", adapter_id, "--kind", kind)
        assert result.returncode == 0, result.stderr
        return Path(result.stdout.strip().splitlines()[-1])

    def serve(self, listen: str = "127.0.0.1:0", extra_env: dict[str, str] | None = None,
              pattern: re.Pattern[str] = LISTENING) -> str:
        env = dict(self.env, **(extra_env or {}))
        proc = Proc(patchbay_argv("serve", "--listen", listen), env, self.tmp / f"serve-{len(self.procs)}.log")
        self.procs.append(proc)
        self.serve_proc = proc
        self.url = proc.wait_line(pattern).group(1)
        return self.url

    def configure(self, **settings: str) -> None:
        """Set ``name = value`` lines of patchbay.toml (values are TOML literals, e.g. '"x"')."""
        path = self.home / "patchbay.toml"
        config = path.read_text()
        for name, value in settings.items():
            config, count = re.subn(rf"^{name} = .*$", lambda _m, v=value, n=name: f"{n} = {v}", config, flags=re.M)
            assert count == 1, f"{name} is not a single setting of patchbay.toml"
        path.write_text(config)

    def shell_adapter(self, adapter_id: str = "shell-1", workspaces: dict[str, Path] | None = None,
                      extra: list[str] | None = None) -> Proc:
        credential = self.home / "adapters" / f"{adapter_id}.credential"
        if not credential.exists():
            self.add_adapter(adapter_id)
        if workspaces is None:
            workspace = self.tmp / "ws" / "demo"
            workspace.mkdir(parents=True, exist_ok=True)
            workspaces = {"demo": workspace}
        args = ["adapter", "run", "shell", "--id", adapter_id, "--core", self.url, "--credential-file",
                str(credential)]
        for name, path in workspaces.items():
            args += ["--workspace", f"{name}:{path}"]
        proc = Proc(patchbay_argv(*args, *(extra or [])), self.env, self.tmp / f"{adapter_id}-{len(self.procs)}.log")
        self.procs.append(proc)
        return proc

    def api(self) -> Api:
        return Api.login(self.url)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


@contextmanager
def deployment(tmp: Path, **kwargs: Any) -> Iterator[Deployment]:
    deploy = Deployment(tmp, **kwargs)
    try:
        yield deploy
    finally:
        deploy.stop()


@contextmanager
def serving_shell(tmp: Path) -> Iterator[Deployment]:
    """``serve`` with the shell adapter ``shell-1`` attached and its session ``demo`` live."""
    with deployment(tmp) as deploy:
        deploy.serve()
        deploy.shell_adapter()
        deploy.api().wait_session("shell-1/demo", "live")
        yield deploy


def read_json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]
