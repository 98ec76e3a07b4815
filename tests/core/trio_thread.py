"""A trio loop in a helper thread, so hypothesis' synchronous rules can drive the async core.

The loop owns one nursery; the core runs in it under its own cancel scope (so a test can stop
and restart it), and every rule runs as ``trio.from_thread.run`` on that loop.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from patchbay.core import Core

T = TypeVar("T")


class TrioThread:
    def __init__(self) -> None:
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stop: trio.Event | None = None
        self._core_scope: trio.CancelScope | None = None
        self._core_done: trio.Event | None = None
        self.core_error: BaseException | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), name="trio-core", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=60):
            raise RuntimeError("the trio thread did not start")

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def run(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        return trio.from_thread.run(function, *args, trio_token=self._token)

    def run_sync(self, function: Callable[..., T], *args: Any) -> T:
        return trio.from_thread.run_sync(function, *args, trio_token=self._token)

    async def start_core(self, core: Core) -> None:
        """Run ``core`` until ``stop_core``; a crash is kept in ``core_error`` for the test."""
        assert self._nursery is not None
        self._core_done = done = trio.Event()

        async def host(task_status: trio.TaskStatus[None]) -> None:
            try:
                with trio.CancelScope() as scope:
                    self._core_scope = scope
                    await core.run(task_status=task_status)
            except Exception as error:
                self.core_error = error
            finally:
                done.set()

        await self._nursery.start(host)

    async def stop_core(self) -> None:
        if self._core_scope is not None and self._core_done is not None:
            self._core_scope.cancel()
            await self._core_done.wait()
            self._core_scope = None

    def close(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self.run_sync(self._stop.set)
        self._thread.join(timeout=60)
