"""Hypothesis against both boundaries of a real ``serve`` (issue #14, how it must be shown).

Wild JSON (``tests/support/wild_json.py``) goes into submissions (``POST /api/commands``) and
into adapter frames (``/adapter/v1``) in batches. The home checkpoints after every commit; after
each batch the core is restarted, must come back, and ``replay --check`` must be clean. Every
submission is answered without a 5xx, every frame with an ``ack`` or ``error``.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trio
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from trio_websocket import open_websocket_url

from patchbay.registry import Failure
from patchbay.wire import _admit
from tests.support.processes import Deployment, deployment, run_cli
from tests.support.wild_json import Dup, encode, values
from tests.web.browser import bearer

pytestmark = pytest.mark.slow

FAILURES = {failure.value for failure in Failure}
BATCHES = 3
EXAMPLES = 12  # per batch and boundary: 3 batches x (12 + 12) examples, each up to 4 requests
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


class Fuzzed:
    """The deployment, its adapter ``fz`` (credential, next seq) and a bearer client."""

    def __init__(self, d: Deployment) -> None:
        self.d = d
        self.credential = d.add_adapter("fz").read_text().strip()
        self.seq = 0
        self.generation = 1
        self.http: httpx.Client = bearer(d.url)[0]

    @property
    def ws_url(self) -> str:
        return self.d.url.replace("http://", "ws://") + "/adapter/v1"

    def hello(self) -> str:
        return json.dumps({"type": "hello", "protocol": 1, "adapter_id": "fz", "credential": self.credential,
                           "adapter_generation": self.generation, "deployment_scope": "fz",
                           "manifest": {"kinds": ["instruct"]}})

    def restart(self) -> None:
        """Stop ``serve`` (it must stop cleanly), check the journal, and start it again."""
        proc = self.d.serve_proc
        assert proc is not None and proc.process.poll() is None, "serve died during the batch"
        proc.kill(signal.SIGTERM)
        assert proc.process.returncode == 0, "\n".join(proc.lines[-30:])
        check = run_cli(self.d.env, "replay", str(self.d.home / "journal.db"), "--check")
        assert check.returncode == 0, check.stdout + check.stderr
        self.http.close()
        self.d.serve()
        self.http = bearer(self.d.url)[0]
        assert self.http.get("/api/status").status_code == 200


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    with deployment(tmp_path_factory.mktemp("boundary-fuzz")) as d:
        d.configure(checkpoint_every="1")
        d.serve()
        f = Fuzzed(d)
        answers = trio.run(exchange, f, [json.dumps({"type": "session", "seq": 1, "runtime_session_id": "s",
                                                      "generation": 1})])
        assert answers[0]["type"] == "ack"
        f.seq = 1
        yield f
        f.http.close()


async def exchange(f: Fuzzed, texts: list[str]) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    async with open_websocket_url(f.ws_url, max_message_size=8 * 1024 * 1024) as ws:
        await ws.send_message(f.hello())
        assert json.loads(await ws.get_message())["type"] == "welcome"
        for text in texts:
            await ws.send_message(text)
            with trio.fail_after(20):
                while True:
                    answer = json.loads(await ws.get_message())
                    if answer["type"] in ("ack", "error"):
                        answers.append(answer)
                        break
                    assert answer["type"] in ("deliver", "withdraw"), answer
    return answers


submission_fields = st.fixed_dictionaries(
    {"kind": st.just("instruct"), "target": st.sampled_from(["fz/s", "fz/nope", "\ud83d/s"])},
    optional={"generation": values, "expires_at": values, "supersedes": values, "extra": values})


@st.composite
def submissions(draw: st.DrawFn) -> str:
    index = draw(st.integers(0, 10**9))
    body: dict[str, Any] = {"command_id": f"fz-{index}", "idempotency_key": f"fz-{index}", **draw(submission_fields)}
    payload = draw(st.dictionaries(st.text(max_size=6), values, max_size=3))
    body["payload"] = Dup((("text", "echo"), *payload.items())) if draw(st.booleans()) else {"text": "x", **payload}
    return encode(body) if draw(st.integers(0, 9)) else encode(draw(values))


FRAME_TYPES = ["session", "report", "observation", "elicitation", "elicitation_closed", "reply", "lease", "heartbeat"]


@st.composite
def frames(draw: st.DrawFn) -> str:
    frame: dict[str, Any] = {"type": draw(st.sampled_from(FRAME_TYPES)), "runtime_session_id": "s", "generation": 1,
                             "seq": draw(st.one_of(st.integers(1, 10**6), values))}
    for key in draw(st.lists(st.sampled_from(["seq", "generation", "label", "metadata", "observation", "content",
                                              "command_id", "state", "elicitation_id", "kind", "ttl", "op",
                                              "resource", "scope", "reply_id", "expires_at", "options"]),
                             max_size=3)):
        frame[key] = draw(values)
    if draw(st.integers(0, 5)) == 0:
        return encode({"type": "batch", "frames": draw(st.lists(values, min_size=1, max_size=3))})
    return encode(frame)


@pytest.mark.parametrize("batch", range(BATCHES))
def test_wild_submissions_and_frames_then_restart_and_replay_check(fuzzed: Fuzzed, batch: int) -> None:
    @seed(1000 + batch)
    @FUZZ
    @given(st.lists(submissions(), min_size=1, max_size=4))
    def submit(bodies: list[str]) -> None:
        for text in bodies:
            answer = fuzzed.http.post("/api/commands", content=text.encode("utf-8", "surrogatepass"),
                                      headers={"content-type": "application/json"})
            assert answer.status_code in (200, 409, 413, 422), (answer.status_code, answer.text[:300])
            _admit.check(answer.json())  # every answer is one any client can decode
            body = answer.json()
            if answer.status_code == 200:
                assert body["outcome"] == "accepted"
                _admit.check(body["command"])  # what was accepted can be stored and encoded
            elif answer.status_code == 422:  # rejected, for a reason of the registry's
                assert body["outcome"] == "rejected" and body["failure"] in FAILURES and body["reason"], body

    @seed(2000 + batch)
    @FUZZ
    @given(st.lists(frames(), min_size=1, max_size=4))
    def send(texts: list[str]) -> None:
        answers = trio.run(exchange, fuzzed, texts)
        assert len(answers) == len(texts)
        for answer in answers:
            if answer["type"] == "error":
                assert answer["code"] and answer["error"], answer

    submit()
    send()
    fuzzed.restart()
