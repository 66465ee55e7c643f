"""Golden: published MoE training throughput (tests/estimate/data/published_moe_runs.csv, each row's source
there), held out — nothing was fitted to them. Bar: every run fits and is within 25% of its published step
time or tokens/s per GPU, except the known misses below (each with its reason; strict xfail, so a miss
that starts passing must leave the list). The cross-node expert-parallel row (all-to-all over 4 nodes)
is within 10%; sent as plain all-to-alls (one copy per (token, expert) pair) instead of DeepEP's
per-node copies it is much slower, as the de-duplication predicts. `python benchmarks/moe_published_runs.py`
prints the table."""

from __future__ import annotations

import pytest

from mlcost.estimate import estimate_train
from tests.estimate.moe_published_runs import load, predicted

TOL_REL = 0.25

_FP8 = (
    "FP8 on H100: mlcost runs the GEMMs at the fp8 peak (2x bf16), which these MoE recipes do not realise — "
    "the same Qwen3-235B layout runs 1575 tokens/s/GPU in FP8 (Megatron-Bridge 25.11) and 1663 in BF16 "
    "(the model zoo's 19.7 s step); docs/estimate.md, MoE 'Weak'"
)
#: run id -> reason. None of them is an all-to-all effect (docs/estimate.md, "Mixture of experts", Weak).
KNOWN_MISSES: dict[str, str] = {
    "q235-h100-intra-deepep-tp4": "TP 4 without recompute is under-predicted by half with 0.3 s of all-to-all: "
    "no modelled term explains it (the same model at TP 2 with recompute is within 8%)",
    "mb2511-q235-h100-fp8": _FP8 + "; and no recompute predicts 86.3 GB of 85.5 (does not fit, by 1%)",
    "mb2602-q235-h100-fp8": _FP8 + "; and no recompute predicts 86.3 GB of 85.5 (does not fit, by 1%)",
    "mb2511-q30-h100-fp8": "Qwen3-30B-A3B on 16 H100 runs at 121 model TFLOP/s/GPU (12% of the bf16 peak): "
    "2048-wide layers and 768-wide experts are launch- and host-bound, which mlcost does not model (4x "
    "over-predicted); no recompute predicts 91 GB",
    "mb2509-dsv3-h100-fp8": _FP8 + " (+60%; the same layout in bf16 is predicted within 7%)",
}


def _check(run) -> tuple[bool, float]:  # type: ignore[no-untyped-def]
    est = estimate_train(run.model, run.job, run.cluster, framework=run.framework)
    return est.fits, predicted(run, est.step_time_s) / run.published - 1.0


@pytest.mark.parametrize(
    "run",
    [
        pytest.param(r, marks=pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[r.id]))
        if r.id in KNOWN_MISSES
        else r
        for r in load()
    ],
    ids=lambda r: r.id,
)
def test_published_moe_run(run) -> None:  # type: ignore[no-untyped-def]
    fits, err = _check(run)
    assert fits and abs(err) <= TOL_REL, (run.id, fits, f"{err:+.1%}", run.source)


def test_known_misses_are_rows() -> None:
    assert set(KNOWN_MISSES) <= {r.id for r in load()}


def test_cross_node_all_to_all_de_duplication() -> None:
    deepep = {r.id: r for r in load()}["q235-h100-xnode-deepep"]
    plain = {r.id: r for r in load(moe_dispatcher="alltoall")}["q235-h100-xnode-deepep"]
    e_deepep = estimate_train(deepep.model, deepep.job, deepep.cluster, framework=deepep.framework)
    e_plain = estimate_train(plain.model, plain.job, plain.cluster, framework=plain.framework)
    assert abs(e_deepep.step_time_s / deepep.published - 1.0) <= 0.10
    # 4 nodes, top-8: a token reaches 4·(1 − (3/4)^8) = 3.60 nodes, 2.70 of them remote (vs 8 · 3/4 = 6
    # copies leaving the node as plain all-to-all): the network leg shrinks by 6 / 2.70.
    moe = next(a for a in e_deepep.assumptions if a.name == "moe")
    assert "3.60 distinct nodes per token" in moe.source
    ratio = e_plain.time_breakdown_s["ep_comm_s"] / e_deepep.time_breakdown_s["ep_comm_s"]
    assert ratio == pytest.approx(6.0 / (4 * (1 - 0.75**8) * 0.75), rel=1e-6)
