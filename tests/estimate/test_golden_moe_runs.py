"""Golden: published MoE training throughput (tests/estimate/data/published_moe_runs.csv, each row's source
there). Two model-zoo rows that differ only in Megatron-Core's all-to-all overlap are ``fit``: they give the
share of the all-to-all that overlap hides (0.335, test_megatron_ep_overlap_share), which the held-out rows
with that overlap use; nothing else is fitted to these rows. Bar: every run fits in memory and is within
15% of its published step time or tokens/s per GPU, except the known misses below (each with its reason;
strict xfail, so a miss that starts passing must leave the list). The cross-node expert-parallel row
(all-to-all over 4 nodes) is within 10%; sent as plain all-to-alls (one copy per (token, expert) pair)
instead of DeepEP's per-node copies it is much slower, as the de-duplication predicts.
`python benchmarks/moe_published_runs.py` prints the table."""

from __future__ import annotations

import pytest

from mlcost.estimate import estimate_train
from tests.estimate.moe_published_runs import load, megatron_ep_overlap_share, predicted

TOL_REL = 0.15

#: run id -> reason. None of them is an all-to-all or an FP8 effect (docs/estimate.md, "Mixture of experts").
KNOWN_MISSES: dict[str, str] = {
    "q235-h100-intra-deepep-tp4": "TP 4 without recompute is under-predicted by 44% with 0.3 s of all-to-all: "
    "no modelled term explains it (the same model at TP 2 with recompute is within 6%)",
    "mb2511-q30-h100-fp8": "Qwen3-30B-A3B on 16 H100 runs at 121 model TFLOP/s/GPU in Megatron-Bridge 25.11 "
    "and the same layout at 241 in 25.09 (token-drop at capacity 1: 10,494 tokens/s/GPU); mlcost predicts "
    "14,746 (+180%, and +41% over the 25.09 figure): 2048-wide layers and 768-wide experts are launch- and "
    "host-bound, which mlcost does not model",
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


@pytest.mark.parametrize("run", load(), ids=lambda r: r.id)
def test_every_published_layout_fits(run) -> None:  # type: ignore[no-untyped-def]
    """Each of these layouts ran on 80 GB H100s: none may be reported as not fitting, known misses included.
    The FP8 rows without recompute fit through Transformer Engine's 1-byte saved GEMM inputs (the nemo
    family's ``fp8_quantized_saved_inputs``) and fp8 working weights (``fp8_params``: Bridge's FP8-CS)."""
    est = estimate_train(run.model, run.job, run.cluster, framework=run.framework)
    assert est.fits, (run.id, est.memory.total / 1e9)


def test_known_misses_are_rows() -> None:
    assert set(KNOWN_MISSES) <= {r.id for r in load() if r.split == "test"}


def test_megatron_ep_overlap_share() -> None:
    """The rows with Megatron-Core's all-to-all overlap use the share its fit pair gives (to 3 digits)."""
    share = megatron_ep_overlap_share()
    assert 0.0 < share < 1.0
    overlapped = [r for r in load() if r.job.ep_overlap > 0]
    assert len(overlapped) == 5
    for r in overlapped:
        assert r.job.ep_overlap == pytest.approx(share, abs=5e-4), r.id


def test_held_out_mean_error() -> None:
    """Mean |error| over the held-out rows that are not known misses stays under 10%."""
    errs = [abs(_check(r)[1]) for r in load() if r.split == "test" and r.id not in KNOWN_MISSES]
    assert len(errs) >= 4
    assert sum(errs) / len(errs) <= 0.10, errs


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
