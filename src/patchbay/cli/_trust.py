"""How the CLI and adapters trust a core's TLS certificate without a CA.

``adapter add`` writes the core's certificate fingerprint (and its public URL, when
configured) into the adapter's credential file. ``login --url https://…`` trusts the system
store or ``--ca-file``, or a pin given with ``--fingerprint``; when neither verifies and a
person is at the terminal, it shows the certificate's fingerprint and asks (trust on first
use). The pin or CA file is stored with the login, and every later request is pinned the same
way (``_client.login_context``).
"""

from __future__ import annotations

import socket
import ssl
import sys
from pathlib import Path
from urllib.parse import urlsplit

import attrs
import click
from patchbay_adapters.common.credential import CredentialFile
from patchbay_adapters.common.trust import (
    describe_refusal,
    fetch_fingerprint,
    file_fingerprint,
    format_fingerprint,
    normalize_fingerprint,
    untrusted,
)

from patchbay.cli._errors import CliError
from patchbay.core.config import ConfigError, Home, write_private


def core_trust(home: Home) -> CredentialFile:
    """What a new credential file says besides the credential: the core's public URL and the
    fingerprint of its certificate (checked before anything is minted)."""
    try:
        config = home.load_config()
    except ConfigError as problem:
        raise CliError(str(problem)) from None
    fingerprint = None
    if config.tls:
        try:
            fingerprint = file_fingerprint(Path(config.tls_cert))
        except ValueError as problem:
            raise CliError(f"cannot pin the core's certificate: {problem}") from None
    return CredentialFile(credential="", core_url=config.public_url[0] if config.public_url else None, core_fingerprint=fingerprint)


def write_adapter_credential(trust: CredentialFile, credential: str, path: Path) -> CredentialFile:
    """Rewrite a freshly minted credential file with the core's URL and certificate pin."""
    record = attrs.evolve(trust, credential=credential)
    write_private(path, record.render())
    return record


def login_trust(url: str, *, fingerprint: str | None, ca_file: Path | None,
                interactive: bool) -> tuple[str | None, str | None]:
    """The (pin, CA file) to log in with: what the options say, or, for an https URL the system
    store does not verify, the fingerprint a person accepted at the prompt."""
    if not url.startswith("https://"):
        if fingerprint or ca_file:
            raise CliError("--fingerprint and --ca-file need an https:// URL")
        return None, None
    if fingerprint and ca_file:
        raise CliError("give --fingerprint or --ca-file, not both")
    if fingerprint:
        try:
            return normalize_fingerprint(fingerprint), None
        except ValueError as problem:
            raise CliError(f"--fingerprint: {problem}") from None
    if ca_file:
        return None, str(ca_file.resolve())
    host, port = _address(url)
    refusal = _system_store_refuses(host, port)
    if refusal is None:
        return None, None
    try:
        presented = fetch_fingerprint(host, port)
    except (OSError, ValueError) as error:
        raise CliError(f"cannot reach {url}: {error}") from None
    shown = format_fingerprint(presented)
    if not interactive:
        raise CliError(f"the certificate of {url} is not trusted by the system store ({refusal}); its SHA-256 "
                       f"fingerprint is {shown}: check it on the core's host and pass --fingerprint {shown} "
                       "(or --ca-file)")
    click.echo(f"The certificate of {url} is not signed by an authority this machine trusts ({refusal}).", err=True)
    click.echo(f"Its SHA-256 fingerprint is:\n  {shown}", err=True)
    click.echo("Compare it with `openssl x509 -in CERT -noout -fingerprint -sha256` on the core's host.", err=True)
    if not click.confirm("Trust this certificate for this login?", default=False, err=True):
        raise CliError("login cancelled: the certificate was not trusted")
    return presented, None


def transport_refusal(url: str, problem: BaseException) -> CliError | None:
    """The one line for a request that failed because the core's certificate was refused."""
    refused = untrusted(problem)
    if refused is None:
        return None
    return CliError(f"refusing {url}: {describe_refusal(refused)}")


def interactive_terminal(password_stdin: bool) -> bool:
    return not password_stdin and sys.stdin.isatty()


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if not parts.hostname:
        raise CliError(f"{url} names no host")
    return parts.hostname, parts.port or 443


def _system_store_refuses(host: str, port: int) -> str | None:
    """Why the system store refuses the server's certificate, or None if it verifies."""
    context = ssl.create_default_context()
    try:
        with socket.create_connection((host, port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return None
    except ssl.SSLCertVerificationError as problem:
        return problem.verify_message or str(problem)
    except OSError as problem:
        raise CliError(f"cannot reach https://{host}:{port}: {problem}") from None
