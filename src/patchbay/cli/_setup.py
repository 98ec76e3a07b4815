"""Setting up and running a core: ``init``, ``serve``, ``replay`` (all local, no login)."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import click
import trio

from patchbay.cli._app import home_option, json_option, main, resolve_home
from patchbay.cli._errors import CliError, serve_failure
from patchbay.core.config import Config, Home, render_config


def read_secret(from_stdin: bool, prompt: str) -> str:
    if from_stdin:
        value = sys.stdin.readline().rstrip("\n")
    else:
        value = click.prompt(prompt, hide_input=True, confirmation_prompt=True)
    if len(value) < 8:
        raise CliError("choose a password of at least 8 characters")
    return value


@main.command()
@home_option
@click.option("--password-stdin", is_flag=True, help="Read the operator password from stdin (one line).")
@click.option("--web-setup", is_flag=True, help="Create no operator: serve prints a one-time setup secret.")
@click.option("--listen", default="127.0.0.1:8765", show_default=True,
              help="HOST:PORT that serve listens on (written to patchbay.toml).")
def init(home_dir: Path | None, password_stdin: bool, web_setup: bool, listen: str) -> None:
    """Create a home: configuration, journal and the operator (with its default grant).

    \b
    Example:
      printf '%s\\n' "$PASSWORD" | patchbay init --home ~/pb --password-stdin
    """
    from patchbay.core import initialize_journal
    from patchbay.core.config import write_private

    home = resolve_home(home_dir)
    if home.config_file.exists() or home.journal_file.exists():
        raise CliError(f"{home.path} already holds a Patchbay home; choose another --home")
    home.path.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = Config(authority_domain_id=f"dom-{secrets.token_hex(8)}", listen=listen)
    password = None if web_setup else read_secret(password_stdin, "Operator password")
    initialize_journal(home.journal_file, config.authority_domain_id, password)
    write_private(home.config_file, render_config(config))
    home.server_key()
    click.echo(f"initialized Patchbay home {home.path} (authority domain {config.authority_domain_id})")


@main.command()
@home_option
@click.option("--listen", default=None, help="HOST:PORT (default from patchbay.toml; port 0 picks a free one).")
def serve(home_dir: Path | None, listen: str | None) -> None:
    """Run the core, the cockpit and the adapter endpoint until SIGINT/SIGTERM.

    Prints `patchbay listening on http://HOST:PORT` once it accepts connections.

    \b
    Example:
      patchbay serve --home ~/pb --listen 127.0.0.1:8765
    """
    from patchbay.daemon import serve as run_serve

    home = resolve_home(home_dir)

    def announce(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    try:
        trio.run(lambda: run_serve(home, listen=listen, announce=announce))
    except KeyboardInterrupt:
        pass
    except Exception as problem:  # what a person can act on becomes one line; the rest stays loud
        short = serve_failure(problem, listen or _configured_listen(home))
        if short is None:
            raise
        raise short from None


def _configured_listen(home: Home) -> str | None:
    from patchbay.core.config import ConfigError

    try:
        return str(home.load_config().listen)
    except (ConfigError, OSError):
        return None


@main.command()
@click.argument("journal", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--check", is_flag=True, help="Verify the invariants; exit 1 on a violation.")
@click.option("--until", "until_lsn", type=int, default=None, help="Stop after this LSN (state as it was then).")
@click.option("--command", "command_id", default=None, help="Timeline of one command.")
@click.option("--session", "target", default=None, help="Timeline of one session (TARGET).")
@json_option
def replay(journal: Path, check: bool, until_lsn: int | None, command_id: str | None, target: str | None,
           as_json: bool) -> None:
    """Rebuild state from a journal offline, with the same reducer as the live core.

    \b
    Example:
      patchbay replay ~/pb/journal.db --check
    """
    from patchbay.replay import run_replay

    raise SystemExit(run_replay(journal, check=check, until_lsn=until_lsn, command_id=command_id,
                                target=target, as_json=as_json, echo=click.echo))
