"""Model-trace conformance: Quint traces replayed step by step against the real core.

The same traces replayed with one fault active must diverge somewhere, which shows that the
step-by-step comparison can fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from patchbay import faults
from patchbay.conformance import VectorFailure
from patchbay.conformance._traces import generate, load_trace, replay_trace

ROOT = Path(__file__).resolve().parents[2]
CASES = [("command_lifecycle", 21, "dedup_off"), ("session_generation", 23, "generation_regress")]


@pytest.mark.parametrize("model, seed, fault", CASES, ids=[c[0] for c in CASES])
async def test_model_traces_replay_against_the_core_and_a_fault_diverges(
        tmp_path: Path, model: str, seed: int, fault: str) -> None:
    paths = await trio.to_thread.run_sync(
        lambda: generate(ROOT, model, tmp_path, traces=6, steps=12, seed=seed))
    assert len(paths) == 6
    steps = 0
    for path in paths:
        steps += await replay_trace(model, load_trace(path))
    print(f"\n{model}: {len(paths)} traces, {steps} steps replayed against the core, no divergence")
    divergences = []
    with faults.injected(fault):
        for path in paths:
            try:
                await replay_trace(model, load_trace(path))
            except VectorFailure as failure:
                divergences.append(f"{path.name}: {failure}")
    assert divergences, f"no trace noticed fault {fault}: the comparison cannot fail"
    print(f"{model} with fault {fault}: {len(divergences)}/{len(paths)} traces diverge, e.g. {divergences[0][:200]}")
