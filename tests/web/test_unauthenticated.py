"""What a stranger who reaches the listener can do, against a real ``serve`` (issue #14, items
4, 5 and 15): refused adapter hellos cost bounded journal space, a login flood gets exactly the
documented number of verifications with bounded memory, and browser requests must come from
this server's origin (the listener's own address or ``public_url``), never merely from the
``Host`` the request names."""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from tests.support.processes import PASSWORD, SETUP_SECRET, Deployment, deployment
from tests.web.browser import audit, bearer

pytestmark = pytest.mark.slow

PUBLIC = "http://pb.example"


def journal_bytes(home: Path) -> int:
    return sum(p.stat().st_size for p in home.glob("journal.db*"))


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, str]]:
    """A home made with ``--web-setup`` and ``public_url`` set, serving; and its setup secret."""
    with deployment(tmp_path_factory.mktemp("stranger"), web_setup=True) as d:
        d.configure(public_url=f'["{PUBLIC}"]')
        d.serve()
        assert d.serve_proc is not None
        yield d, d.serve_proc.wait_line(SETUP_SECRET).group(1)


def test_setup_and_login_check_origin_against_the_listener_and_public_url(fresh: tuple[Deployment, str]) -> None:
    d, secret = fresh
    port = d.url.rsplit(":", 1)[1]
    rebound = {"Origin": f"http://evil.example:{port}", "Host": f"evil.example:{port}"}  # DNS rebinding
    setup = {"secret": secret, "password": PASSWORD}
    refused = httpx.post(d.url + "/api/setup", json=setup, headers=rebound)
    assert refused.status_code == 403 and refused.json()["check"] == "origin", refused.text
    assert httpx.get(d.url + "/api/status").json()["setup_required"] is True
    assert httpx.post(d.url + "/api/setup", json=setup, headers={"Origin": d.url}).status_code == 200
    login = {"password": PASSWORD}
    answer = httpx.post(d.url + "/api/login", json=login, headers=rebound)
    assert answer.status_code == 403 and answer.json()["check"] == "origin"
    for origin in (d.url, f"http://localhost:{port}", PUBLIC):
        answer = httpx.post(d.url + "/api/login", json=login, headers={"Origin": origin})
        assert answer.status_code == 200, (origin, answer.text)
    for origin in (f"http://127.0.0.1:{int(port) + 1}", f"https://127.0.0.1:{port}", "null", "http://pb.example:81"):
        answer = httpx.post(d.url + "/api/login", json=login, headers={"Origin": origin})
        assert answer.status_code == 403, (origin, answer.text)


def test_refused_hellos_with_huge_ids_cost_bounded_journal_space(fresh: tuple[Deployment, str]) -> None:
    d, _ = fresh
    url = d.url.replace("http://", "ws://") + "/adapter/v1"

    async def flood() -> list[str]:
        codes = []
        for index in range(60):
            hello = {"type": "hello", "protocol": 1, "adapter_id": f"{index}-" + "x" * 1_000_000,
                     "credential": "y" * 20_000, "adapter_generation": 1, "deployment_scope": "z",
                     "manifest": {"kinds": []}}
            async with open_websocket_url(url, max_message_size=4 * 1024 * 1024) as ws:
                await ws.send_message(json.dumps(hello))
                with trio.fail_after(20):
                    codes.append(json.loads(await ws.get_message())["code"])
        return codes

    before = journal_bytes(d.home)
    assert trio.run(flood) == ["attach_refused"] * 60
    grown = journal_bytes(d.home) - before
    assert grown < 256 * 1024, f"the journal grew by {grown} bytes"
    print(f"60 refused hellos with 1 MB ids: the journal grew by {grown} bytes")
    http, _ = bearer(d.url)
    records = [r["details"] for r in audit(http, "adapter.protocol_error") if r["details"].get("frame_type") == "hello"]
    http.close()
    assert 1 <= len(records) <= 6
    for details in records:
        assert len(json.dumps(details)) < 1_000
        assert details["adapter_id_length"] > 1_000_000 and len(details["adapter_id_sha256"]) == 64


def test_a_login_flood_gets_exactly_the_documented_verifications_with_bounded_memory(tmp_path: Path) -> None:
    with deployment(tmp_path) as d:
        d.configure(trusted_proxy="true")  # so each request can name its client address
        d.serve()
        assert d.serve_proc is not None
        pid = d.serve_proc.pid
        baseline = rss_kib(pid, "VmRSS")

        async def flood(addresses: list[str]) -> Counter[int]:
            statuses: Counter[int] = Counter()
            limits = httpx.Limits(max_connections=len(addresses), max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=d.url, timeout=120, limits=limits) as client:
                async def attempt(address: str) -> None:
                    answer = await client.post("/api/login", json={"password": "wrong", "endpoint_kind": "cli"},
                                               headers={"X-Forwarded-For": address, "X-Forwarded-Proto": "https"})
                    statuses[answer.status_code] += 1

                async with trio.open_nursery() as nursery:
                    for address in addresses:
                        nursery.start_soon(attempt, address)
            return statuses

        one_address = trio.run(flood, ["10.0.0.1"] * 200)
        assert one_address == Counter({401: 5, 429: 195}), one_address
        many_addresses = trio.run(flood, [f"10.1.{i // 250}.{i % 250}" for i in range(200)])
        assert many_addresses == Counter({401: 15, 429: 185}), many_addresses  # 20 per account in all
        peak = rss_kib(pid, "VmHWM")
        assert peak - baseline < 300 * 1024, f"RSS went from {baseline} KiB to a peak of {peak} KiB"
        print(f"login flood: RSS {baseline} KiB before, peak {peak} KiB")
        right = httpx.post(d.url + "/api/login", json={"password": PASSWORD, "endpoint_kind": "cli"},
                           headers={"X-Forwarded-For": "10.9.9.9", "X-Forwarded-Proto": "https"})
        assert right.status_code == 429  # the account limit holds even for the right password
        d.configure(trusted_proxy="false")  # from here on the bearer client below is this host
        d.serve_proc.kill(signal.SIGTERM)
        d.serve()
        http, _ = bearer(d.url)
        failed = audit(http, "login.failed")
        http.close()
        reasons = Counter(r["details"]["reason"] for r in failed)
        assert reasons["wrong password"] == 20
        assert reasons["rate_limited"] <= 2 * 20 + 2, reasons  # 380 refusals, aggregated
