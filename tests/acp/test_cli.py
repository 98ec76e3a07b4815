"""`patchbay adapter run acp` refuses configurations that cannot work, with the fix named."""

from __future__ import annotations

from pathlib import Path

from tests.support.processes import environment, run_cli


def test_bad_agent_configurations_are_refused_with_one_line(tmp_path: Path) -> None:
    env = environment(tmp_path)
    credential = tmp_path / "acp-1.credential"
    credential.write_text("secret\n")
    base = ["adapter", "run", "acp", "--id", "acp-1", "--core", "http://127.0.0.1:9",
            "--credential-file", str(credential), "--workspace", f"main:{tmp_path}"]
    cases = {
        (): "give --agent-command",
        ("--agent-command", str(tmp_path / "no-such-agent")): "is not found",
        ("--agent", "codex", "--agent-env", "1BAD=x"): "not a valid variable name",
        ("--agent-command", "true", "--agent-env", "SURELY_UNSET_VARIABLE_X"): "has no SURELY_UNSET_VARIABLE_X",
        ("--agent-command", "true", "--spawn-root", str(tmp_path)): "does not spawn",
    }
    for extra, message in cases.items():
        result = run_cli(env, *base, *extra)
        assert result.returncode == 1 and message in result.stderr, (extra, result.stderr)
    result = run_cli(env, "adapter", "run", "acp", "--help")
    assert result.returncode == 0 and "--agent-env" in result.stdout and "--approval-timeout" in result.stdout
