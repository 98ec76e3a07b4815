"""Admission at both boundaries of a real ``serve`` (issue #14, items 1, 2, 7–11): a value
no later stage could store, encode, replay or display is refused naming its field, and audited;
nothing of it is accepted or acknowledged. With a checkpoint after every commit, the core then
restarts and ``replay --check`` is clean."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from patchbay.web._fast import SECURITY_HEADERS
from tests.support.processes import PASSWORD, Deployment, deployment, run_cli
from tests.web.browser import audit, bearer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with deployment(tmp_path_factory.mktemp("admission")) as d:
        d.configure(checkpoint_every="1")  # a checkpoint after every commit
        d.serve()
        d.shell_adapter()
        d.api().wait_session("shell-1/demo", "live")
        yield d


@pytest.fixture(scope="module")
def admin(deploy: Deployment) -> Iterator[httpx.Client]:
    http, _ = bearer(deploy.url)
    yield http
    http.close()


def command(command_id: str, payload: str) -> bytes:
    return (f'{{"command_id": "{command_id}", "idempotency_key": "{command_id}", "kind": "instruct", '
            f'"target": "shell-1/demo", "payload": {payload}}}').encode()


def assert_security_headers(response: httpx.Response) -> None:
    assert response.headers["content-type"] == "application/json", response.text[:200]
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name


def nested(depth: int) -> str:
    return '{"text": "x", "deep": ' + "[" * depth + "]" * depth + "}"


REFUSED_PAYLOADS = [
    ("lone-surrogate", '{"text": "hi", "note": "\\ud83d"}', "payload.note"),
    ("huge-int", '{"text": "hi", "n": 1' + "0" * 400 + "}", "payload.n"),
    ("past-64-bits", '{"text": "hi", "n": 9223372036854775808}', "payload.n"),
    ("nan", '{"text": "hi", "n": NaN}', "payload.n"),
    ("infinity", '{"text": "hi", "n": -Infinity}', "payload.n"),
    ("nested-300", nested(300), "payload.deep"),
    ("surrogate-key", '{"text": "hi", "\\udc00": 1}', "payload"),
]


@pytest.mark.parametrize(("name", "payload", "field"), REFUSED_PAYLOADS, ids=[p[0] for p in REFUSED_PAYLOADS])
def test_a_submission_no_stage_could_carry_is_validation_failed_naming_the_field(
        deploy: Deployment, admin: httpx.Client, name: str, payload: str, field: str) -> None:
    answer = admin.post("/api/commands", content=command(f"bad-{name}", payload),
                        headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert (body["outcome"], body["failure"], body["command"]) == ("rejected", "validation_failed", None)
    assert body["field"].startswith(field), body
    assert_security_headers(answer)
    assert admin.get(f"/api/commands/bad-{name}").status_code == 404
    refused = [r["details"] for r in audit(admin, "security.request_refused")
               if r["details"].get("check") == "validation_failed"]
    assert any(d["field"] == body["field"] and d["path"] == "/api/commands" for d in refused)


def test_generation_that_is_not_an_integer_of_one_or_more_is_validation_failed(admin: httpx.Client) -> None:
    for index, generation in enumerate(["1.0", '"1"', "[1]", str(2**70), "0", "-3", "true"]):
        body = command(f"gen-{index}", '{"text": "echo hi"}')[:-1] + f', "generation": {generation}}}'.encode()
        answer = admin.post("/api/commands", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 422, (generation, answer.text)
        assert (answer.json()["failure"], answer.json()["field"]) == ("validation_failed", "generation")
    fine = command("gen-ok", '{"text": "echo gen"}')[:-1] + b', "generation": 1}'
    assert admin.post("/api/commands", content=fine).json()["outcome"] == "accepted"


def test_bodies_that_are_no_json_object_answer_409_and_oversized_ones_413_json(deploy: Deployment,
                                                                               admin: httpx.Client) -> None:
    too_deep = admin.post("/api/commands", content=command("deep", nested(100_000)))
    assert too_deep.status_code == 409 and "JSON object" in too_deep.json()["error"]
    assert_security_headers(too_deep)
    for path in ("/api/login", "/api/grants", "/api/lockdown"):
        for body in (b"[1, 2]", b'"text"', b"{", b"\xff\xfe"):
            answer = admin.post(path, content=body)
            assert answer.status_code == 409, (path, body, answer.text)
            assert_security_headers(answer)
    for size in (10 * 1024 * 1024, 100 * 1024 * 1024):
        for path in ("/api/login", "/api/grants", "/api/commands"):
            answer = admin.post(path, content=b'{"password": "' + b"x" * size + b'"}')
            assert answer.status_code == 413, (path, size, answer.text[:200])
            assert answer.json()["error"].startswith("the request body is larger than")
            assert_security_headers(answer)



def test_a_grant_body_of_the_wrong_shape_is_validation_failed_naming_the_field(admin: httpx.Client) -> None:
    for body, field in [({"scope": 1, "kinds": ["instruct"]}, "scope"), ({"kinds": 5}, "kinds"),
                        ({"kinds": [1]}, "kinds[0]"), ({"kinds": ["instruct"], "expires_at": "x"}, "expires_at"),
                        ({"kinds": ["instruct"], "expires_at": 1e300}, "expires_at"),
                        ({"kinds": ["instruct"], "endpoint_id": []}, "endpoint_id"),
                        ({"kinds": ["instruct"], "scope": {"type": "adapter", "adapter_id": []}}, "scope.adapter_id")]:
        answer = admin.post("/api/grants", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert (answer.json()["failure"], answer.json()["field"]) == ("validation_failed", field)
        assert_security_headers(answer)
    fine = admin.post("/api/grants", json={"kinds": ["query"], "scope": {"type": "all", "extra": [[1]]}})
    assert fine.status_code == 200 and fine.json()["scope"] == {"type": "all"}

def test_query_parameters_are_validated_and_capped(admin: httpx.Client) -> None:
    for path, params, field in [
        ("/api/audit", {"limit": "-1"}, "limit"), ("/api/audit", {"limit": "abc"}, "limit"),
        ("/api/audit", {"before": "abc"}, "before"), ("/api/audit", {"before": "-5"}, "before"),
        ("/api/audit", {"limit": "1" + "0" * 40}, "limit"),
        ("/api/sessions/shell-1/demo/transcript", {"after": "abc"}, "after"),
        ("/api/sessions/shell-1/demo/transcript", {"limit": "0"}, "limit"),
        ("/api/commands", {"limit": "1.5"}, "limit"), ("/api/commands", {"limit": "--5"}, "limit"),
        ("/api/audit", {"limit": "\u0663"}, "limit"), ("/api/audit", {"before": "1" * 25}, "before"),
    ]:
        answer = admin.get(path, params=params)
        assert answer.status_code == 400, (path, params, answer.text)
        assert (answer.json()["failure"], answer.json()["field"]) == ("validation_failed", field)
        assert_security_headers(answer)
    capped = admin.get("/api/audit", params={"limit": "100000"})
    assert capped.status_code == 200 and 0 < len(capped.json()["records"]) <= 500


async def _adapter_exchange(url: str, hello: dict[str, Any], frames: list[str]) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    async with open_websocket_url(url, max_message_size=8 * 1024 * 1024) as ws:
        await ws.send_message(json.dumps(hello))
        assert json.loads(await ws.get_message())["type"] == "welcome"
        for text in frames:
            await ws.send_message(text)
            with trio.fail_after(20):
                while True:
                    answer = json.loads(await ws.get_message())
                    if answer["type"] in ("ack", "error"):
                        answers.append(answer)
                        break
    return answers


def adapter(deploy: Deployment, adapter_id: str) -> tuple[str, dict[str, Any]]:
    credential = deploy.add_adapter(adapter_id).read_text().strip()
    hello = {"type": "hello", "protocol": 1, "adapter_id": adapter_id, "credential": credential,
             "adapter_generation": 1, "deployment_scope": adapter_id, "manifest": {"kinds": ["instruct"]}}
    return deploy.url.replace("http://", "ws://") + "/adapter/v1", hello


def test_adapter_frames_no_stage_could_carry_are_malformed_and_audited(deploy: Deployment,
                                                                        admin: httpx.Client) -> None:
    url, hello = adapter(deploy, "fz")
    session = {"type": "session", "runtime_session_id": "s", "generation": 1}
    frames = [
        json.dumps({**session, "seq": 10**30}),
        json.dumps({**session, "seq": 1, "generation": 10**30}),
        json.dumps({**session, "seq": 1, "label": "\ud83d"}),
        json.dumps({**session, "seq": 1, "metadata": {"n": float("nan")}}),
        '{"type": "session", "seq": 1, "runtime_session_id": "s", "generation": 1, "metadata": '
        + "[" * 300 + "]" * 300 + "}",
        "[" * 200_000 + "]" * 200_000,
        json.dumps({"type": "batch", "frames": [{**session, "seq": 1, "generation": 2**64}]}),
        json.dumps({"type": "lease", "seq": 1, "op": "acquire", "resource": "dir:/x", "scope": "fz",
                    "ttl": 1e300}),
    ]
    answers = trio.run(_adapter_exchange, url, hello, frames)
    assert [a["type"] for a in answers] == ["error"] * len(frames), answers
    assert all(a["code"] == "malformed" for a in answers), answers
    fine = trio.run(_adapter_exchange, url, hello, [json.dumps({**session, "seq": 1})])
    assert fine[0]["type"] == "ack"
    errors = [r["details"] for r in audit(admin, "adapter.protocol_error") if r["details"]["adapter_id"] == "fz"]
    assert sum(d["code"] == "malformed" for d in errors) >= len(frames)
    assert all(len(json.dumps(d)) < 2_000 for d in errors)


def test_an_adapter_cannot_take_a_lease_in_another_adapters_scope(deploy: Deployment, admin: httpx.Client) -> None:
    url, hello = adapter(deploy, "evil")
    frames = [json.dumps({"type": "lease", "seq": seq, "op": "acquire", "resource": "dir:/srv", "scope": scope,
                          "ttl": 60}) for seq, scope in ((1, "shell-1"), (2, "shell-1/demo"))]
    frames.append(json.dumps({"type": "lease", "seq": 3, "op": "acquire", "resource": "dir:/srv", "scope": "evil",
                              "ttl": 60}))
    answers = trio.run(_adapter_exchange, url, hello, frames)
    assert [(a["type"], a.get("code")) for a in answers] == [("error", "refused"), ("error", "refused"),
                                                              ("ack", None)], answers
    held = admin.get("/api/leases").json()["leases"]
    assert not any(lease["scope"].startswith("shell-1") and lease["holder"].startswith("adapter:evil")
                   for lease in held)


def test_the_cli_refuses_a_payload_the_core_could_not_admit_before_sending(deploy: Deployment) -> None:
    login = run_cli(deploy.env, "login", "--url", deploy.url, "--password-stdin", stdin=PASSWORD + "\n")
    assert login.returncode == 0, login.stderr
    text = os.fsdecode(b"echo \xff")  # argv that is not UTF-8: the CLI sees a lone surrogate
    sent = run_cli(deploy.env, "send", "shell-1/demo", text, "--command-id", "cli-bad")
    assert sent.returncode == 2, sent.stdout + sent.stderr
    assert "payload.text" in sent.stderr and "nothing was sent" in sent.stderr
    http, _ = bearer(deploy.url)
    assert http.get("/api/commands/cli-bad").status_code == 404
    http.close()


def test_a_stream_cursor_that_is_no_lsn_is_taken_as_unknown(deploy: Deployment, admin: httpx.Client) -> None:
    domain = admin.get("/api/status").json()["authority_domain_id"]
    token = admin.headers["Authorization"].encode()

    async def hello(cursor: str) -> dict[str, Any]:
        url = deploy.url.replace("http://", "ws://") + f"/api/stream?cursor={cursor}&domain={domain}"
        async with open_websocket_url(url, extra_headers=[(b"Authorization", token)]) as ws:
            with trio.fail_after(20):
                return dict(json.loads(await ws.get_message()))

    for cursor in (str(10**30), "-5", "abc", "1" * 5000):
        answer = trio.run(hello, cursor)
        assert (answer["verdict"], answer["cursor"]) == ("snapshot", -1), (cursor[:20], answer)
    assert admin.get("/api/status").json()["history_lost"] is False

def test_after_the_refusals_the_core_restarts_and_replay_is_clean(deploy: Deployment, admin: httpx.Client) -> None:
    answer = admin.post("/api/commands", content=command("after-all", '{"text": "echo fine"}'))
    assert answer.json()["outcome"] == "accepted"
    assert deploy.serve_proc is not None and deploy.serve_proc.process.poll() is None
    deploy.serve_proc.kill(signal.SIGTERM)
    assert deploy.serve_proc.process.returncode == 0, deploy.serve_proc.lines[-20:]
    deploy.serve()
    http, _ = bearer(deploy.url)
    assert http.get("/api/commands/after-all").status_code == 200
    http.close()
    check = run_cli(deploy.env, "replay", str(deploy.home / "journal.db"), "--check")
    assert check.returncode == 0, check.stdout + check.stderr
