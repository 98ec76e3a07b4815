"""TLS pinning and silence on the adapter link, against a scripted core on loopback.

The scripted core serves ``wss://`` with a self-signed certificate made for the test; the link
trusts it by its SHA-256 fingerprint (from a credential file), by a CA file, or not at all.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import pytest
import trio
from patchbay_adapters.common.credential import (
    CredentialFile,
    CredentialFileError,
    parse_credential_file,
    read_credential_file,
)
from patchbay_adapters.common.link import AdapterLink, LinkError, read_credential
from patchbay_adapters.common.run import link_settings
from patchbay_adapters.common.trust import client_context, format_fingerprint, normalize_fingerprint
from trio_websocket import WebSocketConnection, serve_websocket

from tests.adapters.test_link import RecordingRuntime, ScriptedCore, welcome
from tests.support.certs import Certificate, self_signed


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Certificate, Certificate]:
    folder = tmp_path_factory.mktemp("certs")
    return self_signed(folder, "core"), self_signed(folder, "impostor")


async def answer_forever(ws: WebSocketConnection, received: list[dict[str, Any]]) -> None:
    await ws.send_message(welcome(0))
    while True:
        frame = json.loads(await ws.get_message())
        received.append(frame)
        if frame["type"] == "heartbeat":
            await ws.send_message(json.dumps({"type": "ack", "seq": 0}))


async def attach_over_tls(server: Certificate, context: ssl.SSLContext) -> tuple[ScriptedCore, BaseException | None]:
    """Run a link with ``context`` against a core serving ``server``'s certificate until it
    attaches (returns no error) or stops (returns why)."""
    core = ScriptedCore([answer_forever])
    problem: BaseException | None = None
    async with trio.open_nursery() as nursery:
        listener = await nursery.start(serve_websocket, core.handler, "127.0.0.1", 0, server.server_context())
        link = AdapterLink(adapter_id="a1", core_url=f"https://127.0.0.1:{listener.port}", credential="secret-c",
                           deployment_scope="test", generation=1, runtime=RecordingRuntime(), reconnect_max=0.2,
                           ssl_context=context)
        try:
            with trio.fail_after(20):
                await nursery.start(link.run)
        except BaseException as error:  # noqa: B036 - LinkError arrives in an exception group
            problem = error
        nursery.cancel_scope.cancel()
    return core, problem


def refusal(problem: BaseException | None) -> LinkError:
    while isinstance(problem, BaseExceptionGroup):
        problem = problem.exceptions[0]
    assert isinstance(problem, LinkError), repr(problem)
    return problem


def test_fingerprints_are_read_as_openssl_prints_them_with_or_without_colons() -> None:
    plain = "ab" * 32
    assert normalize_fingerprint(plain.upper()) == plain
    assert normalize_fingerprint(format_fingerprint(plain)) == plain
    assert normalize_fingerprint(f"sha256 Fingerprint={format_fingerprint(plain)}\n") == plain
    for bad in ("ab" * 31, "zz" * 32, "", "ab:" * 33):
        with pytest.raises(ValueError, match="not a SHA-256 fingerprint"):
            normalize_fingerprint(bad)


def test_a_plain_credential_file_of_one_line_is_still_a_credential_file(tmp_path: Path) -> None:
    legacy = tmp_path / "shell-1.credential"
    legacy.write_text("tok_0123456789abcdef\n")
    assert read_credential_file(legacy) == CredentialFile("tok_0123456789abcdef")
    assert read_credential(legacy) == "tok_0123456789abcdef"
    credential, url, context = link_settings(legacy, "http://127.0.0.1:1", None)
    assert (credential, url, context) == ("tok_0123456789abcdef", "http://127.0.0.1:1", None)
    with pytest.raises(SystemExit, match="no core URL"):
        link_settings(legacy, None, None)


def test_a_credential_file_names_the_core_and_pins_its_certificate(tmp_path: Path) -> None:
    pin = "0f" * 32
    record = CredentialFile("tok_x", core_url="https://core.lan:8765", core_fingerprint=pin)
    text = record.render()
    assert text.splitlines()[0] == "tok_x" and f"core_fingerprint = {format_fingerprint(pin)}" in text
    assert parse_credential_file(text) == record
    assert parse_credential_file(f"tok_x\n\n# a comment\ncore_fingerprint = {pin}\n").core_fingerprint == pin
    path = tmp_path / "a.credential"
    path.write_text(text)
    credential, url, context = link_settings(path, None, None)
    assert (credential, url) == ("tok_x", "https://core.lan:8765") and context is not None
    assert context.verify_mode is ssl.CERT_NONE  # pinned: the fingerprint is checked after the handshake
    for bad, message in [("tok_x\ncore_fingerprnt = 00\n", "unknown setting 'core_fingerprnt'"),
                         ("tok_x\ncore_fingerprint = 12:34\n", "not a SHA-256 fingerprint"),
                         ("tok_x\njust words\n", "line 2: expected `name = value`"),
                         ("\n", "first line must be the adapter's credential"),
                         ("core_url = https://x\n", "first line must be the adapter's credential")]:
        with pytest.raises(CredentialFileError, match=message):
            parse_credential_file(bad)


async def test_a_pinned_link_attaches_to_exactly_that_certificate(certs: tuple[Certificate, Certificate]) -> None:
    core_cert, _ = certs
    core, problem = await attach_over_tls(core_cert, client_context(fingerprint=format_fingerprint(core_cert.fingerprint)))
    assert problem is None
    assert [hello["credential"] for hello in core.hellos] == ["secret-c"]


async def test_a_pinned_link_refuses_another_certificate_naming_both_fingerprints(
        certs: tuple[Certificate, Certificate]) -> None:
    core_cert, impostor = certs
    core, problem = await attach_over_tls(impostor, client_context(fingerprint=core_cert.fingerprint))
    message = str(refusal(problem))
    assert format_fingerprint(impostor.fingerprint) in message and format_fingerprint(core_cert.fingerprint) in message
    assert message.startswith("refusing wss://127.0.0.1:") and "the core's certificate has SHA-256" in message
    assert "\n" not in message and core.hellos == []  # one line; the credential never left the adapter


async def test_without_a_pin_a_ca_file_verifies_and_the_system_store_refuses(
        certs: tuple[Certificate, Certificate]) -> None:
    core_cert, _ = certs
    core, problem = await attach_over_tls(core_cert, client_context(ca_file=core_cert.cert))
    assert problem is None and len(core.hellos) == 1
    core, problem = await attach_over_tls(core_cert, client_context())
    assert "certificate is not trusted" in str(refusal(problem)) and core.hellos == []


async def test_a_silent_core_is_dropped_after_the_bound_and_unanswered_frames_are_resent() -> None:
    interval, stale_after = 0.1, 0.4
    went_silent = trio.Event()

    async def silent(ws: WebSocketConnection, received: list[dict[str, Any]]) -> None:
        await ws.send_message(json.dumps({**json.loads(welcome(0)), "heartbeat_interval": interval,
                                          "stale_after": stale_after}))
        went_silent.set()
        while True:  # reads everything, answers nothing: a half-open connection as the adapter sees it
            received.append(json.loads(await ws.get_message()))

    resent = trio.Event()

    async def healed(ws: WebSocketConnection, received: list[dict[str, Any]]) -> None:
        await ws.send_message(json.dumps({**json.loads(welcome(0)), "heartbeat_interval": interval,
                                          "stale_after": stale_after}))
        while True:
            received.append(json.loads(await ws.get_message()))
            if received[-1]["type"] == "report":
                resent.set()
            elif received[-1]["type"] == "heartbeat":
                await ws.send_message(json.dumps({"type": "ack", "seq": 0}))

    core = ScriptedCore([silent, healed])
    async with trio.open_nursery() as nursery:
        listener = await nursery.start(serve_websocket, core.handler, "127.0.0.1", 0, None)
        link = AdapterLink(adapter_id="a1", core_url=f"http://127.0.0.1:{listener.port}", credential="c",
                           deployment_scope="test", generation=1, runtime=RecordingRuntime(), reconnect_max=0.2)
        await nursery.start(link.run)
        await link.report("c1", "running")
        with trio.fail_after(10):
            await went_silent.wait()
            silent_at = trio.current_time()
            await core.started[1].wait()
        waited = trio.current_time() - silent_at
        with trio.fail_after(10):
            await resent.wait()
        nursery.cancel_scope.cancel()
    assert waited >= interval + stale_after, waited  # not before the bound
    assert link.silence_bound == interval + stale_after
    assert sum(f["type"] == "heartbeat" for f in core.frames[0]) >= 2  # it kept sending while it waited
    assert [f["seq"] for f in core.frames[1] if f["type"] == "report"] == [1]
