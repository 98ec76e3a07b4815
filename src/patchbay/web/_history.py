"""A session's transcript read from its newest end: ``GET /api/sessions/<target>/history`` with
``before`` (an LSN; absent: the newest) and ``limit`` answers the newest ``limit`` events of that
session below ``before``, oldest first, and ``more`` when older ones exist. The cockpit opens a
long session with one page and loads older history on demand; it then follows the stream (and
``/transcript?after=`` after a snapshot) as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from quart import Response, request
from quart_trio import QuartTrio

from patchbay.core import Core
from patchbay.web._stream import event_view

PAGE_MAX = 2000

Handler = Callable[..., Awaitable[Response]]


def register(app: QuartTrio, core: Core, guarded: Callable[[bool], Callable[[Handler], Handler]],
             error: Callable[..., Response], ok: Callable[..., Response]) -> None:
    @app.get("/api/sessions/<path:target>/history")
    @guarded(False)
    async def history(_caller: Any, target: str) -> Response:
        try:
            before = int(request.args["before"]) if request.args.get("before") else None
            limit = max(1, min(int(request.args.get("limit", "500") or 500), PAGE_MAX))
        except ValueError:
            return error(400, "before and limit must be integers")
        events = core.events_before(before, limit=limit, entity=f"session:{target}")
        return ok({"target": target, "events": [event_view(e) for e in events], "more": len(events) == limit,
                   "lsn": core.state.last_lsn})
