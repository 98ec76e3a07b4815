"""The highest LSN this CLI has seen from its core, kept with the login as evidence.

Every guarded answer names the core's authority domain and journal head
(``X-Patchbay-Head-LSN``); the CLI keeps the highest for the domain in its login file and sends
it back on each request (``X-Patchbay-Known-LSN``). A core whose head is behind what it had
already shown has lost durable history: it records that, and the CLI says so on stderr. Storing
the value is best effort: a login file that cannot be written never fails a command.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import click

from patchbay.core.config import write_private
from patchbay.wire.known_lsn import claim_value, parse_claim


class KnownLsn:
    def __init__(self, value: str | None, token: str, url: str, path: Path) -> None:
        self.claim = parse_claim(value)
        self.path = path
        self.token = token
        self.url = url
        self.warned = False

    @property
    def header(self) -> str | None:
        return claim_value(*self.claim) if self.claim is not None else None

    def observe(self, head_header: str | None) -> None:
        """Take the head an answer carried: warn if it is behind, remember it if it is ahead."""
        head = parse_claim(head_header)
        if head is None:
            return
        if self.claim is not None and self.claim[0] == head[0]:
            if head[1] < self.claim[1] and not self.warned:
                self.warned = True
                click.echo(f"patchbay: warning: the core at {self.url} has lost history it had acknowledged "
                           f"(this CLI saw LSN {self.claim[1]}, its journal ends at {head[1]}); "
                           "GET /api/status shows the evidence, see RUNBOOK recovery", err=True)
            if head[1] <= self.claim[1]:
                return
        self.claim = head
        self._store()

    def _store(self) -> None:
        path = self.path
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text())
            if isinstance(data, dict) and data.get("token") == self.token:  # still this login
                data["known_lsn"] = self.header
                write_private(path, json.dumps(data, indent=2) + "\n")
