"""SIGTERM for an adapter process: stop its slots the clean way, report them offline, then die
of SIGTERM.

``watch`` cancels the adapter's nursery on SIGTERM, so each slot's own cleanup stops its child
the clean way; once that nursery is done, ``finish`` reports every slot offline (bounded) and
ends the process with SIGTERM's default action, as if nothing had caught it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterable
from typing import Protocol

import trio

OFFLINE_BOUND = 5.0  # seconds for all the offline reports together


class Reporting(Protocol):
    async def report_offline(self, reason: str) -> None: ...


class SigtermStop:
    def __init__(self) -> None:
        self.received = False

    def watch(self, nursery: trio.Nursery) -> None:
        """Cancel ``nursery`` on SIGTERM (only the main thread can receive signals)."""
        if threading.current_thread() is threading.main_thread():
            nursery.start_soon(self._watch, nursery.cancel_scope)

    async def _watch(self, scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async for _ in signals:
                self.received = True
                scope.cancel()
                return

    async def finish(self, slots: Iterable[Reporting]) -> None:
        """After a SIGTERM: report ``slots`` offline, then end the process by SIGTERM."""
        if not self.received:
            return
        with trio.move_on_after(OFFLINE_BOUND):
            for slot in list(slots):
                await slot.report_offline("the adapter was stopped (SIGTERM)")
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
