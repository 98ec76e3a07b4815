"""``patchbay serve``: the one trio program that runs the core, the web app and the local channel.

Root of the task tree::

    serve (root nursery, owns everything; SIGINT/SIGTERM set ``core.stopping``)
    ├── Core.run           journal writer (its own thread), timers, actor supervisor
    ├── hypercorn.trio.serve(app)   cockpit, JSON API, /api/stream, /adapter/v1
    ├── local admin socket (ADMIN: lockdown exit, adapter registration; home folder access only)
    └── local adapters from patchbay.toml, each a supervised child process (restart w/ backoff)

Shutdown, in order: websockets close with code 1001 and a reason while hypercorn stops
accepting (bounded by its graceful timeout); the admin socket is removed and child adapters are
stopped by PID (SIGTERM to their process group, SIGKILL after 5 s); last the core is cancelled,
and its journal writer thread commits everything queued before the stop, then ends.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from patchbay._collector import settle_for_serving
from patchbay.core._core import ALL_KINDS, OPERATOR_ID, Core, CoreSettings
from patchbay.core.config import Config, Home, LocalAdapter, write_private
from patchbay.core.secrets import hash_password, new_token
from patchbay.domain import access
from patchbay.domain.events import EventKind, Fact
from patchbay.errors import PatchbayError
from patchbay.registry import RevocationPolicy
from patchbay.web._guard import RateLimiter, is_loopback
from patchbay.web._push_service import PushService


class ServeError(PatchbayError):
    """serve cannot start; the message says what to change."""


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ServeError(f"--listen must be HOST:PORT, not {listen!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def settings_from(config: Config) -> CoreSettings:
    t = config.timeouts
    return CoreSettings(stale_after=t.stale_after, offline_after=t.offline_after,
                        heartbeat_interval=t.heartbeat_interval, checkpoint_every=config.checkpoint_every,
                        session_idle=t.session_idle, session_absolute=t.session_absolute)


@attrs.define
class SetupSecret:
    """The one-time secret that lets a browser create the first operator (home without one)."""

    secret: str
    expires_at: float
    used: bool = False

    async def complete(self, core: Core, secret: str, password: str) -> str | None:
        if self.used or core.clock.now() >= self.expires_at:
            return "the setup secret has expired; restart serve for a new one"
        if not secrets.compare_digest(secret, self.secret):
            return "wrong setup secret"
        if len(password) < 8:
            return "choose a password of at least 8 characters"
        self.used = True
        password_hash = await trio.to_thread.run_sync(hash_password, password)
        facts = [Fact(EventKind.operator_created, f"operator:{OPERATOR_ID}",
                      {"operator_id": OPERATOR_ID, "password_hash": password_hash})]
        facts += access.decide_grant(core.ids.new_id("grant"), OPERATOR_ID, {"type": "all"}, ALL_KINDS, None,
                                     RevocationPolicy.continue_, "web setup: the operator's default grant").facts
        await core.journal.persist(facts)
        return None


class ServeLock:
    """Held while serve runs, so local commands know to use the admin socket instead of the file."""

    def __init__(self, home: Home) -> None:
        self.path = home.path / "serve.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


async def serve(home: Home, *, listen: str | None = None, announce: Callable[[str], None] = print,
                ready: trio.Event | None = None) -> None:
    config = home.load_config()
    host, port = parse_listen(listen or config.listen)
    # A trusted proxy is believed about the client's scheme and address, so only a local proxy
    # may reach a plain listener: behind a proxy, serve listens on loopback.
    if not is_loopback(host) and not config.tls:
        raise ServeError(
            f"refusing to listen on {host}: a non-loopback address needs TLS. Set cert and key in the tls table of "
            f"{home.config_file}, or put a TLS-terminating proxy in front, listen on 127.0.0.1 and set "
            "trusted_proxy = true (see docs/RUNBOOK.md)")
    lock = ServeLock(home)
    if not lock.acquire():
        raise ServeError(f"another patchbay serve is already running on {home.path}")
    try:
        core = Core(home.journal_file, expected_domain=config.authority_domain_id,
                    settings=settings_from(config), synchronous=config.synchronous)
        await _serve_core(home, config, core, host, port, announce, ready)
    except BaseExceptionGroup as group:
        raise _refusal_in(group) from None
    finally:
        lock.release()


def _refusal_in(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one Patchbay error (a start-up refusal: the journal cannot take writes) that ended
    the task tree, so it reaches the operator as its message; any other group as it is."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        error = pending.pop()
        if isinstance(error, BaseExceptionGroup):
            pending.extend(error.exceptions)
        elif not isinstance(error, trio.Cancelled):
            leaves.append(error)
    return leaves[0] if len(leaves) == 1 and isinstance(leaves[0], PatchbayError) else group


async def _serve_core(home: Home, config: Config, core: Core, host: str, port: int,
                      announce: Callable[[str], None], ready: trio.Event | None) -> None:
    """Run until SIGINT/SIGTERM (or ``core.stopping`` set by a caller), then stop in order:
    websockets close with a reason and hypercorn stops accepting, then the admin socket and the
    child adapters stop (by PID), and last the core, whose journal writer commits the batch in
    flight before it returns."""
    from patchbay.web.app import create_app

    async with trio.open_nursery() as root:
        await root.start(core.run)
        try:
            async with trio.open_nursery() as front:
                front.start_soon(_stop_on_signals, core.stopping)
                setup = None
                if not core.state.operators:
                    setup = SetupSecret(secrets.token_urlsafe(18), core.clock.now() + config.timeouts.setup_secret)
                limits = config.login
                push = PushService(home.path, home.config_file, core)
                await front.start(push.run)
                app = create_app(core, server_key=home.server_key(), push=push,
                                 secure_cookies=config.tls or config.trusted_proxy,
                                 trusted_proxy=config.trusted_proxy, setup=setup, public_origins=config.public_url,
                                 limiter=RateLimiter(limits.failures_per_address, limits.failures_per_account,
                                                     limits.failure_window))
                hyper = HypercornConfig()
                hyper.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
                hyper.accesslog = None
                hyper.errorlog = "-"
                hyper.loglevel = "WARNING"
                hyper.keep_alive_max_requests = 1_000_000
                hyper.graceful_timeout = GRACEFUL_SECONDS
                hyper.websocket_max_message_size = 4 * 1024 * 1024
                if config.tls:
                    hyper.certfile, hyper.keyfile = config.tls_cert, config.tls_key
                http_done = trio.Event()
                binds = await front.start(_run_http, app, hyper, core.stopping, http_done)
                url = _announced_url(binds, "https" if config.tls else "http")
                await front.start(_admin_socket, home, core)
                settle_for_serving()
                announce(f"patchbay listening on {url}")
                if setup is not None:
                    announce(f"no operator yet: open {url}/#setup and enter the one-time setup secret "
                             f"{setup.secret} (valid for {int(config.timeouts.setup_secret // 60)} minutes)")
                for adapter in config.adapters:
                    front.start_soon(_supervise_adapter, home, adapter, url, announce)
                if ready is not None:
                    ready.set()
                await core.stopping.wait()
                announce("patchbay stopping: closing connections")
                with trio.move_on_after(GRACEFUL_SECONDS + 2):
                    await http_done.wait()
                front.cancel_scope.cancel()
        finally:
            root.cancel_scope.cancel()
    announce("patchbay stopped")


GRACEFUL_SECONDS = 3.0


async def _run_http(app: Any, hyper: HypercornConfig, stopping: trio.Event, done: trio.Event, *,
                    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """hypercorn until ``stopping``: it then stops accepting and lets open connections finish
    (websocket handlers close themselves with a reason) for at most the graceful timeout."""
    try:
        await hypercorn_serve(app, hyper, shutdown_trigger=stopping.wait, task_status=task_status)
    finally:
        done.set()


def _announced_url(binds: Any, scheme: str) -> str:
    bound = binds[0] if binds else ""
    address = bound.split("://", 1)[-1]
    return f"{scheme}://{address}"


async def _stop_on_signals(stopping: trio.Event) -> None:
    """The first SIGINT/SIGTERM starts the orderly stop; a second one while stopping is ignored
    (the stop is bounded by the graceful timeout)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            stopping.set()


# -- the local bootstrap channel --------------------------------------------------------------


async def _admin_socket(home: Home, core: Core, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    path = home.admin_socket
    path.unlink(missing_ok=True)
    listener = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        await listener.bind(str(path))
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    listener.listen(8)
    listeners = [trio.SocketListener(listener)]
    try:
        async with trio.open_nursery() as nursery:
            task_status.started()
            async def handler(stream: trio.SocketStream) -> None:
                await _admin_session(stream, core, home)

            await trio.serve_listeners(handler, listeners, handler_nursery=nursery)
    finally:
        path.unlink(missing_ok=True)


async def _admin_session(stream: trio.SocketStream, core: Core, home: Home) -> None:
    async with stream:
        data = b""
        with trio.move_on_after(10):
            while not data.endswith(b"\n") and len(data) < 65536:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                data += chunk
        try:
            request = json.loads(data or b"{}")
            answer = await admin_action(core, home, request)
        except (ValueError, KeyError, PatchbayError) as problem:
            answer = {"ok": False, "error": str(problem)}
        await stream.send_all(json.dumps(answer).encode() + b"\n")


async def admin_action(core: Core, home: Home, request: dict[str, Any]) -> dict[str, Any]:
    """Actions only the local bootstrap channel may take (never reachable over HTTP)."""
    op = request.get("op")
    if op == "lockdown_exit":
        await core.exit_lockdown("local bootstrap channel")
        return {"ok": True, "lockdown": core.state.lockdown.active}
    if op == "adapter_register":
        await core.adapters.register(str(request["adapter_id"]), str(request["kind"]), str(request["credential"]))
        return {"ok": True}
    if op == "status":
        return {"ok": True, "lsn": core.state.last_lsn, "lockdown": core.state.lockdown.active}
    return {"ok": False, "error": f"unknown admin op {op!r}"}


def mint_credential(home: Home, adapter_id: str) -> tuple[str, Path]:
    credential = new_token()
    path = home.credential_file(adapter_id)
    write_private(path, credential + "\n")
    return credential, path


# -- local adapters -----------------------------------------------------------------------------


async def _supervise_adapter(home: Home, adapter: LocalAdapter, url: str, announce: Callable[[str], None]) -> None:
    """Run one configured adapter as a child process; restart it with backoff when it exits."""
    backoff = 0.5
    argv = [sys.executable, "-m", "patchbay", "adapter", "run", adapter.kind, "--id", adapter.adapter_id,
            "--core", url, "--credential-file", str(home.credential_file(adapter.adapter_id)), *adapter.args]
    while True:
        started = trio.current_time()
        process = await trio.lowlevel.open_process(argv, start_new_session=True)
        announce(f"adapter {adapter.adapter_id} started (pid {process.pid})")
        try:
            code = await process.wait()
        finally:
            if process.returncode is None:
                with trio.CancelScope(shield=True):
                    _terminate_group(process.pid)
                    with trio.move_on_after(5):
                        await process.wait()
                    if process.returncode is None:
                        _terminate_group(process.pid, signal.SIGKILL)
                        await process.wait()
        announce(f"adapter {adapter.adapter_id} exited with code {code}; restarting in {backoff:.1f} s")
        if trio.current_time() - started > 30:
            backoff = 0.5
        await trio.sleep(backoff)
        backoff = min(backoff * 2, 30.0)


def _terminate_group(pid: int, sig: int = signal.SIGTERM) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
