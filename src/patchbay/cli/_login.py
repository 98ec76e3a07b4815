"""This CLI's operator session: ``login`` (enroll as an endpoint, keep the token) and ``logout``."""

from __future__ import annotations

import sys

import click

from patchbay.cli import _errors
from patchbay.cli._app import main
from patchbay.cli._client import Client, Login, config_path, load_login
from patchbay.cli._errors import EXIT_REJECTED, CliError


@main.command()
@click.option("--url", required=True, help="The core's URL, e.g. http://127.0.0.1:8765.")
@click.option("--password-stdin", is_flag=True, help="Read the operator password from stdin (one line).")
@click.option("--label", default="patchbay CLI", show_default=True,
              help="How this endpoint is named in patchbay security and the cockpit.")
def login(url: str, password_stdin: bool, label: str) -> None:
    """Enroll this CLI as an endpoint and keep its bearer token (0600).

    \b
    Example:
      patchbay login --url http://127.0.0.1:8765 --password-stdin < password.txt
    """
    import httpx

    password = sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt("Password", hide_input=True)
    base = url.rstrip("/")
    try:
        response = httpx.post(base + "/api/login", timeout=30,
                              json={"password": password, "endpoint_kind": "cli", "label": label})
    except (httpx.HTTPError, ValueError) as problem:
        raise _errors.unreachable(base, problem) from None
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200:
        raise CliError(f"login refused: {body.get('error', response.status_code)}", EXIT_REJECTED)
    path = Login(url=base, token=body["token"], session_id=body["session_id"],
                 endpoint_id=body["endpoint_id"]).save()
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
