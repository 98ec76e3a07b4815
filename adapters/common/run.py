"""Run one adapter process: its runtime and its link to the core, in one nursery.

SIGINT and SIGTERM cancel that nursery, so a runtime's cleanup runs (the shell adapter kills
its jobs' process groups, the Pi adapter stops pi) before the process exits: a supervisor that
stops an adapter by PID leaves nothing behind.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path
from typing import Any, Protocol

import trio
from patchbay_adapters.common.link import (
    AdapterLink,
    LinkError,
    Runtime,
    next_generation,
    read_credential,
)


class RunnableRuntime(Runtime, Protocol):
    async def run(self, link: AdapterLink, *, task_status: Any = ...) -> None: ...


async def run_adapter(runtime: RunnableRuntime, *, adapter_id: str, core_url: str, credential_file: Path,
                      deployment_scope: str | None = None, reconnect_max: float = 10.0) -> None:
    """Start the runtime, then keep the link to the core; runs until cancelled or signalled."""
    link = AdapterLink(adapter_id=adapter_id, core_url=core_url, credential=read_credential(credential_file),
                       deployment_scope=deployment_scope or socket.gethostname(),
                       generation=next_generation(credential_file), runtime=runtime, reconnect_max=reconnect_max)
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
