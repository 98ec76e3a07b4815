"""``scripts/run`` prints commands that work when pasted, and a busy port in one line."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.processes import LISTENING, Proc, environment, run_cli, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "scripts" / "run"


def test_the_printed_login_and_send_lines_work_when_pasted(tmp_path: Path) -> None:
    env = environment(tmp_path, PATCHBAY_DEMO_HOME=str(tmp_path / "demo"), PATCHBAY_PORT="0",
                      PATCHBAY_NO_INSTALL="1")
    run = Proc(["bash", str(RUN)], env, tmp_path / "run.log")
    try:
        url = run.wait_line(LISTENING, timeout=90).group(1)
        cockpit = run.wait_line(re.compile(r"^  cockpit:  (\S+)/$")).group(1)
        login = run.wait_line(re.compile(r"^  CLI:      (.+)$")).group(1)
        send = run.wait_line(re.compile(r"^  then:     (.+)$")).group(1)
        path = run.wait_line(re.compile(r"^  \(to type just patchbay: export PATH=(\S+):\$PATH\)$")).group(1)
        assert cockpit == url and f"--url {url} " in login and "URL" not in login
        assert (Path(path) / "patchbay").is_file()
        pasted = subprocess.run(["bash", "-c", login], env=env, capture_output=True, text=True, timeout=60)
        assert pasted.returncode == 0 and "logged in as endpoint" in pasted.stdout, pasted
        wait_for(lambda: any(s["target"] == "shell-1/demo" and s["connectivity"] == "live"
                             for s in json.loads(run_cli(env, "sessions", "--json").stdout or "[]")),
                 timeout=60, interval=0.2, what="the demo session live")
        sent = subprocess.run(["bash", "-c", send], env=env, capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0 and "completed" in sent.stderr, sent
    finally:
        run.process.send_signal(signal.SIGTERM)
        code = run.process.wait(timeout=30)
        run.stop()
    assert code == 0


def test_a_busy_port_is_reported_in_one_line_with_how_to_choose_another(tmp_path: Path) -> None:
    env = environment(tmp_path, PATCHBAY_DEMO_HOME=str(tmp_path / "demo"), PATCHBAY_NO_INSTALL="1")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        busy = subprocess.run(["bash", str(RUN)], env={**env, "PATCHBAY_PORT": str(port)}, capture_output=True,
                              text=True, timeout=60)
    assert busy.returncode == 1 and busy.stdout == ""
    assert busy.stderr.splitlines() == [f"scripts/run: port {port} on 127.0.0.1 is in use; choose another, "
                                        f"e.g. PATCHBAY_PORT={port + 1} scripts/run"]
    assert not (tmp_path / "demo").exists()  # nothing was created
