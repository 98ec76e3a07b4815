"""Run one adapter process: its runtime and its link to the core, in one nursery."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Protocol

import trio
from patchbay_adapters.common.link import AdapterLink, Runtime, next_generation, read_credential


class RunnableRuntime(Runtime, Protocol):
    async def run(self, link: AdapterLink, *, task_status: Any = ...) -> None: ...


async def run_adapter(runtime: RunnableRuntime, *, adapter_id: str, core_url: str, credential_file: Path,
                      deployment_scope: str | None = None) -> None:
    """Start the runtime, then keep the link to the core; runs until cancelled."""
    link = AdapterLink(adapter_id=adapter_id, core_url=core_url, credential=read_credential(credential_file),
                       deployment_scope=deployment_scope or socket.gethostname(),
                       generation=next_generation(credential_file), runtime=runtime)
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run, link)
        await nursery.start(link.run)
