"""The Quint models hold within their bounds, their scenario tests pass, every mutant is killed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from patchbay.conformance import PROPERTIES
from patchbay.conformance._models import load_models, run_checks
from tests.verification import _collected

ROOT = Path(__file__).resolve().parents[2]


def test_every_property_is_checked_by_a_model_and_killed_by_a_mutant() -> None:
    _, models = load_models(ROOT)
    checked = {p for m in models for p in m.properties}
    killed = {p for m in models for mutant in m.mutants for p in mutant.violates}
    assert sorted(set(PROPERTIES) - checked) == []
    assert sorted(set(PROPERTIES) - killed) == []
    for model in models:
        assert set(p for mutant in model.mutants for p in mutant.violates) <= set(model.properties)


def test_every_mutant_module_in_specs_is_in_the_manifest() -> None:
    _, models = load_models(ROOT)
    for model in models:
        declared = set(re.findall(r"^module (\w+)", model.mutants_file.read_text(), re.MULTILINE))
        assert declared == {m.module for m in model.mutants}, f"{model.mutants_file.name}: unlisted or missing mutants"


MODELS = [model.name for model in load_models(ROOT)[1]]


@pytest.mark.parametrize("model", MODELS)
def test_model_holds_and_every_mutant_is_killed(model: str) -> None:
    checks = run_checks(ROOT, only=model)
    assert checks
    for check in checks:
        if check.kind == "model":
            for name in check.invariant.split():
                _collected.MODEL[name] = "ok" if check.ok else "FAILED"
        elif check.kind == "mutant":
            _collected.MUTANTS.setdefault(check.invariant, []).append(
                f"model:{check.subject} {'killed' if check.ok else 'SURVIVED'}")
        verdict = ("killed" if check.ok else "SURVIVED") if check.kind == "mutant" else ("ok" if check.ok else "FAILED")
        print(f"\n{check.kind:<6} {check.subject:<32} {check.invariant[:60]:<60} {verdict}")
    failed = [c for c in checks if not c.ok]
    assert failed == [], "\n\n".join(f"{' '.join(c.command)}\nexit {c.exit_code}\n{c.output[-3000:]}" for c in failed)
