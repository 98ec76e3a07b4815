"""The Patchbay home (``PATCHBAY_HOME``) and its configuration file.

Layout: ``patchbay.toml`` (configuration), ``journal.db`` (the journal: everything the core
remembers), ``server.key`` (HMAC key for CSRF tokens, 0600), ``adapters/ID.credential``
(minted adapter credentials, 0600), ``admin.sock`` (the local bootstrap channel while
``serve`` runs: only someone with access to this folder can use it).
"""

from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path
from typing import Any

import attrs

DEFAULT_LISTEN = "127.0.0.1:8765"


@attrs.frozen
class Timeouts:
    """Bounds of honest failure; all seconds."""

    heartbeat_interval: float = 5.0
    stale_after: float = 15.0  # no frame from an adapter for this long: its sessions are stale
    offline_after: float = 45.0  # stale this long: offline, and in-flight commands are settled
    session_idle: float = 7 * 24 * 3600.0
    session_absolute: float = 30 * 24 * 3600.0
    setup_secret: float = 600.0


@attrs.frozen
class LoginLimits:
    """Failed-login rate limits (sliding window). Per address: one client guessing; per account:
    a guess spread over many addresses. The account limit is higher so that one hostile address
    cannot lock the operator out from everywhere at once."""

    failures_per_address: int = 5
    failures_per_account: int = 20
    failure_window: float = 60.0


@attrs.frozen
class LocalAdapter:
    """An adapter ``serve`` starts and supervises as a child process."""

    adapter_id: str
    kind: str
    args: tuple[str, ...] = ()


@attrs.frozen
class Config:
    authority_domain_id: str
    listen: str = DEFAULT_LISTEN
    tls_cert: str = ""
    tls_key: str = ""
    trusted_proxy: bool = False
    synchronous: str = "FULL"
    checkpoint_every: int = 20_000
    timeouts: Timeouts = Timeouts()
    adapters: tuple[LocalAdapter, ...] = ()
    login: LoginLimits = LoginLimits()
    # How browsers, phones and adapters on other hosts reach the core (behind a proxy, a tailnet):
    # the Origin checks admit these besides the listener's own; adapter add names the first.
    public_url: tuple[str, ...] = ()

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)


class ConfigError(Exception):
    """The home or its configuration is missing or malformed; the message says how to fix it."""


def default_home() -> Path:
    env = os.environ.get("PATCHBAY_HOME")
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "patchbay"


@attrs.frozen
class Home:
    path: Path

    @property
    def config_file(self) -> Path:
        return self.path / "patchbay.toml"

    @property
    def journal_file(self) -> Path:
        return self.path / "journal.db"

    @property
    def key_file(self) -> Path:
        return self.path / "server.key"

    @property
    def admin_socket(self) -> Path:
        return self.path / "admin.sock"

    @property
    def adapters_dir(self) -> Path:
        return self.path / "adapters"

    def credential_file(self, adapter_id: str) -> Path:
        return self.adapters_dir / f"{adapter_id}.credential"

    def exists(self) -> bool:
        return self.config_file.exists() and self.journal_file.exists()

    def load_config(self) -> Config:
        if not self.config_file.exists():
            raise ConfigError(f"no Patchbay home at {self.path}: run `patchbay init --home {self.path}`")
        try:
            raw = tomllib.loads(self.config_file.read_text())
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{self.config_file} is not valid TOML: {error}") from error
        return parse_config(raw, self.config_file)

    def server_key(self) -> bytes:
        if not self.key_file.exists():
            write_private(self.key_file, secrets.token_hex(32))
        return bytes.fromhex(self.key_file.read_text().strip())


def parse_config(raw: dict[str, Any], source: Path) -> Config:
    try:
        tls = raw.get("tls", {})
        timeouts = Timeouts(**{k: float(v) for k, v in raw.get("timeouts", {}).items()})
        login = raw.get("login", {})
        unknown = set(login) - {field.name for field in attrs.fields(LoginLimits)}
        if unknown:
            raise ValueError(f"unknown [login] settings {sorted(unknown)}")
        limits = LoginLimits(
            failures_per_address=int(login.get("failures_per_address", 5)),
            failures_per_account=int(login.get("failures_per_account", 20)),
            failure_window=float(login.get("failure_window", 60.0)),
        )
        adapters = tuple(
            LocalAdapter(adapter_id=str(a["id"]), kind=str(a["kind"]), args=tuple(str(x) for x in a.get("args", ())))
            for a in raw.get("adapters", [])
        )
        return Config(
            authority_domain_id=str(raw["authority_domain_id"]),
            listen=str(raw.get("listen", DEFAULT_LISTEN)),
            tls_cert=str(tls.get("cert", "")),
            tls_key=str(tls.get("key", "")),
            trusted_proxy=bool(tls.get("trusted_proxy", False)),
            synchronous=str(raw.get("journal", {}).get("synchronous", "FULL")),
            checkpoint_every=int(raw.get("journal", {}).get("checkpoint_every", 20_000)),
            timeouts=timeouts,
            adapters=adapters,
            login=limits,
            public_url=_public_urls(raw.get("public_url", ())),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"{source}: bad configuration ({error})") from error


def _public_urls(value: Any) -> tuple[str, ...]:
    """``public_url``: one URL or a list of them; each must be ``http(s)://host[:port]``."""
    urls = [u for u in ([value] if isinstance(value, str) else list(value)) if u != ""]
    for url in urls:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or "/" in url.split("://", 1)[1].rstrip("/"):
            raise ValueError(f"public_url {url!r} must be http(s)://host[:port]")
    return tuple(url.rstrip("/") for url in urls if url)


def render_config(config: Config) -> str:
    """The TOML text for a config (written by ``init``; the file stays hand-editable)."""

    def quote(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        "# Patchbay configuration. See docs/RUNBOOK.md.",
        f"authority_domain_id = {quote(config.authority_domain_id)}",
        f"listen = {quote(config.listen)}",
        "# The URLs browsers and adapters on other hosts use, e.g. https://core.lan:8765",
        "# (Origin checks admit them; adapter add writes the first into credential files).",
        "public_url = [" + ", ".join(quote(u) for u in config.public_url) + "]",
        "",
        "[journal]",
        f"synchronous = {quote(config.synchronous)}",
        f"checkpoint_every = {config.checkpoint_every}",
        "",
        "[tls]",
        "# Set cert and key to serve HTTPS, or trusted_proxy = true behind a TLS-terminating proxy.",
        f"cert = {quote(config.tls_cert)}",
        f"key = {quote(config.tls_key)}",
        f"trusted_proxy = {'true' if config.trusted_proxy else 'false'}",
        "",
        "[timeouts]",
    ]
    for field in attrs.fields(Timeouts):
        lines.append(f"{field.name} = {getattr(config.timeouts, field.name)}")
    lines += ["", "[login]", "# Failed logins allowed per client address / per account within the window (s)."]
    for field in attrs.fields(LoginLimits):
        lines.append(f"{field.name} = {getattr(config.login, field.name)}")
    for adapter in config.adapters:
        lines += ["", "[[adapters]]", f"id = {quote(adapter.adapter_id)}", f"kind = {quote(adapter.kind)}",
                  "args = [" + ", ".join(quote(a) for a in adapter.args) + "]"]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write a secret file atomically with mode 0600 (never world- or group-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
