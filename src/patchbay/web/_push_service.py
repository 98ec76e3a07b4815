"""The Web Push service of one ``serve``: settings, keys, the sender, and the subscriber to
committed events that turns the ones worth a notification into pushes to every subscription.

``run`` is a task in the serve nursery; it owns the sender's task. The subscriber reads the
core's event bus (bounded); cut off after falling behind, it subscribes again — the pushes of
the skipped events are lost, which a hint may be: the cockpit shows the journal's truth.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import trio

from patchbay.core import Core
from patchbay.domain.events import EventKind
from patchbay.web._push import PushSettings, public_key, vapid_keys
from patchbay.web._push_notes import notification_for
from patchbay.web._push_send import PushSender

BUS_CAPACITY = 4096
log = logging.getLogger("patchbay.push")


class PushService:
    def __init__(self, home: Path, config_file: Path, core: Core) -> None:
        self.core = core
        self.settings = PushSettings.load(config_file)
        self.vapid = vapid_keys(home)
        self.public_key = public_key(self.vapid)
        self.sender = PushSender(self.vapid, self.settings, self.forget)

    async def forget(self, subscription_id: str, reason: str) -> None:
        if subscription_id in self.core.state.push_subscriptions:
            await self.core.record(EventKind.push_unsubscribed, f"push:{subscription_id}",
                                   {"subscription_id": subscription_id, "reason": reason})

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.sender.run)
            task_status.started()
            while True:
                with self.core.bus.subscribe(BUS_CAPACITY) as subscription:
                    async for event in subscription.receive:
                        self.consider(event)
                    if not subscription.overflowed:
                        break
            nursery.cancel_scope.cancel()

    def consider(self, event: Any) -> None:
        try:
            note = notification_for(event, self.core.state, self.settings.finished_after_s)
        except (KeyError, TypeError, ValueError, AttributeError) as problem:
            log.warning("no push for event %s (%s): %r", getattr(event, "lsn", "?"), getattr(event, "kind", "?"), problem)
            return
        if note is None:
            return
        for subscription in list(self.core.state.push_subscriptions.values()):
            self.sender.offer(subscription, note)
