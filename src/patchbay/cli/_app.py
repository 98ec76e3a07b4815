"""The ``patchbay`` command group and what every command module shares.

A command module attaches its commands to ``main`` (``@main.command()``) and is imported once
in ``patchbay/cli/__init__.py``: registering a new module is a one-line hunk there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from patchbay.cli._client import Client, load_login
from patchbay.cli._errors import CliError, report
from patchbay.core.config import Home, default_home

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class PatchbayGroup(click.Group):
    """Maps CliError to its exit code with a one-line message (no tracebacks for users)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["patchbay.json"] = "--json" in args  # a refusal's body is printed as JSON too
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as problem:
            ctx.exit(report(problem, bool(ctx.meta.get("patchbay.json"))))


@click.group(cls=PatchbayGroup, context_settings=CONTEXT)
@click.version_option(package_name="patchbay", help="Show the version and exit.")
def main() -> None:
    """Patchbay: drive agent sessions on many machines from one trustworthy control plane.

    \b
    First steps:
      patchbay init --home DIR --password-stdin    create a home
      patchbay serve --home DIR                    run the core and the cockpit
      patchbay login --url URL --password-stdin    log this CLI in
      patchbay send shell-1/demo 'ls' --wait       run something and follow it

    Exit codes: 0 ok; 1 local or transport error; 2 rejected before acceptance; 3 the command
    ended in a non-success terminal state; 4 outcome unknown.
    """


def home_option(function: F) -> F:
    return click.option("--home", "home_dir", type=click.Path(path_type=Path), default=None,
                        help="Patchbay home (default: $PATCHBAY_HOME or ~/.local/share/patchbay).")(function)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of text.")(function)


def wait_option(function: F) -> F:
    return click.option("--wait", is_flag=True, help="Follow the command until it ends; exit with its outcome.")(function)


def resolve_home(home_dir: Path | None) -> Home:
    return Home(home_dir or default_home())


def client() -> Client:
    return Client(load_login())
