"""This CLI's operator session: ``login`` (enroll as an endpoint, keep the token) and ``logout``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from patchbay.cli import _errors
from patchbay.cli._app import main
from patchbay.cli._client import Client, Login, config_path, load_login, login_context
from patchbay.cli._errors import EXIT_REJECTED, CliError


@main.command()
@click.option("--url", required=True, help="The core's URL, e.g. http://127.0.0.1:8765.")
@click.option("--password-stdin", is_flag=True, help="Read the operator password from stdin (one line).")
@click.option("--label", default="patchbay CLI", show_default=True,
              help="How this endpoint is named in patchbay security and the cockpit.")
@click.option("--fingerprint", default=None, help="https: pin the core's certificate (SHA-256, colons optional).")
@click.option("--ca-file", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="https: the CA that signs the core's certificate.")
def login(url: str, password_stdin: bool, label: str, fingerprint: str | None, ca_file: Path | None) -> None:
    """Enroll this CLI as an endpoint and keep its bearer token (0600).

    For https, the certificate is checked against the system store, --ca-file or --fingerprint;
    at a terminal, an untrusted one's fingerprint is shown and you are asked (trust on first use).

    \b
    Example:
      patchbay login --url http://127.0.0.1:8765 --password-stdin < password.txt
    """
    import httpx

    from patchbay.cli._trust import interactive_terminal, login_trust, transport_refusal

    pin, ca_path = login_trust(url, fingerprint=fingerprint, ca_file=ca_file,
                               interactive=interactive_terminal(password_stdin))
    trust = Login(url=url, token="", session_id="", endpoint_id="", fingerprint=pin, ca_file=ca_path)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt("Password", hide_input=True)
    base = url.rstrip("/")
    try:
        response = httpx.post(base + "/api/login", timeout=30, verify=login_context(trust) or True,
                              json={"password": password, "endpoint_kind": "cli", "label": label})
    except (httpx.HTTPError, ValueError) as problem:
        raise transport_refusal(base, problem) or _errors.unreachable(base, problem) from None
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200:
        raise CliError(f"login refused: {body.get('error', response.status_code)}", EXIT_REJECTED)
    path = Login(url=base, token=body["token"], session_id=body["session_id"],
                 endpoint_id=body["endpoint_id"], fingerprint=pin, ca_file=ca_path).save()
    click.echo(f"logged in as endpoint {body['endpoint_id']}; login saved in {path}")


@main.command()
def logout() -> None:
    """End this CLI's operator session and forget the token."""
    login_data = load_login()
    client = Client(login_data)
    try:
        client.post("/api/logout")
    finally:
        client.close()
        config_path().unlink(missing_ok=True)
    click.echo("logged out")
