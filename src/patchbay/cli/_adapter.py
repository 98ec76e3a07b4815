"""``patchbay adapter add`` (mint a credential) and ``patchbay adapter run KIND`` (run one).

Each adapter kind is one subcommand of ``adapter run``, with the options every adapter takes
(``adapter_options``) and its own. A new kind is a new module with ``@run.command("KIND")``
imported in ``patchbay/cli/__init__.py``; ``adapter add --kind`` accepts the kinds ``run`` has.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import trio
from patchbay_adapters.common.trust import format_fingerprint

from patchbay.cli._app import CONTEXT, home_option, main, resolve_home
from patchbay.cli._errors import CliError

F = TypeVar("F", bound=Callable[..., Any])


@main.group(context_settings=CONTEXT)
def adapter() -> None:
    """Mint adapter credentials and run adapter processes."""


@adapter.group(context_settings=CONTEXT)
def run() -> None:
    """Run an adapter process that connects out to the core (one subcommand per kind).

    \b
    Example:
      patchbay adapter run shell --id shell-1 --core http://127.0.0.1:8765 \\
        --credential-file ~/pb/adapters/shell-1.credential --workspace demo:$HOME/demo
    """


def adapter_kinds() -> list[str]:
    return sorted(run.commands)


def _check_kind(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if value not in run.commands:
        raise click.BadParameter(f"{value!r} is not an adapter kind; choose one of {', '.join(adapter_kinds())}")
    return value


def _complete_kind(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    return [kind for kind in adapter_kinds() if kind.startswith(incomplete)]


@adapter.command("add")
@click.argument("adapter_id")
@click.option("--kind", required=True, callback=_check_kind, shell_complete=_complete_kind,
              help="The adapter kind: one that `patchbay adapter run` knows (shell, pi, …).")
@home_option
def adapter_add(adapter_id: str, kind: str, home_dir: Path | None) -> None:
    """Mint a unique credential for one adapter; prints the credential file's path last.

    With TLS configured, the file also pins the core's certificate (SHA-256) for the adapter,
    and names the core's public_url when patchbay.toml sets one.

    \b
    Example:
      patchbay adapter add shell-1 --kind shell --home ~/pb
    """
    from patchbay.cli._local import local_action
    from patchbay.cli._trust import core_trust, write_adapter_credential
    from patchbay.daemon import mint_credential

    home = resolve_home(home_dir)
    if not home.exists():
        raise CliError(f"no Patchbay home at {home.path}: run `patchbay init` first")
    trust = core_trust(home)
    credential, path = mint_credential(home, adapter_id)
    written = write_adapter_credential(trust, credential, path)
    local_action(home, {"op": "adapter_register", "adapter_id": adapter_id, "kind": kind, "credential": credential})
    click.echo(f"adapter {adapter_id} ({kind}) registered; its credential (mode 0600) is in:")
    if written.core_fingerprint:
        click.echo(f"(it pins the core's certificate, SHA-256 {format_fingerprint(written.core_fingerprint)})")
    click.echo(str(path))


def adapter_options(function: F) -> F:
    """The options every ``adapter run KIND`` takes (identity, core, credential, workspaces)."""
    for option in reversed([
        click.option("--id", "adapter_id", required=True, help="The adapter id given to `patchbay adapter add`."),
        click.option("--core", "core_url", default=None,
                     help="The core's URL, e.g. http://127.0.0.1:8765 (default: core_url in the credential file)."),
        click.option("--credential-file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
                     required=True, help="The credential file `patchbay adapter add` printed."),
        *link_options,
        click.option("--workspace", "workspaces", multiple=True,
                     help="NAME:DIR, a directory offered as session NAME (repeatable)."),
        click.option("--spawn-root", "spawn_roots", multiple=True, type=click.Path(path_type=Path),
                     help="Directory under which spawn may create sessions (repeatable)."),
        click.option("--deployment-scope", default=None, help="Where this adapter runs (default: host name)."),
    ]):
        function = option(function)
    return function


def _remember_link_option(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta.setdefault("patchbay.link", {})[param.name] = value
    return value


# How the link reaches the core; taken by ``run_runtime``, so a kind's command needs no parameter for them.
link_options = [
    click.option("--ca-file", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
                 expose_value=False, callback=_remember_link_option,
                 help="CA certificates for wss:// when the credential file pins no fingerprint."),
    click.option("--reconnect-max", type=click.FloatRange(min=0.05), default=10.0, show_default=True,
                 expose_value=False, callback=_remember_link_option,
                 help="Longest pause (s) between reconnection attempts."),
]


def parse_workspaces(values: tuple[str, ...]) -> dict[str, Path]:
    workspaces: dict[str, Path] = {}
    for value in values:
        name, sep, directory = value.partition(":")
        if not sep or not name or not directory:
            raise CliError(f"--workspace must be NAME:DIR, not {value!r}")
        path = Path(directory).expanduser().resolve()
        if not path.is_dir():
            raise CliError(f"workspace {name}: {path} is not a directory")
        workspaces[name] = path
    return workspaces


def run_runtime(runtime: Any, *, adapter_id: str, core_url: str | None, credential_file: Path,
                deployment_scope: str | None) -> None:
    """Connect ``runtime`` out to the core until interrupted (with the ``link_options`` given)."""
    from patchbay_adapters.common.run import run_adapter

    link = click.get_current_context().meta.get("patchbay.link", {})
    try:
        trio.run(lambda: run_adapter(runtime, adapter_id=adapter_id, core_url=core_url,
                                     credential_file=credential_file, deployment_scope=deployment_scope,
                                     ca_file=link.get("ca_file"), reconnect_max=link.get("reconnect_max", 10.0)))
    except KeyboardInterrupt:
        pass


@run.command("shell")
@adapter_options
@click.option("--cancel-grace", type=click.FloatRange(min=0.0), default=3.0, show_default=True,
              help="Seconds between SIGTERM and SIGKILL when a job is cancelled.")
def run_shell(adapter_id: str, core_url: str | None, credential_file: Path, workspaces: tuple[str, ...],
              spawn_roots: tuple[Path, ...], deployment_scope: str | None, cancel_grace: float) -> None:
    """Run shell command lines in workspaces (one job at a time per session)."""
    from patchbay_adapters.shell.runtime import ShellRuntime

    runtime = ShellRuntime(parse_workspaces(workspaces), spawn_roots=list(spawn_roots), grace=cancel_grace)
    run_runtime(runtime, adapter_id=adapter_id, core_url=core_url, credential_file=credential_file,
                deployment_scope=deployment_scope)


@run.command("pi")
@adapter_options
@click.option("--pi", "pi_path", default="pi", show_default=True, help="The pi executable.")
@click.option("--pi-arg", "pi_args", multiple=True, help="An extra argument for pi (repeatable).")
@click.option("--pi-env", "pi_env", multiple=True, help="NAME to copy, or NAME=VALUE to set (repeatable).")
@click.option("--pi-state-dir", type=click.Path(path_type=Path), default=None,
              help="Slot generations and Pi sessions (default: <ID>.pi-state beside the credential).")
@click.option("--pi-approve", default="bash,edit,write", show_default=True,
              help="Tools that need an operator approval (comma-separated, * for all, none).")
@click.option("--pi-approval-timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds before an unanswered approval expires and the tool is blocked.")
def run_pi(adapter_id: str, core_url: str | None, credential_file: Path, workspaces: tuple[str, ...],
           spawn_roots: tuple[Path, ...], deployment_scope: str | None, pi_path: str, pi_args: tuple[str, ...],
           pi_env: tuple[str, ...], pi_state_dir: Path | None, pi_approve: str, pi_approval_timeout: float) -> None:
    """Drive the Pi coding agent over its RPC mode (see docs/ADAPTER-PI.md)."""
    from patchbay_adapters.pi.adapter import build_runtime

    try:
        runtime = build_runtime(parse_workspaces(workspaces), spawn_roots=list(spawn_roots), pi_path=pi_path,
                                pi_args=list(pi_args), pi_env=list(pi_env), approve=pi_approve,
                                approval_timeout=pi_approval_timeout,
                                state_dir=pi_state_dir or credential_file.parent / f"{adapter_id}.pi-state")
    except ValueError as problem:
        raise CliError(str(problem)) from None
    run_runtime(runtime, adapter_id=adapter_id, core_url=core_url, credential_file=credential_file,
                deployment_scope=deployment_scope)
