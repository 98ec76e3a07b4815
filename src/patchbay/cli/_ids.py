"""Ids by unique prefix: a command or an elicitation named by at least ``MIN_PREFIX`` characters.

An exact id always wins; otherwise the prefix must match exactly one record among the recent
ones the core lists (the newest 1,000 commands, 500 elicitations). None → exit 2 naming the
thing and where to look; several → exit 2 listing the candidates.
"""

from __future__ import annotations

import re
from typing import Any

from patchbay.cli._client import Client
from patchbay.cli._errors import EXIT_REJECTED, CliError, ambiguous, not_found

MIN_PREFIX = 6
ID_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")  # docs/PROTOCOL.md "Ids"


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


def checked(thing: str, ident: str) -> str:
    """``ident`` if it has the shape of an id (so it is safe in a URL path), else exit 2."""
    if not ID_SHAPE.fullmatch(ident):
        raise CliError(f"{ident!r} is not {thing} id (letters, digits and . _ : - only)", EXIT_REJECTED)
    return ident


def resolve_command(http: Client, ident: str) -> dict[str, Any]:
    """The command record for an id or a unique prefix of one."""
    checked("a command", ident)
    status, record = http.request("GET", f"/api/commands/{ident}", allow=(404,))
    if status == 200:
        return dict(record)
    listed = http.get("/api/commands", limit=1000)["commands"]
    return _unique("command", ident, listed, "command_id")


def resolve_elicitation(http: Client, ident: str) -> dict[str, Any]:
    """The elicitation record (any state) for an id or a unique prefix of one."""
    listed = http.get("/api/elicitations")["elicitations"]
    return _unique("elicitation", ident, listed, "elicitation_id")


def _offer(path: str, field: str, key: str, incomplete: str, **params: Any) -> list[str]:
    """Ids the core lists that start with ``incomplete``; none when it cannot be asked quickly."""
    from patchbay.cli._client import load_login

    try:
        listed = Client(load_login(), timeout=2.0).get(path, **params)[key]
    except CliError:
        return []
    return [r[field] for r in listed if str(r[field]).startswith(incomplete)]


def complete_command(_ctx: Any, _param: Any, incomplete: str) -> list[str]:
    return _offer("/api/commands", "command_id", "commands", incomplete, limit=200)


def complete_elicitation(_ctx: Any, _param: Any, incomplete: str) -> list[str]:
    return _offer("/api/elicitations", "elicitation_id", "elicitations", incomplete, state="pending")


def complete_target(_ctx: Any, _param: Any, incomplete: str) -> list[str]:
    return _offer("/api/sessions", "target", "sessions", incomplete)
