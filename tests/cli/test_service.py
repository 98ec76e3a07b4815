"""``patchbay service``'s systemd units, and ``adapter add`` pinning the core's certificate.

In-process (click's runner) against a home made by ``patchbay init``; nothing is started.
"""

from __future__ import annotations

import shlex
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from patchbay_adapters.common.credential import read_credential_file
from patchbay_adapters.common.trust import format_fingerprint

from patchbay.cli import main
from patchbay.cli._service import Unit
from patchbay.core.config import Home
from tests.support.certs import self_signed


def run(home: Path, *args: str, code: int = 0, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), input=stdin, env={"PATCHBAY_HOME": str(home)})
    assert result.exit_code == code, (args, result.exit_code, result.output, result.exception)
    return result


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "my pb"  # a space, so quoting is exercised
    run(path, "init", "--password-stdin", stdin="a long operator password\n")
    return path


def settings(unit: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            name, _, value = line.partition("=")
            found.setdefault(name, []).append(value)
    return found


def test_the_serve_unit_restarts_on_failure_in_the_home_with_its_environment(home: Path) -> None:
    unit = settings(run(home, "service", "serve").output)
    resolved = str(home.resolve())
    assert shlex.split(unit["ExecStart"][0]) == [sys.executable, "-m", "patchbay", "serve", "--home", resolved]
    assert unit["Restart"] == ["on-failure"] and unit["WorkingDirectory"] == [resolved]
    assert unit["Environment"] == [f'"PATCHBAY_HOME={resolved}"']
    assert unit["EnvironmentFile"] == [f"-{resolved}/patchbay.env"]
    assert unit["WantedBy"] == ["default.target"] and "User" not in unit

    system = settings(run(home, "service", "serve", "--system", "--run-as", "patchbay").output)
    assert system["User"] == ["patchbay"] and system["WantedBy"] == ["multi-user.target"]


def test_the_adapter_unit_keeps_the_credential_in_its_file_and_passes_the_rest(home: Path) -> None:
    credential_file = Path(run(home, "adapter", "add", "shell-1", "--kind", "shell").output.splitlines()[-1])
    credential = read_credential_file(credential_file).credential
    text = run(home, "service", "adapter", "shell", "--id", "shell-1", "--credential-file", str(credential_file),
               "--core", "https://core.lan:8765", "--", "--workspace", "demo:/srv/demo 100%").output
    unit = settings(text)
    assert credential not in text
    assert shlex.split(unit["ExecStart"][0]) == [
        sys.executable, "-m", "patchbay", "adapter", "run", "shell", "--id", "shell-1", "--credential-file",
        str(credential_file.resolve()), "--core", "https://core.lan:8765", "--workspace", "demo:/srv/demo 100%%"]
    assert unit["WorkingDirectory"] == [str(credential_file.resolve().parent)]
    assert unit["EnvironmentFile"] == [f"-{credential_file.resolve().parent}/shell-1.env"]
    assert unit["Restart"] == ["on-failure"]

    for secret in (["--pi-env", "API_KEY=sk-123"], ["--pi-env=API_KEY=sk-123"]):
        refused = run(home, "service", "adapter", "pi", "--id", "pi-1", "--credential-file", str(credential_file),
                      "--", *secret, code=1)
        assert "would put a secret on the command line" in refused.output and "sk-123" not in refused.output
    assert "not an adapter kind" in run(home, "service", "adapter", "telnet", "--id", "t", "--credential-file",
                                        str(credential_file), code=1).output
    allowed = run(home, "service", "adapter", "pi", "--id", "pi-1", "--credential-file", str(credential_file),
                  "--", "--pi-env", "API_KEY").output
    assert "--pi-env API_KEY" in allowed


def test_install_writes_the_unit_and_a_private_environment_file(home: Path, tmp_path: Path) -> None:
    units = tmp_path / "units"
    result = run(home, "service", "serve", "--install", "--unit-dir", str(units))
    written = units / "patchbay.service"
    assert written.read_text() == run(home, "service", "serve").output
    env_file = home / "patchbay.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert "systemctl --user daemon-reload && systemctl --user enable --now patchbay.service" in result.output
    env_file.write_text("ANTHROPIC_API_KEY=kept\n")
    run(home, "service", "serve", "--install", "--unit-dir", str(units))
    assert env_file.read_text() == "ANTHROPIC_API_KEY=kept\n"  # never overwritten


def test_unit_values_are_escaped_for_systemd() -> None:
    unit = Unit(name="x.service", description="d", argv=("/bin/echo", "$HOME", 'say "hi"', "50%"),
                working_directory=Path("/srv"), environment_file=Path("/srv/x.env"))
    exec_start = settings(unit.render())["ExecStart"][0]
    assert exec_start == '/bin/echo $$HOME "say \\"hi\\"" 50%%'
    with pytest.raises(Exception, match="line break"):
        Unit(name="x.service", description="two\nlines", argv=("/bin/true",), working_directory=Path("/"),
             environment_file=Path("/x.env")).render()


def test_no_home_no_unit(tmp_path: Path) -> None:
    assert "no Patchbay home" in run(tmp_path / "none", "service", "serve", code=1).output


def test_adapter_add_pins_the_core_certificate_and_names_its_public_url(home: Path) -> None:
    cert = self_signed(home / "tls")
    config = Home(home).config_file
    text = config.read_text().replace('cert = ""', f'cert = "{cert.cert}"').replace('key = ""', f'key = "{cert.key}"')
    config.write_text(text.replace('public_url = []', 'public_url = ["https://core.lan:8765"]'))
    output = run(home, "adapter", "add", "shell-2", "--kind", "shell").output
    record = read_credential_file(Path(output.splitlines()[-1]))
    assert record.core_fingerprint == cert.fingerprint and record.core_url == "https://core.lan:8765"
    assert format_fingerprint(cert.fingerprint) in output

    cert.cert.unlink()  # a TLS home whose certificate cannot be read mints nothing
    refused = run(home, "adapter", "add", "shell-3", "--kind", "shell", code=1).output
    assert "cannot pin the core's certificate" in refused and not Home(home).credential_file("shell-3").exists()

    plain = Path(run(home.parent / "other", "init", "--password-stdin", stdin="a long operator password\n").output
                 and run(home.parent / "other", "adapter", "add", "s", "--kind", "shell").output.splitlines()[-1])
    assert read_credential_file(plain).core_fingerprint is None and len(plain.read_text().splitlines()) == 1
