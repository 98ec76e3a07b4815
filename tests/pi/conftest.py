"""Fixtures for driving the real pi: a scripted fake LLM, pi's config, and a pi adapter process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pi.fake_llm import FakeLLM, write_pi_config
from tests.support.processes import Deployment, Proc, patchbay_argv

ROOT = Path(__file__).resolve().parents[2]
PI = ROOT / "tools" / "node_modules" / ".bin" / "pi"
PI_VERSION = "0.73.1"


class PiSetup:
    """Everything pi needs to run hermetically, and a way to start the adapter."""

    def __init__(self, tmp: Path, fake: FakeLLM) -> None:
        self.tmp = tmp
        self.fake = fake
        self.agent_dir = tmp / "pi-agent"
        write_pi_config(self.agent_dir, fake.base_url)
        (tmp / "pi-tmp").mkdir(parents=True, exist_ok=True)

    def adapter(self, d: Deployment, adapter_id: str = "pi-1", *, workspaces: dict[str, Path] | None = None,
                extra: list[str] | None = None) -> Proc:
        credential = d.home / "adapters" / f"{adapter_id}.credential"
        if not credential.exists():
            d.add_adapter(adapter_id, kind="pi")
        if workspaces is None:
            workspace = self.tmp / "ws" / "main"
            workspace.mkdir(parents=True, exist_ok=True)
            workspaces = {"main": workspace}
        args = ["adapter", "run", "pi", "--id", adapter_id, "--core", d.url, "--credential-file", str(credential),
                "--pi", str(PI), "--pi-arg=--no-context-files",
                "--pi-env", f"PI_CODING_AGENT_DIR={self.agent_dir}", "--pi-env", "PI_OFFLINE=1",
                "--pi-env", f"TMPDIR={self.tmp / 'pi-tmp'}", "--pi-env", "FAKE_API_KEY=fake-key"]
        for name, path in workspaces.items():
            args += ["--workspace", f"{name}:{path}"]
        proc = Proc(patchbay_argv(*args, *(extra or [])), d.env, self.tmp / f"{adapter_id}-{len(d.procs)}.log")
        d.procs.append(proc)
        return proc


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeLLM]:
    fake = FakeLLM(slow_delay=0.1)
    try:
        yield fake
    finally:
        fake.stop()


def pi_version() -> str:
    return (ROOT / "tools" / "node_modules" / "@mariozechner" / "pi-coding-agent" / "package.json").read_text()
