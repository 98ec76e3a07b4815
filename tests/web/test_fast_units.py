"""The fast route's body reading, without a server (virtual clock)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio

from patchbay.web._fast import BODY_TIMEOUT, FastRoutes


class AnyCaller:
    def transport_refusal(self, scheme: str, address: str) -> None:
        return None

    def require(self, *args: Any, **kwargs: Any) -> Any:
        return SimpleNamespace(issuer=None)


class NoSubmissions:
    async def submit(self, *args: Any) -> Any:
        raise AssertionError("nothing may be submitted")


async def quart(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("POST /api/commands must not reach Quart")


async def test_a_body_that_never_arrives_is_answered_408(autojump_clock: trio.abc.Clock) -> None:
    app = FastRoutes(quart, NoSubmissions(), AnyCaller(), trusted_proxy=False)  # type: ignore[arg-type]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await trio.sleep_forever()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/commands", "scheme": "http",
             "client": ("127.0.0.1", 40000), "headers": [(b"authorization", b"Bearer x")]}
    with trio.fail_after(BODY_TIMEOUT * 2):
        await app(scope, receive, send)
    assert sent[0]["status"] == 408
    assert b"did not arrive" in sent[1]["body"]


@pytest.mark.parametrize("path", ["/api/commands/x", "/api/command", "/api/commands/"])
async def test_other_paths_go_to_quart(path: str) -> None:
    reached: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    app = FastRoutes(inner, NoSubmissions(), AnyCaller(), trusted_proxy=False)  # type: ignore[arg-type]
    await app({"type": "http", "method": "POST", "path": path, "headers": []}, None, None)
    assert reached == [path]


async def test_a_refusal_is_audited_even_when_its_body_never_arrives(autojump_clock: trio.abc.Clock) -> None:
    from patchbay.web._guard import Refusal

    audited: list[str] = []

    class Refuses(AnyCaller):
        def require(self, *args: Any, **kwargs: Any) -> Any:
            raise Refusal(401, "session", "log in first: no valid session")

        async def audit_refusal(self, refusal: Refusal, method: str, path: str, address: str) -> None:
            audited.append(refusal.check)

    app = FastRoutes(quart, NoSubmissions(), Refuses(), trusted_proxy=False)  # type: ignore[arg-type]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await trio.sleep_forever()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/commands", "scheme": "http",
             "client": ("127.0.0.1", 40000), "headers": []}
    with trio.fail_after(BODY_TIMEOUT * 2):
        await app(scope, receive, send)
    assert audited == ["session"] and sent[0]["status"] == 401
