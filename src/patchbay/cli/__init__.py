"""``patchbay``: setup, administration, debugging and scripted access (same semantics as the web).

Exit codes: 0 ok; 1 local or transport error; 2 rejected before acceptance; 3 the command
ended in a non-success terminal state; 4 outcome unknown. Every listing has ``--json``;
secrets are read from stdin, the environment or a prompt, never from argv.

The group lives in ``_app``; each module imported below attaches its commands to it. Registering
a new command module is one import line here.
"""

from __future__ import annotations

import patchbay.cli._acp  # noqa: F401  adapter run acp
import patchbay.cli._adapter  # noqa: F401  adapter add, adapter run shell|pi
import patchbay.cli._admin  # noqa: F401  grants, security, revoke, lockdown
import patchbay.cli._approvals  # noqa: F401  approvals, approve, answer
import patchbay.cli._commands_view  # noqa: F401  sessions, commands, inspect, watch, audit
import patchbay.cli._completion  # noqa: F401  completion bash|zsh|fish
import patchbay.cli._export  # noqa: F401  export (a session's own export, e.g. Pi's HTML)
import patchbay.cli._login  # noqa: F401  login, logout
import patchbay.cli._send  # noqa: F401  send, cancel, interrupt
import patchbay.cli._service  # noqa: F401  service serve|adapter (systemd units)
import patchbay.cli._setup  # noqa: F401  init, serve, replay
from patchbay.cli._app import main

__all__ = ["main"]
