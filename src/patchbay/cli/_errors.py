"""The one place that turns a failure into a message and an exit code.

Exit codes: 0 ok; 1 local or transport error; 2 rejected before acceptance; 3 the command
ended in a non-success terminal state; 4 outcome unknown. A message names the thing and the
fix; it never shows an HTTP verb, a URL path or a traceback.
"""

from __future__ import annotations

import errno
import json
from typing import Any

import click

EXIT_OK = 0
EXIT_LOCAL = 1
EXIT_REJECTED = 2
EXIT_TERMINAL_FAILURE = 3
EXIT_UNKNOWN = 4


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_LOCAL, *, body: Any = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.body = body


class OutcomeUnknown(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_UNKNOWN)


# What the operator can do when a thing is not found, by the kind of thing.
FIXES = {
    "command": "check the id with patchbay commands",
    "elicitation": "check the id with patchbay approvals",
    "grant": "check the id with patchbay grants list",
    "operator session": "check the id with patchbay security",
    "endpoint": "check the id with patchbay security",
    "session": "check the target with patchbay sessions",
}


def not_found(thing: str, ident: str) -> CliError:
    return CliError(f"no {thing} {ident} ({FIXES.get(thing, 'check the id')})", EXIT_REJECTED)


def ambiguous(thing: str, prefix: str, candidates: list[str]) -> CliError:
    shown = ", ".join(candidates[:10]) + (f" and {len(candidates) - 10} more" if len(candidates) > 10 else "")
    return CliError(f"{prefix} matches {len(candidates)} {thing}s: {shown} (give more characters)", EXIT_REJECTED)


def api_refusal(status: int, body: Any, about: tuple[str, str] | None) -> CliError:
    """An answer of 4xx from the core, in words (the core's own reason, never its route)."""
    reason = body.get("error") if isinstance(body, dict) else None
    if status == 404:
        if about is not None:
            return not_found(*about)
        return CliError("this core does not offer that (is it an older version than this CLI?)", EXIT_LOCAL)
    if status == 405:
        return CliError("this core does not offer that (is it an older version than this CLI?)", EXIT_LOCAL)
    if status == 403:
        return CliError(f"not allowed: {reason or 'the core refused'}", EXIT_REJECTED, body=body)
    if status in (409, 422, 400):
        return CliError(f"refused: {reason or 'the core refused the request'}", EXIT_REJECTED, body=body)
    return CliError(f"the core refused ({status}): {reason or 'no reason given'}", EXIT_LOCAL, body=body)


def logged_out(body: Any) -> CliError:
    reason = body.get("error") if isinstance(body, dict) else None
    return CliError(f"the core refused this login ({reason or 'no longer valid'}); log in again with "
                    "patchbay login --url URL --password-stdin")


def unreachable(url: str, problem: BaseException) -> CliError:
    return CliError(f"cannot reach the core at {url} ({_why(problem)}); is patchbay serve running there?")


def connection_lost(url: str, problem: BaseException) -> CliError:
    return CliError(f"lost the connection to the core at {url} ({_why(problem)}); try again")


def no_answer(url: str, problem: BaseException) -> OutcomeUnknown:
    return OutcomeUnknown(f"sent, but no answer from the core at {url} ({type(problem).__name__})")


def server_failed(status: int, body: Any) -> OutcomeUnknown:
    reason = body.get("error") if isinstance(body, dict) else None
    return OutcomeUnknown(f"the core failed while answering ({status}: {reason or 'no reason given'})")


def _why(problem: BaseException) -> str:
    text = str(problem) or type(problem).__name__
    return text.splitlines()[0][:160]


def serve_failure(problem: BaseException, listen: str | None) -> CliError | None:
    """A failure of ``serve`` worth one line (a bad home, configuration or journal, a busy port,
    an unusable address), or None for a bug (which keeps its traceback)."""
    from patchbay.core.config import ConfigError
    from patchbay.daemon import ServeError
    from patchbay.journal import JournalError

    for leaf in _leaves(problem):
        if isinstance(leaf, (ServeError, ConfigError, JournalError)):
            return CliError(str(leaf))
        if isinstance(leaf, OSError) and leaf.errno == errno.EADDRINUSE:
            where = f" {listen}" if listen else ""
            return CliError(f"cannot listen on{where}: the port is already in use; stop what uses it or choose "
                            "another with --listen HOST:PORT (port 0 picks a free one)")
        if isinstance(leaf, OSError) and leaf.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
            return CliError(f"cannot listen on {listen or 'the configured address'}: {leaf.strerror}; "
                            "choose another with --listen HOST:PORT")
    return None


def _leaves(problem: BaseException) -> list[BaseException]:
    if isinstance(problem, BaseExceptionGroup):
        return [leaf for inner in problem.exceptions for leaf in _leaves(inner)]
    found = [problem]
    if problem.__cause__ is not None:
        found += _leaves(problem.__cause__)
    return found


def report(problem: CliError, as_json: bool) -> int:
    """Print a CliError as one line on stderr (and its body as JSON with --json); its exit code."""
    click.secho("error: ", fg="red", err=True, nl=False)
    click.echo(str(problem), err=True)
    if problem.body is not None and as_json:
        click.echo(json.dumps(problem.body, indent=2))
    return problem.exit_code
