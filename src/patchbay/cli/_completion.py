"""``patchbay completion bash|zsh|fish``: click's own completion script for the shell."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from patchbay.cli._app import main

SHELLS = ("bash", "zsh", "fish")


@main.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    Examples:
      eval "$(patchbay completion bash)"                 # in ~/.bashrc
      eval "$(patchbay completion zsh)"                  # in ~/.zshrc
      patchbay completion fish > ~/.config/fish/completions/patchbay.fish
    """
    completer = get_completion_class(shell)
    if completer is None:  # click knows every shell in SHELLS
        raise click.UsageError(f"no completion for {shell}")
    click.echo(completer(main, {}, "patchbay", "_PATCHBAY_COMPLETE").source())
