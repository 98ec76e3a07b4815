"""The CLI's connection to a core: its saved login and an HTTP client with honest errors.

The login lives in ``$PATCHBAY_CLI_CONFIG`` (default ``~/.config/patchbay/cli.json``, mode
0600, written atomically). Transport failures are split in two: *not sent* (connection
refused, DNS) is a local error (exit 1); *sent but no answer* (timeout, reset) means the
outcome is unknown (exit 4) — the caller must reconcile by idempotency key, never assume.
"""

from __future__ import annotations

import json
import os
import ssl
from pathlib import Path
from typing import Any

import attrs
import httpx
from patchbay_adapters.common.trust import client_context

from patchbay.cli import _errors
from patchbay.cli._errors import CliError
from patchbay.cli._known_lsn import KnownLsn
from patchbay.cli._trust import transport_refusal
from patchbay.core.config import write_private
from patchbay.wire import _admit
from patchbay.wire.known_lsn import HEAD_LSN_HEADER, KNOWN_LSN_HEADER


def config_path() -> Path:
    env = os.environ.get("PATCHBAY_CLI_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "patchbay" / "cli.json"


@attrs.frozen
class Login:
    url: str
    token: str
    session_id: str
    endpoint_id: str
    fingerprint: str | None = None  # the pinned SHA-256 of the core's certificate (https, TOFU)
    ca_file: str | None = None  # or the CA that signs it
    known_lsn: str | None = None  # "<authority domain>:<lsn>", the highest seen (_known_lsn.py)

    def save(self) -> Path:
        path = config_path()
        fields = {name: value for name, value in attrs.asdict(self).items() if value is not None}
        write_private(path, json.dumps(fields, indent=2) + "\n")
        return path


def load_login() -> Login:
    path = config_path()
    try:
        data = json.loads(path.read_text())
        return Login(url=data["url"], token=data["token"], session_id=data["session_id"],
                     endpoint_id=data["endpoint_id"], fingerprint=data.get("fingerprint"),
                     ca_file=data.get("ca_file"), known_lsn=data.get("known_lsn"))
    except FileNotFoundError:
        raise CliError(f"not logged in: run `patchbay login --url URL --password-stdin` ({path} missing)") from None
    except (ValueError, KeyError) as problem:
        raise CliError(f"{path} is not a valid CLI login ({problem}); log in again") from None


def login_context(login: Login) -> ssl.SSLContext | None:
    """The TLS trust saved with a login: its pin or CA file (None: the system store)."""
    if not login.fingerprint and not login.ca_file:
        return None
    try:
        return client_context(fingerprint=login.fingerprint, ca_file=Path(login.ca_file) if login.ca_file else None)
    except (OSError, ssl.SSLError, ValueError) as problem:
        raise CliError(f"the saved login's TLS trust is unusable ({problem}); log in again") from None


class Client:
    def __init__(self, login: Login, timeout: float = 30.0) -> None:
        self.login = login
        self.ssl_context = login_context(login)
        self._http = httpx.Client(base_url=login.url, timeout=timeout, verify=self.ssl_context or True,
                                  headers={"Authorization": f"Bearer {login.token}"})
        self.known = KnownLsn(login.known_lsn, login.token, login.url, config_path())

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, json_body: Any = None, params: dict[str, Any] | None = None,
                allow: tuple[int, ...] = (), about: tuple[str, str] | None = None) -> tuple[int, Any]:
        """One request; ``about`` (thing, id) names what a 404 means ("no command cmd-…").
        A body the core could not admit (``wire/_admit.py``) is refused here, before sending."""
        refusal = _admit.problem(json_body)
        if refusal is not None:
            raise CliError(f"cannot send this: {refusal} (nothing was sent)", _errors.EXIT_REJECTED)
        try:
            known = {KNOWN_LSN_HEADER: self.known.header} if self.known.header else None
            response = self._http.request(method, path, json=json_body, params=params, headers=known)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol, httpx.InvalidURL) as problem:
            raise transport_refusal(self.login.url, problem) or _errors.unreachable(self.login.url, problem) from None
        except httpx.TransportError as problem:
            if method == "GET":
                raise _errors.connection_lost(self.login.url, problem) from None
            raise _errors.no_answer(self.login.url, problem) from None
        self.known.observe(response.headers.get(HEAD_LSN_HEADER))
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:200]}
        if response.status_code == 401:
            raise _errors.logged_out(body)
        if response.status_code >= 500 and method != "GET":
            raise _errors.server_failed(response.status_code, body)
        if response.status_code >= 400 and response.status_code not in allow:
            raise _errors.api_refusal(response.status_code, body, about)
        return response.status_code, body

    def get(self, path: str, *, about: tuple[str, str] | None = None, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None}, about=about)[1]

    def post(self, path: str, body: Any = None, *, allow: tuple[int, ...] = (),
             about: tuple[str, str] | None = None) -> tuple[int, Any]:
        return self.request("POST", path, json_body=body if body is not None else {}, allow=allow, about=about)

    @property
    def stream_headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"Authorization", f"Bearer {self.login.token}".encode())]

    @property
    def stream_url(self) -> str:
        return self.login.url.replace("http://", "ws://").replace("https://", "wss://") + "/api/stream"
