"""Run one adapter process: its runtime and its link to the core, in one nursery.

SIGINT and SIGTERM cancel that nursery, so a runtime's cleanup runs (the shell adapter kills
its jobs' process groups, the Pi adapter stops pi) before the process exits: a supervisor that
stops an adapter by PID leaves nothing behind.

The credential file gives the credential and, when ``adapter add`` wrote them, the core's URL
and the SHA-256 fingerprint its TLS certificate is pinned to (``credential``, ``trust``).
"""

from __future__ import annotations

import signal
import socket
import ssl
from pathlib import Path
from typing import Any, Protocol

import trio
from patchbay_adapters.common.credential import CredentialFileError, read_credential_file
from patchbay_adapters.common.link import AdapterLink, LinkError, Runtime, next_generation
from patchbay_adapters.common.trust import client_context


class RunnableRuntime(Runtime, Protocol):
    async def run(self, link: AdapterLink, *, task_status: Any = ...) -> None: ...


def link_settings(credential_file: Path, core_url: str | None,
                  ca_file: Path | None) -> tuple[str, str, ssl.SSLContext | None]:
    """The credential, the core's URL and the TLS context for ``wss://`` (pinned when the
    credential file holds a fingerprint, else ``ca_file`` or the system store)."""
    try:
        parsed = read_credential_file(credential_file)
    except CredentialFileError as problem:
        raise SystemExit(str(problem)) from None
    url = core_url or parsed.core_url
    if not url:
        raise SystemExit(f"no core URL: give --core (the credential file {credential_file} names none)")
    secure = url.startswith(("https://", "wss://"))
    try:
        context = client_context(fingerprint=parsed.core_fingerprint, ca_file=ca_file) if secure else None
    except (OSError, ssl.SSLError) as problem:
        raise SystemExit(f"cannot use --ca-file {ca_file}: {problem}") from None
    return parsed.credential, url, context


async def run_adapter(runtime: RunnableRuntime, *, adapter_id: str, core_url: str | None, credential_file: Path,
                      deployment_scope: str | None = None, ca_file: Path | None = None,
                      reconnect_max: float = 10.0) -> None:
    """Start the runtime, then keep the link to the core; runs until cancelled or signalled."""
    credential, url, context = link_settings(credential_file, core_url, ca_file)
    link = AdapterLink(adapter_id=adapter_id, core_url=url, credential=credential,
                       deployment_scope=deployment_scope or socket.gethostname(),
                       generation=next_generation(credential_file), runtime=runtime,
                       reconnect_max=reconnect_max, ssl_context=context)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on_signals, nursery.cancel_scope)
            await nursery.start(runtime.run, link)
            await nursery.start(link.run)
    except* LinkError as refused:
        # Retrying cannot help (wrong credential, or a newer process of this adapter took over):
        # stop, after the runtime's cleanup ran, with the core's reason and exit status 1.
        raise SystemExit(f"adapter {adapter_id}: {refused.exceptions[0]}") from None


async def _cancel_on_signals(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return
