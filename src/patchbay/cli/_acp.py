"""``patchbay adapter run acp``: drive an Agent Client Protocol agent (Claude Code, Codex,
Gemini CLI, OpenCode, …) in each workspace (see docs/ADAPTER-ACP.md)."""

from __future__ import annotations

from pathlib import Path

import click

from patchbay.cli._adapter import adapter_options, parse_workspaces, run, run_runtime
from patchbay.cli._errors import CliError


@run.command("acp")
@adapter_options
@click.option("--agent", type=click.Choice(["claude", "codex", "gemini", "opencode"]), default=None,
              help="A preset: the agent's usual start command (found on PATH) and the quiet environment it needs.")
@click.option("--agent-command", default=None,
              help="The agent's start command line, e.g. 'claude-agent-acp' or 'gemini --acp' (overrides --agent).")
@click.option("--agent-env", "agent_env", multiple=True,
              help="NAME to copy from this environment, or NAME=VALUE to set, for the agent (repeatable); "
                   "nothing else is passed on but PATH, HOME, LANG and TMPDIR.")
@click.option("--agent-mode", default=None, help="The ACP session mode to set after each new session (e.g. default).")
@click.option("--approval-timeout", type=click.FloatRange(min=0.1), default=300.0, show_default=True,
              help="Seconds before an unanswered permission expires and the agent is told to reject.")
@click.option("--restart-after-cancel/--no-restart-after-cancel", default=None,
              help="Restart the agent (it loads its session) after a cancelled turn; the claude preset does, "
                   "as claude-agent-acp answers the next prompt out of step.")
@click.option("--no-fs", is_flag=True, help="Do not offer the agent file access (fs/*) through the adapter.")
@click.option("--state-dir", type=click.Path(path_type=Path), default=None,
              help="Slot generations and ACP session ids (default: <ID>.acp-state beside the credential).")
def run_acp(adapter_id: str, core_url: str, credential_file: Path, workspaces: tuple[str, ...],
            spawn_roots: tuple[Path, ...], deployment_scope: str | None, agent: str | None,
            agent_command: str | None, agent_env: tuple[str, ...], agent_mode: str | None,
            approval_timeout: float, restart_after_cancel: bool | None, no_fs: bool,
            state_dir: Path | None) -> None:
    """Drive an ACP agent over its stdio, one supervised agent per workspace.

    \b
    Example:
      patchbay adapter run acp --id claude-1 --core http://127.0.0.1:8765 \\
        --credential-file ~/pb/adapters/claude-1.credential --workspace app:$HOME/app \\
        --agent claude --agent-env ANTHROPIC_API_KEY
    """
    from patchbay_adapters.acp.adapter import build_runtime

    if spawn_roots:
        raise CliError("the acp adapter does not spawn sessions: give each directory as --workspace NAME:DIR")
    try:
        runtime = build_runtime(parse_workspaces(workspaces), agent=agent, agent_command=agent_command,
                                agent_env=list(agent_env), agent_mode=agent_mode, approval_timeout=approval_timeout,
                                fs=not no_fs, restart_after_cancel=restart_after_cancel,
                                state_dir=state_dir or credential_file.parent / f"{adapter_id}.acp-state")
    except ValueError as problem:
        raise CliError(str(problem)) from None
    run_runtime(runtime, adapter_id=adapter_id, core_url=core_url, credential_file=credential_file,
                deployment_scope=deployment_scope)
