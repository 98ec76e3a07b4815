"""The local bootstrap channel: actions that need access to the home folder, not a login.

While ``serve`` runs (it holds ``serve.lock``) the action goes through its admin socket, so the
running core decides and journals it. Otherwise the journal is opened directly and the action
is decided and appended the same way, through the same pure deciders.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from patchbay.cli._errors import CliError
from patchbay.core._state import recover_state
from patchbay.core.config import Home
from patchbay.core.ports import SystemClock
from patchbay.core.secrets import token_hash
from patchbay.daemon import ServeLock
from patchbay.domain import access
from patchbay.domain.events import EventKind, Fact
from patchbay.journal import JournalError, JournalStore, NewEvent


def local_action(home: Home, request: dict[str, Any]) -> dict[str, Any]:
    if not home.exists():
        raise CliError(f"no Patchbay home at {home.path}: run `patchbay init --home {home.path}`")
    lock = ServeLock(home)
    if not lock.acquire():
        return _via_socket(home, request)
    try:
        return _direct(home, request)
    finally:
        lock.release()


def _via_socket(home: Home, request: dict[str, Any]) -> dict[str, Any]:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(str(home.admin_socket))
            sock.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as problem:
        raise CliError(f"serve is running but its admin socket {home.admin_socket} did not answer: {problem}") from None
    answer: dict[str, Any] = json.loads(data or b"{}")
    if not answer.get("ok"):
        raise CliError(str(answer.get("error", "the core refused")))
    return answer


def _direct(home: Home, request: dict[str, Any]) -> dict[str, Any]:
    config = home.load_config()
    try:
        store = JournalStore.open(home.journal_file, expected_domain=config.authority_domain_id)
    except JournalError as problem:
        raise CliError(str(problem)) from None
    try:
        state, _ = recover_state(store)
        op = request.get("op")
        facts: list[Fact]
        if op == "lockdown_exit":
            facts = list(access.decide_lockdown_exit(state, "local bootstrap channel").facts)
        elif op == "adapter_register":
            facts = [Fact(EventKind.adapter_registered, f"adapter:{request['adapter_id']}", {
                "adapter_id": request["adapter_id"], "adapter_kind": request["kind"],
                "credential_hash": token_hash(request["credential"])})]
        elif op == "status":
            return {"ok": True, "lsn": state.last_lsn, "lockdown": state.lockdown.active}
        else:
            raise CliError(f"unknown local action {op!r}")
        now = SystemClock().now()
        if facts:
            store.append_batch([NewEvent(kind=f.kind.value, entity=f.entity, payload=f.payload, ts=now) for f in facts])
        return {"ok": True, "lockdown": op == "lockdown_exit" and False}
    finally:
        store.close()
