"""Presets for the four agents the adapter is tested with: their start command (found on the
agent's PATH) and the environment each needs to stay quiet and offline-friendly. Provider keys
and endpoints are never part of a preset: pass them with ``--agent-env``."""

from __future__ import annotations

import attrs
from patchbay_adapters.common.environment import ConfigurationError


@attrs.frozen
class Preset:
    command: tuple[str, ...]
    env: dict[str, str]
    restart_after_cancel: bool = False


PRESETS = {
    "claude": Preset(("claude-agent-acp",), {
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1"}, restart_after_cancel=True),
    "codex": Preset(("codex-acp",), {}),
    "gemini": Preset(("gemini", "--acp"), {}),
    "opencode": Preset(("opencode", "acp"), {
        "OPENCODE_DISABLE_MODELS_FETCH": "1", "OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_SHARE": "1",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1", "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1"}),
}


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigurationError(f"--agent must be one of {', '.join(sorted(PRESETS))}, not {name!r}") from None
