"""Ids by unique prefix: a command or an elicitation named by at least ``MIN_PREFIX`` characters.

An exact id always wins; otherwise the prefix must match exactly one record among the recent
ones the core lists (the newest 1,000 commands, 500 elicitations). None → exit 2 naming the
thing and where to look; several → exit 2 listing the candidates.
"""

from __future__ import annotations

from typing import Any

from patchbay.cli._client import Client
from patchbay.cli._errors import EXIT_REJECTED, CliError, ambiguous, not_found

MIN_PREFIX = 6


def _unique(thing: str, ident: str, records: list[dict[str, Any]], field: str) -> dict[str, Any]:
    exact = [r for r in records if r[field] == ident]
    if exact:
        return exact[0]
    if len(ident) < MIN_PREFIX:
        raise CliError(f"no {thing} {ident} (an id prefix needs at least {MIN_PREFIX} characters)", EXIT_REJECTED)
    matches = [r for r in records if r[field].startswith(ident)]
    if not matches:
        raise not_found(thing, ident)
    if len(matches) > 1:
        raise ambiguous(thing, ident, [r[field] for r in matches])
    return matches[0]


def resolve_command(http: Client, ident: str) -> dict[str, Any]:
    """The command record for an id or a unique prefix of one."""
    status, record = http.request("GET", f"/api/commands/{ident}", allow=(404,))
    if status == 200:
        return dict(record)
    listed = http.get("/api/commands", limit=1000)["commands"]
    return _unique("command", ident, listed, "command_id")


def resolve_elicitation(http: Client, ident: str) -> dict[str, Any]:
    """The elicitation record (any state) for an id or a unique prefix of one."""
    listed = http.get("/api/elicitations")["elicitations"]
    return _unique("elicitation", ident, listed, "elicitation_id")
