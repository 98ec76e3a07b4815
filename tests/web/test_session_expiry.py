"""Idle and absolute expiry of operator sessions, with a configuration of tiny timeouts.

The core journals the expiry itself (a timer at each session's next possible deadline), so the
test waits for the audit record rather than for a clock: a bounded poll of a condition.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.processes import deployment, wait_for
from tests.web.browser import Browser, audit, bearer

pytestmark = pytest.mark.slow

IDLE, ABSOLUTE = 2.0, 4.0


def test_idle_and_absolute_expiry_end_sessions_and_are_audited(tmp_path: Path) -> None:
    with deployment(tmp_path) as d:
        d.configure(session_idle=str(IDLE), session_absolute=str(ABSOLUTE))
        d.serve()
        idle = Browser(d.url)
        busy, busy_login = bearer(d.url)  # keeps itself active by polling

        def expired(session_id: str) -> dict[str, str] | None:
            for record in audit(busy, "operator_session.expired"):
                if record["details"]["session_id"] == session_id:
                    return dict(record["details"])
            return None

        idle_record = wait_for(lambda: expired(idle.session_id), timeout=30, interval=0.1, what="idle expiry")
        assert idle_record["reason"] == "idle timeout"
        refused = idle.post("/api/commands", {"command_id": "late", "kind": "instruct"})
        assert refused.status_code == 401 and refused.json()["check"] == "session"

        wait_for(lambda: busy.get("/api/me").status_code == 401, timeout=30, interval=0.1,
                 what="absolute expiry of an active session")
        observer, _ = bearer(d.url)
        absolute = [r["details"] for r in audit(observer, "operator_session.expired")
                    if r["details"]["session_id"] == busy_login["session_id"]]
        assert [r["reason"] for r in absolute] == ["absolute expiry"]
        ended = {s["session_id"]: s for s in observer.get("/api/security").json()["operator_sessions"]}
        assert ended[idle.session_id]["revoked"] and ended[busy_login["session_id"]]["revoked"]
