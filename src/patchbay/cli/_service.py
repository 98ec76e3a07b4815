"""``patchbay service``: systemd units that keep ``serve`` and adapters running.

``service serve`` and ``service adapter KIND …`` print a unit (or, with ``--install``, write it
and an environment file beside it) for the user's or the system's service manager: restart on
failure, the working directory, ``PATCHBAY_HOME``, an ``EnvironmentFile`` (0600) for anything
secret such as a model provider's API key, and a command line without secrets (the adapter's
credential stays in its credential file). Nothing here runs ``systemctl``; the commands to
enable the unit are printed.
"""

from __future__ import annotations

import getpass
import os
import re
import sys
from pathlib import Path

import attrs
import click

from patchbay.cli._app import CONTEXT, main
from patchbay.cli._errors import CliError
from patchbay.core.config import default_home, write_private

UNIT_NAME = re.compile(r"[A-Za-z0-9_.:-]+\Z")
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")


@attrs.frozen
class Unit:
    """One service unit: what runs, where, as whom."""

    name: str  # e.g. patchbay-adapter-shell-1.service
    description: str
    argv: tuple[str, ...]
    working_directory: Path
    environment_file: Path
    environment: tuple[tuple[str, str], ...] = ()
    system: bool = False  # a system unit (User=) rather than the user's own
    run_as: str = ""

    def render(self) -> str:
        lines = [
            "# Written by `patchbay service`. Secrets belong in the EnvironmentFile (0600), never here.",
            "[Unit]",
            f"Description={_plain(self.description)}",
            "After=network-online.target",
            "Wants=network-online.target",
            "",
            "[Service]",
            "Type=simple",
        ]
        if self.system:
            lines.append(f"User={_plain(self.run_as)}")
        lines.append(f"WorkingDirectory={_plain(str(self.working_directory))}")
        lines += [f"Environment={_quote(f'{name}={value}')}" for name, value in self.environment]
        lines += [
            f"EnvironmentFile=-{_plain(str(self.environment_file))}",
            "ExecStart=" + " ".join(_quote(arg, command=True) for arg in self.argv),
            "Restart=on-failure",
            "RestartSec=5",
            "KillMode=mixed",
            "TimeoutStopSec=30",
            "UMask=0077",
            "",
            "[Install]",
            f"WantedBy={'multi-user.target' if self.system else 'default.target'}",
        ]
        return "\n".join(lines) + "\n"


def _plain(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise CliError(f"a unit setting cannot hold a line break: {value!r}")
    return value.replace("%", "%%")


def _quote(value: str, *, command: bool = False) -> str:
    """One word of a unit setting: specifiers (and, on command lines, variables) escaped, and
    double-quoted when it holds spaces, quotes or backslashes."""
    value = _plain(value)
    if command:
        value = value.replace("$", "$$")
    if value and not re.search(r'[\s"\'\\;]', value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit_dir(system: bool) -> Path:
    if system:
        return SYSTEM_UNIT_DIR
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def serve_unit(home: Path, *, system: bool, run_as: str, python: str = sys.executable) -> Unit:
    home = home.resolve()
    return Unit(name="patchbay.service", description=f"Patchbay core (home {home})",
                argv=(python, "-m", "patchbay", "serve", "--home", str(home)), working_directory=home,
                environment_file=home / "patchbay.env", environment=(("PATCHBAY_HOME", str(home)),),
                system=system, run_as=run_as)


def adapter_unit(kind: str, adapter_id: str, credential_file: Path, *, core_url: str | None, ca_file: Path | None,
                 extra: tuple[str, ...], system: bool, run_as: str, python: str = sys.executable) -> Unit:
    if not UNIT_NAME.match(adapter_id):
        raise CliError(f"adapter id {adapter_id!r} cannot name a unit (letters, digits, _ . : - only)")
    _refuse_secrets(extra)
    credential_file = credential_file.resolve()
    argv = [python, "-m", "patchbay", "adapter", "run", kind, "--id", adapter_id,
            "--credential-file", str(credential_file)]
    if core_url:
        argv += ["--core", core_url]
    if ca_file:
        argv += ["--ca-file", str(ca_file.resolve())]
    return Unit(name=f"patchbay-adapter-{adapter_id}.service", description=f"Patchbay {kind} adapter {adapter_id}",
                argv=(*argv, *extra), working_directory=credential_file.parent,
                environment_file=credential_file.parent / f"{adapter_id}.env", system=system, run_as=run_as)


def _refuse_secrets(extra: tuple[str, ...]) -> None:
    """``--pi-env NAME=VALUE`` would put a value (an API key) on the command line: refused."""
    for index, arg in enumerate(extra):
        value = arg.removeprefix("--pi-env=") if arg.startswith("--pi-env=") else None
        if arg == "--pi-env" and index + 1 < len(extra):
            value = extra[index + 1]
        if value is not None and "=" in value:
            raise CliError(f"--pi-env {value.split('=', 1)[0]}=… would put a secret on the command line: put "
                           "NAME=VALUE in the EnvironmentFile and pass --pi-env NAME")


def emit_unit(unit: Unit, install: bool, directory: Path | None) -> None:
    text = unit.render()
    if not install:
        click.echo(text, nl=False)
        return
    target = (directory or unit_dir(unit.system)) / unit.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    if not unit.environment_file.exists():
        write_private(unit.environment_file, "# NAME=VALUE lines for this service (API keys and other secrets).\n")
    manager = "systemctl" if unit.system else "systemctl --user"
    click.echo(f"wrote {target} (environment file: {unit.environment_file})")
    click.echo(f"enable it with: {manager} daemon-reload && {manager} enable --now {unit.name}")
    if not unit.system:
        click.echo("to keep it running while you are logged out: loginctl enable-linger")


def _options(function: click.decorators.FC) -> click.decorators.FC:
    function = click.option("--unit-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
                            help="Where --install writes the unit (default: the service manager's directory)")(function)
    function = click.option("--run-as", default=None, help="User= of a system unit (default: you)")(function)
    function = click.option("--install", is_flag=True, help="Write the unit instead of printing it")(function)
    return click.option("--system/--user", "system", default=False,
                        help="A system unit (User=…) or the user's own (systemctl --user; the default)")(function)


@main.group(context_settings=CONTEXT)
def service() -> None:
    """systemd units that keep serve and adapters running (see docs/RUNBOOK.md for launchd)."""


@service.command("serve")
@click.option("--home", "home_dir", type=click.Path(path_type=Path), default=None,
              help="Patchbay home (default: $PATCHBAY_HOME or ~/.local/share/patchbay)")
@_options
def service_serve(home_dir: Path | None, system: bool, install: bool, run_as: str | None,
                  unit_dir: Path | None) -> None:
    """Print (or --install) the unit that runs `patchbay serve` for a home."""
    home = home_dir or default_home()
    if not (home / "patchbay.toml").exists():
        raise CliError(f"no Patchbay home at {home}: run `patchbay init --home {home}` first")
    emit_unit(serve_unit(home, system=system, run_as=run_as or getpass.getuser()), install, unit_dir)


@service.command("adapter", context_settings={**CONTEXT, "ignore_unknown_options": True})
@click.argument("kind")
@click.option("--id", "adapter_id", required=True)
@click.option("--credential-file", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True)
@click.option("--core", "core_url", default=None, help="The core's URL (default: core_url in the credential file)")
@click.option("--ca-file", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None)
@_options
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
def service_adapter(kind: str, adapter_id: str, credential_file: Path, core_url: str | None, ca_file: Path | None,
                    system: bool, install: bool, run_as: str | None, unit_dir: Path | None,
                    extra: tuple[str, ...]) -> None:
    """Print (or --install) the unit that runs `patchbay adapter run KIND`; further options
    (after --) go to `adapter run`, e.g. -- --workspace demo:/srv/demo."""
    from patchbay.cli._adapter import adapter_kinds

    if kind not in adapter_kinds():
        raise CliError(f"{kind!r} is not an adapter kind; choose one of {', '.join(adapter_kinds())}")
    unit = adapter_unit(kind, adapter_id, credential_file, core_url=core_url, ca_file=ca_file, extra=extra,
                        system=system, run_as=run_as or getpass.getuser())
    emit_unit(unit, install, unit_dir)
