"""Random and mutated frames against ``/adapter/v1`` of a real ``patchbay serve``.

Whatever an attached adapter sends, the core answers every frame (``ack`` or ``error``), stays
up for everyone else (a real shell adapter keeps running commands), and the journal it leaves
passes ``patchbay replay --check``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio_websocket import open_websocket_url

from tests.support.processes import deployment, run_cli

pytestmark = pytest.mark.slow

json_scalars = st.none() | st.booleans() | st.integers(-2**63, 2**64) | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
names = st.sampled_from(["demo", "fz", "ghost", "", "../x", "a" * 200])
command_ids = st.sampled_from(["victim", "nope", "fz-1", "", "x" * 300])
states = st.sampled_from(["delivered", "running", "completed", "failed", "rejected", "cancelled", "accepted",
                          "bogus", ""])

templates = st.one_of(
    st.fixed_dictionaries({"type": st.just("session"), "seq": st.integers(-1, 50), "runtime_session_id": names,
                           "generation": st.integers(-1, 5), "label": st.text(max_size=10),
                           "activity": st.sampled_from(["idle", "working", "unknown", "sleepy"]),
                           "connectivity": st.sampled_from(["live", "stale", "offline", "nope"]),
                           "snapshot_tier": st.sampled_from(["authoritative", "partial", "none", "full"])}),
    st.fixed_dictionaries({"type": st.just("report"), "seq": st.integers(-1, 50), "command_id": command_ids,
                           "state": states, "failure": st.sampled_from([None, "execution_failed", "made_up"]),
                           "result": st.none() | st.dictionaries(st.text(max_size=5), json_scalars, max_size=3)}),
    st.fixed_dictionaries({"type": st.just("observation"), "seq": st.integers(-1, 50), "runtime_session_id": names,
                           "generation": st.integers(0, 3), "observation": json_values,
                           "activity": st.sampled_from([None, "working", "idle", "bad"])}),
    st.fixed_dictionaries({"type": st.just("elicitation"), "seq": st.integers(0, 50), "runtime_session_id": names,
                           "generation": st.integers(0, 3), "elicitation_id": command_ids,
                           "kind": st.sampled_from(["approval", "question", "other"]),
                           "command_id": st.none() | command_ids}),
    st.fixed_dictionaries({"type": st.just("elicitation_closed"), "seq": st.integers(0, 50),
                           "elicitation_id": command_ids,
                           "state": st.sampled_from(["withdrawn", "expired", "answered", "bogus"])}),
    st.fixed_dictionaries({"type": st.just("reply"), "seq": st.integers(0, 50), "runtime_session_id": names,
                           "generation": st.integers(0, 3), "reply_id": command_ids,
                           "correlates_kind": st.sampled_from(["command", "message", "elicitation", "x"]),
                           "correlates_id": command_ids, "content": json_values}),
    st.fixed_dictionaries({"type": st.just("lease"), "seq": st.integers(0, 50),
                           "op": st.sampled_from(["acquire", "renew", "release", "steal"]),
                           "resource": st.sampled_from(["dir:/a", "dir:/b", ""]), "scope": st.sampled_from(["fuzz", ""]),
                           "lease_id": st.none() | st.text(max_size=8), "ttl": st.floats(-5, 1e6)}),
    st.just({"type": "heartbeat"}),
    st.just({"type": "hello", "protocol": 1, "adapter_id": "fuzz", "credential": "x", "adapter_generation": 1,
             "deployment_scope": "x", "manifest": {"kinds": []}}),
)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    frame = dict(draw(templates))
    for _ in range(draw(st.integers(0, 2))):
        if not frame:
            break
        key = draw(st.sampled_from(sorted(frame)))
        if draw(st.booleans()):
            del frame[key]
        else:
            frame[key] = draw(json_values)
    return frame


frames = st.one_of(
    mutated().map(lambda f: json.dumps(f)),
    json_values.map(json.dumps),
    st.text(max_size=60),
    st.binary(max_size=60),
)


def test_random_and_mutated_frames_never_break_the_core(tmp_path: Path) -> None:
    with deployment(tmp_path) as d:
        d.serve()
        d.shell_adapter()
        credential = d.add_adapter("fuzz").read_text().strip()
        api = d.api()
        api.wait_session("shell-1/demo", "live")
        api.submit("victim", "echo before")
        api.wait_state("victim", "completed")
        ws_url = d.url.replace("http://", "ws://") + "/adapter/v1"
        hello = json.dumps({"type": "hello", "protocol": 1, "adapter_id": "fuzz", "credential": credential,
                            "adapter_generation": 1, "deployment_scope": "fuzz", "manifest": {"kinds": ["instruct"]}})

        async def exchange(batch: list[str | bytes]) -> list[dict[str, Any]]:
            answers: list[dict[str, Any]] = []
            async with open_websocket_url(ws_url, max_message_size=8 * 1024 * 1024) as ws:
                await ws.send_message(hello)
                assert json.loads(await ws.get_message())["type"] == "welcome"
                for text in batch:
                    await ws.send_message(text)
                    with trio.fail_after(20):
                        while True:
                            answer = json.loads(await ws.get_message())
                            if answer["type"] in ("ack", "error"):
                                answers.append(answer)
                                break
                            assert answer["type"] in ("deliver", "withdraw"), answer
            return answers

        @settings(max_examples=100, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(st.lists(frames, min_size=1, max_size=8))
        def fuzz(batch: list[str | bytes]) -> None:
            answers = trio.run(exchange, batch)
            assert len(answers) == len(batch)
            for answer in answers:
                if answer["type"] == "error":
                    assert answer["code"] and answer["error"]

        fuzz()
        oversized = trio.run(exchange, ["[" + "1," * (600 * 1024) + "1]"])
        assert oversized[0]["code"] == "oversized"

        assert api.http.get("/api/status").status_code == 200
        api.submit("after-fuzz", "echo still here")
        assert api.wait_state("after-fuzz", "completed")["result"]["output"] == "still here\n"
        assert api.command("victim")["state"] == "completed"
        errors = api.http.get("/api/audit", params={"kind": "adapter.protocol_error", "limit": 5}).json()["records"]
        assert errors and all(r["details"]["adapter_id"] == "fuzz" for r in errors)
        check = run_cli(d.env, "replay", str(d.home / "journal.db"), "--check")
        assert check.returncode == 0, check.stdout
