"""Shared pieces of the benchmark: figures, statistics, real ``serve`` processes, a raw HTTP client.

Every figure is recorded with the floor it is compared with (measured in the same run) and
the ratio between them, so a reader can tell "slow machine" from "slow code".
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import httpx

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-1"
LISTENING = re.compile(r"patchbay listening on (http://[\d.]+:\d+)")
BENCH_ADAPTER = "bench"
STREAM_ADAPTER = "stream"


@attrs.define
class Figure:
    """One measured figure beside its floor.

    ``better`` says which direction is good: for ``"higher"`` figures (rates) the ratio is
    figure/floor (the fraction of the raw stack's rate reached); for ``"lower"`` figures
    (latencies, times) it is figure/floor (how many floors the figure costs).
    """

    scenario: str
    name: str
    value: float
    unit: str
    floor_name: str
    floor: float
    better: str = "lower"
    target: float | None = None
    size: str = ""
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.floor if self.floor else float("nan")

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.better == "higher" else self.value <= self.target

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "name": self.name, "value": self.value, "unit": self.unit,
                "floor_name": self.floor_name, "floor": self.floor, "ratio": self.ratio, "better": self.better,
                "target": self.target, "met": self.met, "size": self.size, "note": self.note}


async def attach_bench_adapter(core: Any, credential: str, *, generation: int, kinds: list[str]) -> Any:
    """Attach the bench adapter to an in-process core through the real hello path."""
    from patchbay.wire import adapter as wire

    hello = wire.decode_frame(json.dumps({
        "type": "hello", "protocol": 1, "adapter_id": BENCH_ADAPTER, "credential": credential,
        "adapter_generation": generation, "deployment_scope": "bench",
        "manifest": {"kinds": kinds, "cancellation": True, "idempotency": "at-patchbay-boundary",
                     "snapshot_tier": "authoritative"}}))[1]
    return await core.adapters.attach(hello)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; NaN for no samples."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def python() -> str:
    return sys.executable


def environment(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHBAY_")}
    env.update(HOME=str(tmp / "home"), PATCHBAY_HOME=str(tmp / "pb"), PATCHBAY_CLI_CONFIG=str(tmp / "cli.json"),
               PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    (tmp / "home").mkdir(parents=True, exist_ok=True)
    return env


def cli(env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 600) -> str:
    done = subprocess.run([python(), "-m", "patchbay", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"patchbay {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


class Child:
    """A child process in its own process group, stopped by its PID; output goes to a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = log.open("w")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_line(self, pattern: re.Pattern[str], timeout: float = 120.0) -> re.Match[str]:
        """Poll the log for a line (bounded); raises with the log tail if the process dies."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_path.read_text(errors="replace")
            match = pattern.search(text)
            if match:
                return match
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.process.args} exited ({self.process.returncode}):\n{text[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {pattern.pattern!r} within {timeout} s:\n{text[-3000:]}")
            time.sleep(0.005)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (from /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def memory(self) -> dict[str, float]:
        """Resident set size now and at its peak, in MB."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        values = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, flags=re.M))
        return {"rss_mb": int(values.get("VmRSS", 0)) / 1024, "hwm_mb": int(values.get("VmHWM", 0)) / 1024}

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)
            except ProcessLookupError:
                pass
        self._log.close()


class Home:
    """A Patchbay home for the bench: init'ed with a known password and the bench adapter."""

    def __init__(self, tmp: Path, *, shell_adapter: bool = False) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp
        self.env = environment(tmp)
        self.path = tmp / "pb"
        cli(self.env, "init", "--password-stdin", stdin=PASSWORD + "\n")
        self.credential_file = Path(cli(self.env, "adapter", "add", BENCH_ADAPTER, "--kind", "shell")
                                    .strip().splitlines()[-1])
        if shell_adapter:
            cli(self.env, "adapter", "add", "shell-1", "--kind", "shell")
            cli(self.env, "adapter", "add", STREAM_ADAPTER, "--kind", "shell")
        self.children: list[Child] = []

    def credential(self, adapter_id: str) -> Path:
        return self.path / "adapters" / f"{adapter_id}.credential"

    @property
    def journal(self) -> Path:
        return self.path / "journal.db"

    @property
    def domain(self) -> str:
        match = re.search(r'^authority_domain_id = "([^"]+)"', (self.path / "patchbay.toml").read_text(), re.M)
        assert match is not None
        return match.group(1)

    def serve(self) -> Server:
        child = Child([python(), "-m", "patchbay", "serve", "--listen", "127.0.0.1:0"], self.env,
                      self.tmp / f"serve-{len(self.children)}.log")
        self.children.append(child)
        url = child.wait_line(LISTENING, timeout=300).group(1)
        return Server(url, child, time.perf_counter() - child.started)

    def spawn(self, argv: list[str], name: str) -> Child:
        child = Child(argv, self.env, self.tmp / f"{name}-{len(self.children)}.log")
        self.children.append(child)
        return child

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()


@attrs.define
class Server:
    url: str
    child: Child
    startup_seconds: float

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.url.split("://", 1)[1].rsplit(":", 1)
        return host, int(port)

    def login(self) -> str:
        answer = httpx.post(self.url + "/api/login", json={"password": PASSWORD, "endpoint_kind": "cli"}, timeout=60)
        answer.raise_for_status()
        return str(answer.json()["token"])

    def status(self, token: str) -> dict[str, Any]:
        answer = httpx.get(self.url + "/api/sessions", headers={"Authorization": f"Bearer {token}"}, timeout=60)
        answer.raise_for_status()
        return dict(answer.json())

    def stop(self) -> None:
        self.child.stop()


def wait_for(predicate: Any, *, timeout: float = 120.0, interval: float = 0.02, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def run_json(argv: list[str], env: dict[str, str], timeout: float = 900) -> dict[str, Any]:
    """Run a bench helper process and parse the JSON document on its last output line."""
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed ({done.returncode}): {done.stderr[-3000:]}")
    try:
        return dict(json.loads(done.stdout))
    except ValueError:
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def bench_script(name: str) -> list[str]:
    return [python(), str(ROOT / "bench" / name)]
