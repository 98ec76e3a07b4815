"""``patchbay export TARGET FILE``: a session's own export (Pi's ``export_html``) as a file.

It submits ``query {"what": "export"}`` to the session, follows the command until it ends
(bounded) and writes what the adapter returned (``encoding: gzip+base64``) to FILE. Exit codes
as for every command: 2 refused before acceptance, 3 the export failed, 4 no outcome in time.
"""

from __future__ import annotations

import base64
import binascii
import gzip
from pathlib import Path
from typing import Any

import click

from patchbay.cli._app import client, main
from patchbay.cli._errors import EXIT_REJECTED, EXIT_TERMINAL_FAILURE, EXIT_UNKNOWN, CliError
from patchbay.cli._follow import follow
from patchbay.cli._send import new_command_id
from patchbay.registry import CommandKind, CommandState, SubmissionOutcome


def decode_export(result: Any) -> bytes:
    """The exported file from a command result; raises CliError if it is not one."""
    if not isinstance(result, dict) or not isinstance(result.get("data"), str):
        raise CliError("the session's adapter returned no export", EXIT_TERMINAL_FAILURE)
    try:
        packed = base64.b64decode(result["data"], validate=True)
        return gzip.decompress(packed) if result.get("encoding") == "gzip+base64" else packed
    except (binascii.Error, OSError, EOFError) as problem:
        raise CliError(f"the export is damaged ({problem})", EXIT_TERMINAL_FAILURE) from None


@main.command("export")
@click.argument("target")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait for the export")
def export_command(target: str, file: Path, timeout: float) -> None:
    """Write a session's export (e.g. Pi's HTML transcript) to FILE."""
    http = client()
    command_id = new_command_id()
    _, answer = http.post("/api/commands", {"command_id": command_id, "idempotency_key": command_id,
                                            "kind": CommandKind.query.value, "target": target,
                                            "payload": {"what": "export"}}, allow=(403, 409, 422))
    if answer["outcome"] != SubmissionOutcome.accepted:
        raise CliError(f"{answer['outcome']} ({answer['failure']}): {answer['reason']}", EXIT_REJECTED)
    followed = follow(http, answer["command"], timeout, live=False)
    record = followed.record
    if followed.timed_out:
        raise CliError(f"{command_id} is still {record['state']} after {timeout:g} s", EXIT_UNKNOWN)
    if record["state"] != CommandState.completed:
        raise CliError(f"export {record['state']} ({record['failure']}): {record['reason']}", EXIT_TERMINAL_FAILURE)
    content = decode_export(record["result"])
    file.write_bytes(content)
    click.echo(f"{file}: {len(content)} bytes ({record['result'].get('media_type', 'unknown type')})")
