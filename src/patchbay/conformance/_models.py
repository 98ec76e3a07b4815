"""The Quint models of ``specs/``: run each model's check, its scenario tests and its mutants.

``specs/models.json`` is the manifest: for every model its file, bounds (steps, samples, a
fixed seed so a run is reproducible), the SPEC §10 properties its invariants check (each
invariant is named after its property), and its mutants with the properties each must
violate. A model passes when ``quint run --invariants ...`` finds no violation and
``quint test`` passes; a mutant is *killed* only when ``quint run`` exits 1 **and** reports
``[violation]`` (a parse or runtime error also exits 1 and must not count as a kill).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs

from patchbay.conformance._properties import require_property

QUINT_TIMEOUT = 240


@attrs.frozen
class Mutant:
    module: str
    violates: tuple[str, ...]


@attrs.frozen
class Model:
    name: str
    file: Path
    mutants_file: Path
    max_steps: int
    max_samples: int
    seed: int
    properties: tuple[str, ...]
    mutants: tuple[Mutant, ...]


@attrs.frozen
class Check:
    """One quint invocation and what it showed."""

    model: str
    kind: str  # "model" | "tests" | "mutant"
    subject: str  # the main module (or mutant module) checked
    invariant: str
    command: tuple[str, ...]
    exit_code: int
    output: str

    @property
    def violation(self) -> bool:
        return self.exit_code == 1 and "[violation]" in self.output

    @property
    def ok(self) -> bool:
        """For a model or its tests: clean. For a mutant: killed by the expected violation."""
        if self.kind == "mutant":
            return self.violation
        return self.exit_code == 0


def load_models(root: Path) -> tuple[Path, list[Model]]:
    manifest = json.loads((root / "specs" / "models.json").read_text())
    models = []
    for entry in manifest["models"]:
        where = f"specs/models.json model {entry['name']}"
        mutants = tuple(Mutant(m["module"], tuple(require_property(p, where) for p in m["violates"]))
                        for m in entry["mutants"])
        models.append(Model(entry["name"], root / entry["file"], root / entry["mutants_file"], entry["max_steps"],
                            entry["max_samples"], entry["seed"],
                            tuple(require_property(p, where) for p in entry["properties"]), mutants))
    return root / manifest["quint"], models


def _bounds(model: Model) -> list[str]:
    return ["--backend=typescript", "--max-steps", str(model.max_steps), "--max-samples", str(model.max_samples),
            "--seed", str(model.seed)]


def planned(quint: Path, models: Iterable[Model]) -> list[tuple[str, str, str, str, list[str]]]:
    """Every invocation: (model, kind, subject, invariant, argv)."""
    plan = []
    for model in models:
        plan.append((model.name, "model", model.name, " ".join(model.properties),
                     [str(quint), "run", str(model.file), f"--main={model.name}", *_bounds(model),
                      "--invariants", *model.properties]))
        plan.append((model.name, "tests", model.name, "",
                     [str(quint), "test", str(model.file), "--backend=typescript", f"--main={model.name}"]))
        for mutant in model.mutants:
            for prop in mutant.violates:
                plan.append((model.name, "mutant", mutant.module, prop,
                             [str(quint), "run", str(model.mutants_file),
                              f"--main={mutant.module}", *_bounds(model), "--invariant", prop]))
    return plan


def _run(item: tuple[str, str, str, str, list[str]], cwd: Path) -> Check:
    model, kind, subject, invariant, argv = item
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=QUINT_TIMEOUT)
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:
        code, output = -1, f"timed out after {QUINT_TIMEOUT} s: {expired}"
    return Check(model, kind, subject, invariant, tuple(argv), code, output)


def run_checks(root: Path, *, workers: int = 2, only: str | None = None) -> list[Check]:
    """Run every planned quint invocation (of model ``only``, if given), ``workers`` at a time."""
    quint, models = load_models(root)
    plan = planned(quint, [m for m in models if only is None or m.name == only])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda item: _run(item, root), plan))


def describe(check: Check) -> dict[str, Any]:
    return {"model": check.model, "kind": check.kind, "subject": check.subject, "invariant": check.invariant,
            "ok": check.ok, "exit_code": check.exit_code}
