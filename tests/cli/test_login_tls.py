"""``patchbay login --url https://…`` against a real ``serve`` with a self-signed certificate:
refused without trust (the fingerprint is shown), pinned with ``--fingerprint``, verified with
``--ca-file``, or trusted on first use at a terminal; the trust is stored with the login."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from patchbay_adapters.common.trust import format_fingerprint

from patchbay.cli import _trust, main
from tests.support.certs import Certificate, self_signed
from tests.support.processes import LISTENING_ANY, PASSWORD, Deployment, run_cli, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, Certificate]]:
    tmp = tmp_path_factory.mktemp("login-tls")
    deploy = Deployment(tmp)
    cert = self_signed(tmp / "tls")
    deploy.configure(cert=json.dumps(str(cert.cert)), key=json.dumps(str(cert.key)))
    try:
        deploy.serve(pattern=LISTENING_ANY)
        assert deploy.url.startswith("https://127.0.0.1:")
        deploy.shell_adapter()  # pinned by the fingerprint `adapter add` wrote into its credential file
        yield deploy, cert
    finally:
        deploy.stop()


def login(deploy: Deployment, config: Path, *args: str, code: int) -> str:
    env = dict(deploy.env, PATCHBAY_CLI_CONFIG=str(config))
    result = run_cli(env, "login", "--url", deploy.url, "--password-stdin", *args, stdin=PASSWORD + "\n")
    assert result.returncode == code, (result.stdout, result.stderr)
    return result.stdout + result.stderr


def test_an_untrusted_certificate_is_refused_and_its_fingerprint_shown(tls: tuple[Deployment, Certificate],
                                                                       tmp_path: Path) -> None:
    deploy, cert = tls
    config = tmp_path / "cli.json"
    said = login(deploy, config, code=1)
    assert f"--fingerprint {format_fingerprint(cert.fingerprint)}" in said and not config.exists()

    wrong = "ab" * 32
    said = login(deploy, config, "--fingerprint", wrong, code=1)
    assert f"refusing {deploy.url}" in said and not config.exists()
    assert format_fingerprint(cert.fingerprint) in said and format_fingerprint(wrong) in said


def test_a_pinned_login_is_stored_and_every_later_request_is_pinned(tls: tuple[Deployment, Certificate],
                                                                     tmp_path: Path) -> None:
    deploy, cert = tls
    config = tmp_path / "cli.json"
    login(deploy, config, "--fingerprint", format_fingerprint(cert.fingerprint).lower(), code=0)
    assert json.loads(config.read_text())["fingerprint"] == cert.fingerprint
    env = dict(deploy.env, PATCHBAY_CLI_CONFIG=str(config))
    wait_for(lambda: any(s["target"] == "shell-1/demo" and s["connectivity"] == "live"
                         for s in json.loads(run_cli(env, "sessions", "--json").stdout)), what="shell-1/demo live")
    sent = run_cli(env, "send", "shell-1/demo", "echo pinned", "--wait")  # the follow websocket is pinned too
    assert sent.returncode == 0 and "pinned" in sent.stdout, (sent.stdout, sent.stderr)

    saved = json.loads(config.read_text())
    config.write_text(json.dumps({**saved, "fingerprint": "cd" * 32}))  # as if the core's certificate changed
    changed = run_cli(env, "sessions", "--json")
    assert changed.returncode == 1 and f"refusing {deploy.url}" in changed.stderr
    assert format_fingerprint(cert.fingerprint) in changed.stderr


def test_a_ca_file_verifies_the_core(tls: tuple[Deployment, Certificate], tmp_path: Path) -> None:
    deploy, cert = tls
    config = tmp_path / "cli.json"
    login(deploy, config, "--ca-file", str(cert.cert), code=0)
    assert json.loads(config.read_text())["ca_file"] == str(cert.cert.resolve())
    assert run_cli(dict(deploy.env, PATCHBAY_CLI_CONFIG=str(config)), "sessions", "--json").returncode == 0


def test_at_a_terminal_the_fingerprint_is_shown_and_trusted_on_first_use(
        tls: tuple[Deployment, Certificate], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deploy, cert = tls
    monkeypatch.setattr(_trust, "interactive_terminal", lambda password_stdin: True)
    config = tmp_path / "cli.json"
    env = {"PATCHBAY_CLI_CONFIG": str(config)}
    declined = CliRunner().invoke(main, ["login", "--url", deploy.url], input="n\n", env=env)
    assert declined.exit_code == 1 and "not trusted" in declined.output and not config.exists()
    accepted = CliRunner().invoke(main, ["login", "--url", deploy.url], input=f"y\n{PASSWORD}\n", env=env)
    assert accepted.exit_code == 0, accepted.output
    assert format_fingerprint(cert.fingerprint) in accepted.output
    assert json.loads(config.read_text())["fingerprint"] == cert.fingerprint
