"""The CLI's help, completion and live-follow folding, without a server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click
import pytest
from click.testing import CliRunner
from rich.console import Console
from rich.text import Text

from patchbay.cli import main
from patchbay.cli._follow import Follower
from patchbay.cli._listing import Listing
from patchbay.cli._render import result_text

# The commands a new user meets first: their --help shows examples.
MAIN_COMMANDS = [("init",), ("serve",), ("login",), ("send",), ("commands",), ("inspect",), ("watch",),
                 ("audit",), ("approvals",), ("approve",), ("answer",), ("cancel",), ("adapter", "add"),
                 ("adapter", "run"), ("grants", "add"), ("completion",), ("replay",)]


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from walk(sub, (*path, name))


def test_every_option_of_every_command_has_help_text_and_shows_it() -> None:
    runner = CliRunner()
    seen = 0
    for path, command in walk(main):
        assert command.help, f"patchbay {' '.join(path)} has no help text"
        shown = runner.invoke(main, [*path, "--help"])
        assert shown.exit_code == 0, (path, shown.output)
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            seen += 1
            assert param.help, f"patchbay {' '.join(path)} {param.opts[0]} has no help text"
            assert param.opts[0] in shown.output, (path, param.opts)
            assert param.help.split()[0] in shown.output, (path, param.opts)
    assert seen > 50  # the walk reached the subcommands


def test_the_main_commands_show_examples() -> None:
    runner = CliRunner()
    for path in MAIN_COMMANDS:
        shown = runner.invoke(main, [*path, "--help"])
        assert shown.exit_code == 0 and "Example" in shown.output, path
        assert "patchbay " in shown.output.split("Example", 1)[1], path


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o nosort -F"), ("zsh", "compdef"),
                                               ("fish", "complete --no-files --command patchbay")])
def test_completion_prints_clicks_script_for_each_shell(shell: str, marker: str) -> None:
    shown = CliRunner().invoke(main, ["completion", shell])
    assert shown.exit_code == 0 and marker in shown.output and "_PATCHBAY_COMPLETE" in shown.output
    assert CliRunner().invoke(main, ["completion", "tcsh"]).exit_code == 2


def test_completing_an_id_without_a_login_offers_nothing_and_never_fails(tmp_path: Any) -> None:
    env = {"_PATCHBAY_COMPLETE": "bash_complete", "COMP_WORDS": "patchbay approve el", "COMP_CWORD": "2",
           "PATCHBAY_CLI_CONFIG": str(tmp_path / "absent.json")}
    shown = CliRunner().invoke(main, [], env=env, prog_name="patchbay")
    assert shown.exit_code == 0 and shown.output.strip() == ""


def test_adapter_add_accepts_only_kinds_that_adapter_run_knows(tmp_path: Any) -> None:
    refused = CliRunner().invoke(main, ["adapter", "add", "x-1", "--kind", "bogus", "--home", str(tmp_path)])
    assert refused.exit_code == 2 and "choose one of pi, shell" in refused.output


def command(revision: int, state: str, terminal: bool = False, **extra: Any) -> dict[str, Any]:
    return {"command_id": "cmd-1", "state": state, "terminal": terminal, "revision": revision, "failure": None,
            "elicitations": [], **extra}


def event(lsn: int, kind: str, **extra: Any) -> dict[str, Any]:
    return {"lsn": lsn, "kind": kind, "entity": "command:cmd-1", "ts": 0.0, **extra}


def output(lsn: int, text: str, command_id: str = "cmd-1") -> dict[str, Any]:
    return event(lsn, "session.observation", entity="session:shell-1/demo",
                 payload={"command_id": command_id, "observation": {"type": "output", "text": text}})


def test_the_follower_prints_output_in_order_and_waits_for_the_terminal_event() -> None:
    written: list[str] = []
    notes: list[str] = []
    follower = Follower(command(10, "accepted"), write=written.append, note=notes.append)
    # The view an event carries may already be newer than the event (it is encoded late): the
    # follower must still read up to the terminal event's LSN, so no output is lost.
    follower.feed({"type": "events", "events": [event(11, "command.transitioned", command=command(14, "completed",
                                                                                                   True))]})
    assert not follower.done
    follower.feed({"type": "events", "events": [output(12, "first\n"), output(13, "second"),
                                                 output(13, "other\n", command_id="cmd-2")]})
    assert not follower.done and written == ["first\n", "second"]
    follower.feed({"type": "events", "events": [event(14, "command.transitioned",
                                                      command=command(14, "completed", True))]})
    assert follower.done
    follower.finish()
    assert "".join(written) == "first\nsecond\n" and notes == []


def test_the_follower_announces_approvals_with_the_command_that_answers_them() -> None:
    notes: list[str] = []
    follower = Follower(command(5, "accepted"), write=lambda _t: None, note=notes.append)
    pending = {"elicitation_id": "eli-9", "kind": "approval", "state": "pending", "title": "Allow bash?",
               "command_id": "cmd-1", "target": "pi-1/main"}
    follower.feed({"type": "events", "events": [event(6, "command.transitioned", command=command(6, "running"))]})
    follower.feed({"type": "events", "events": [event(7, "elicitation.opened", elicitation=pending)]})
    follower.feed({"type": "events", "events": [event(8, "elicitation.opened", elicitation=pending)]})  # once
    follower.feed({"type": "events", "events": [event(9, "elicitation.resolved",
                                                      elicitation={**pending, "state": "answered"})]})
    assert notes == ["cmd-1: running", "waiting for approval: Allow bash? — patchbay approve eli-9 --allow (or --deny)",
                     "eli-9: answered"]


def test_results_print_as_text() -> None:
    assert result_text({"text": "All tests pass.", "stop_reason": "stop"}) == "All tests pass."
    assert result_text({"exit_code": 0, "output": "ok\n"}) == "ok\n"
    assert result_text({"exit_code": 0, "output": ""}) is None
    assert result_text({"model": "x/y"}) == '{"model": "x/y"}'
    assert result_text(None) is None


def listing_of(rows: int) -> Listing:
    listing = Listing(("command", "kind", "target", "state", "text"), ids=("command",), folded=("text",))
    for i in range(rows):
        listing.add_row(f"cmd-{i:02d}3f2a9c0d1e2f3a4b5c6d7e8f", "approval-response", "scripted-1/chat",
                        "failed (execution_failed)", f"answer number {i} " + "with a long text " * 4)
    return listing


@pytest.mark.parametrize("width", [50, 80, 100, 200])
def test_listings_never_cut_an_id_at_any_terminal_width(width: int) -> None:
    console = Console(width=width, force_terminal=True, color_system=None)
    shown = Text.from_ansi(listing_of(3).render(console)).plain
    for i in range(3):
        assert f"cmd-{i:02d}3f2a9c0d1e2f3a4b5c6d7e8f" in shown, (width, shown)
        assert f"answer number {i}" in shown
    assert all(len(line) <= width for line in shown.splitlines())
    assert ("─" in shown) == (width >= 200)  # a table when it fits, else one block per row


def test_listings_into_a_pipe_keep_every_cell_on_one_unpadded_line() -> None:
    console = Console(width=1000, force_terminal=False)
    lines = listing_of(2).render(console).splitlines()
    assert len(lines) == 4 and all(line == line.rstrip() for line in lines)
    assert lines[2].startswith("cmd-003f2a9c0d1e2f3a4b5c6d7e8f") and lines[2].endswith("with a long text")
