"""The benchmark harness runs end to end in its tiny mode and writes a well-formed results file.

Only the shape is checked: every figure has a value, a floor measured in the same run, and a
ratio. Timing targets are never asserted here (they belong to the bench report, not to tests).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {"acceptance", "latency", "fan-out", "streaming", "end-to-end", "reconnect", "recovery", "scale"}
FIELDS = {"scenario", "name", "value", "unit", "floor_name", "floor", "ratio", "better", "target", "met", "size",
          "note"}


def test_tiny_bench_writes_every_figure_with_its_floor_and_ratio(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHBAY_")}
    env.update(HOME=str(tmp_path / "home"))  # the bench keeps its homes in a short /tmp dir (socket paths)
    (tmp_path / "home").mkdir()
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--tiny", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(out.read_text())
    assert results["mode"] == "tiny"
    assert results["machine"]["cpus"] >= 1
    figures = results["figures"]
    assert {f["scenario"] for f in figures} == SCENARIOS
    for figure in figures:
        assert FIELDS <= figure.keys(), figure
        assert isinstance(figure["value"], float | int) and math.isfinite(figure["value"]), figure
        assert figure["floor"] > 0 and math.isfinite(figure["floor"]), figure
        assert math.isclose(figure["ratio"], figure["value"] / figure["floor"], rel_tol=1e-9), figure
        assert figure["floor_name"] and figure["unit"] and figure["better"] in ("higher", "lower"), figure
        assert figure["size"], f"a tiny run must say its size: {figure}"
    names = {f["name"] for f in figures}
    for clients in (1, 8):
        assert f"API accepted/s, {clients} clients" in names
    assert any(n.startswith("cursor 100 behind") for n in names)
    assert any("never reads" in n for n in names)
    floors = results["floors"]
    for key in ("apsw_1", "apsw_batch", "ws", "scan", "spawn", "http", "import_s"):
        assert key in floors, key
    assert results["axes"]["journal"] and results["axes"]["fanout"] and results["axes"]["api_clients"]
    assert "ratio" in done.stdout and str(out) in done.stdout
