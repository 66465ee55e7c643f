"""Expert parallelism, capacity factor, uneven pipeline stages and the ZB-H1 schedule through the public
interface; bad layouts give one-line errors (exit 2 at the CLI)."""

from __future__ import annotations

import pytest

from mlcost.catalog import get_catalog
from mlcost.cli.main import main
from mlcost.errors import SpecError, UnknownNameError
from mlcost.estimate import estimate_train
from mlcost.spec import Cluster, TrainJob

# DeepSeek-V3 pre-training layout (DeepSeek-AI 2024, arXiv 2412.19437 §3.2.1/§3.3-3.4): 2048 H800 GPUs,
# 16-way pipeline parallelism, 64-way expert parallelism over 8 nodes, ZeRO-1 data parallelism, no TP,
# sequence 4096, global batch 15360 sequences (after warm-up), FP8 mixed precision; DualPipe (§3.2.1) and
# recomputation of RMSNorm and MLA up-projections only (§3.2.3).
V3_JOB = dict(seq_len=4096, global_batch=15360, micro_batch=1, pp=16, zero=1, precision="fp8")


def _v3(**changes: object):  # type: ignore[no-untyped-def]
    job = TrainJob(tokens=14.8e12, **{**V3_JOB, **changes})  # type: ignore[arg-type]
    return estimate_train(get_catalog().model("deepseek-v3"), job, Cluster(device="h800", count=2048))


def test_expert_parallelism_shards_experts_and_reports_all_to_all() -> None:
    with_ep = _v3(ep=64, recompute="full")
    without = _v3(ep=1, recompute="full")
    states = lambda e: e.memory.weights + e.memory.gradients + e.memory.optimizer  # noqa: E731
    # 256 experts over 64 ranks: 4 per device instead of 256.
    assert states(with_ep) < states(without) / 10
    assert with_ep.time_breakdown_s["ep_comm_s"] > 0
    assert without.time_breakdown_s["ep_comm_s"] == 0
    assert any(a.name == "moe" and "EP=64" in str(a.value) for a in with_ep.assumptions)


def test_deepseek_v3_published_layout_fits_and_reports_all_to_all() -> None:
    """Golden: DeepSeek-V3's pre-training layout (arXiv 2412.19437) fits on 80 GB H800s as it ran — §3.2:
    2048 H800, PP 16, EP 64 over 8 nodes, ZeRO-1 DP, no TP; §3.2.1: DualPipe (Table 2: two stages'
    parameters per rank, PP+1 micro-batches in flight; all-to-all and PP transfers hidden under compute);
    §3.2.3: RMSNorm and MLA up-projections recomputed (``--recompute norms``, not full recompute); §3.3.3:
    Linear inputs cached in FP8, the attention output in E5M6; §4.2: sequence 4096, batch 15360. The
    all-to-all is reported, raw and exposed. Layouts that did not run are rejected: no recomputation, or
    1F1B's accounting with Korthikanti's selective count."""
    est = _v3(ep=64, recompute="norms", schedule="dualpipe", moe_dispatcher="deepep")
    assert est.fits, est.memory.total
    raw = next(a for a in est.assumptions if a.name == "moe")
    assert "DualPipe overlaps" in raw.source and "EP=64" in str(raw.value)
    # §3.2.2: node-limited routing (4 of 8 nodes) with per-node de-duplication; §3.2.1: "fully hidden".
    assert "deepep dispatcher" in str(raw.value) and "3.60 distinct nodes per token" in raw.source
    assert est.time_breakdown_s["ep_comm_s"] == pytest.approx(0.0, abs=1e-9)
    assert _v3(ep=64, recompute="norms", moe_dispatcher="deepep").time_breakdown_s["ep_comm_s"] > 0
    for change in ({"recompute": "none"}, {"recompute": "selective", "schedule": "1f1b"}):
        assert not _v3(ep=64, **{"recompute": "norms", "schedule": "dualpipe", **change}).fits, change  # type: ignore[arg-type]
    # Table 1: 2,664K H800 GPU-hours of pre-training for 14.8T tokens (the batch ramp of §4.2 and the
    # restarts a production run pays are not modelled); the whole-job band is ±25%.
    assert est.device_hours == pytest.approx(2.664e6, rel=0.25)


def test_qwen3_235b_published_megatron_layout_fits() -> None:
    """Golden (memory fit only): Qwen3-235B-A22B on 256 H100 with Megatron-Core (yanring/Megatron-MoE-ModelZoo
    @c1ad0b5 best_practice/Qwen3/readme.md, cross-node EP row: TP 2, EP 32 with expert TP 1, PP 8, VPP 4,
    DP 16, MBS 1, GBS 2048, seq 4096, BF16, ``--recompute-modules layernorm moe_act``: step 19.7 s, 17.6 s
    with the 1F1B all-to-all overlap). mlcost's nearest layout: EP 16 × TP 2 (routed experts over the same
    32 ranks), SP with TP (Megatron-Core requires it with EP), distributed optimizer (ZeRO-1) and
    ``--recompute norms`` (norms and the MoE activation recomputed). Shape: Qwen/Qwen3-235B-A22B
    config.json (hidden 4096, 94 layers, 64 heads, 4 KV heads, head_dim 128, 128 experts of 1536, top-8,
    vocabulary 151936). Its step times are checked in tests/estimate/test_golden_moe_runs.py."""
    from tests.estimate.moe_published_runs import qwen3_235b_a22b

    model = qwen3_235b_a22b()
    from mlcost.estimate import count_params

    counts = count_params(model)
    assert counts.total == pytest.approx(235e9, rel=0.01) and counts.active == pytest.approx(22e9, rel=0.01)
    job = TrainJob(
        tokens=1e12,
        seq_len=4096,
        global_batch=2048,
        micro_batch=1,
        tp=2,
        pp=8,
        virtual_stages=4,
        ep=16,
        zero=1,
        sequence_parallel=True,
        recompute="norms",
    )
    est = estimate_train(model, job, Cluster(device="h100-sxm", count=256))
    assert est.fits, est.memory.total
    assert est.time_breakdown_s["ep_comm_s"] > 0


def test_dualpipe_memory_and_bubble() -> None:
    """DualPipe (arXiv 2412.19437 §3.2.1 Table 2) against 1F1B on the same layout: two stages'
    parameters, one more micro-batch in flight, bubble (p/2−1)(F&B+B−3W) = 14/45 of 1F1B's at p = 16."""
    one_f = _v3(ep=64, recompute="norms")
    dual = _v3(ep=64, recompute="norms", schedule="dualpipe")
    assert dual.memory.weights > 1.9 * one_f.memory.weights
    assert dual.memory.activations > one_f.memory.activations
    from mlcost.estimate.timing import SCHEDULE_CODES, bubble_fraction

    assert float(bubble_fraction(SCHEDULE_CODES["dualpipe"], 0, 16)) == pytest.approx(14 / 45)
    assert dual.time_breakdown_s["ep_comm_s"] < one_f.time_breakdown_s["ep_comm_s"]
    with pytest.raises(SpecError, match="even pp"):
        TrainJob(tokens=1e9, pp=3, schedule="dualpipe")
    with pytest.raises(SpecError, match="even number of micro-batches"):
        _v3(ep=64, recompute="norms", schedule="dualpipe", global_batch=128 * 15)


def test_ep_overlap_hides_that_share_of_the_all_to_all_and_no_more_than_compute() -> None:
    """--ep-overlap x (Megatron-Core's MoE all-to-all overlap): x of the all-to-all runs under compute,
    never more than a micro-batch's compute; 0 (the default) leaves it exposed, as before."""
    exposed = _v3(ep=64, recompute="norms")
    raw = exposed.time_breakdown_s["ep_comm_s"]
    half = _v3(ep=64, recompute="norms", ep_overlap=0.5)
    assert half.time_breakdown_s["ep_comm_s"] == pytest.approx(raw / 2, rel=1e-9)
    assert half.step_time_s == pytest.approx(exposed.step_time_s - raw / 2, rel=1e-9)
    full = _v3(ep=64, recompute="norms", ep_overlap=1.0)
    compute = sum(full.time_breakdown_s[k] for k in ("matmul_s", "attention_s", "memory_bound_s"))
    assert full.time_breakdown_s["ep_comm_s"] >= raw - compute - 1e-9
    assert 0 <= full.time_breakdown_s["ep_comm_s"] < raw
    assert any("--ep-overlap 1" in a.source for a in full.assumptions if a.name == "moe")
    with pytest.raises(SpecError, match="ep_overlap"):
        TrainJob(tokens=1e9, ep_overlap=1.5)


def test_capacity_factor_costs_time() -> None:
    dropless = _v3(ep=64, recompute="full")
    padded = _v3(ep=64, recompute="full", capacity_factor=1.25)
    assert padded.step_time_s > dropless.step_time_s
    assert padded.time_breakdown_s["ep_comm_s"] == pytest.approx(
        1.25 * dropless.time_breakdown_s["ep_comm_s"], rel=1e-9
    )


def test_uneven_stages_slowest_sets_the_pace() -> None:
    """61 layers on 16 stages: the fullest stage holds 4 layers, as 64 layers would."""
    uneven = _v3(ep=64, recompute="full")
    model = get_catalog().model("deepseek-v3")
    even = estimate_train(
        model.replace(n_layers=64, n_dense_layers=6),
        TrainJob(tokens=14.8e12, ep=64, recompute="full", **V3_JOB),  # type: ignore[arg-type]
        Cluster(device="h800", count=2048),
    )
    assert uneven.time_breakdown_s["matmul_s"] == pytest.approx(even.time_breakdown_s["matmul_s"], rel=0.02)


def test_zero_bubble_shrinks_bubble_to_a_third() -> None:
    model = get_catalog().model("llama-3.1-70b")
    base = dict(tokens=1e12, seq_len=4096, global_batch=64, micro_batch=1, tp=8, pp=8, zero=1)
    one_f = estimate_train(model, TrainJob(**base), Cluster(device="h100-sxm", count=64))  # type: ignore[arg-type]
    zb = estimate_train(model, TrainJob(**base, schedule="zb-h1"), Cluster(device="h100-sxm", count=64))  # type: ignore[arg-type]
    assert zb.time_breakdown_s["bubble_s"] == pytest.approx(one_f.time_breakdown_s["bubble_s"] / 3, rel=1e-9)
    assert zb.memory.activations == one_f.memory.activations


def test_bad_layouts_raise() -> None:
    with pytest.raises(SpecError, match="--ep 3 does not divide the 256 experts"):
        _v3(ep=3)
    with pytest.raises(SpecError, match="a stage would get no layer"):
        estimate_train(
            get_catalog().model("gpt2"),
            TrainJob(tokens=1e9, global_batch=16, pp=16),
            Cluster(device="a100-80gb", count=16),
        )
    with pytest.raises(SpecError, match="no experts"):
        estimate_train(
            get_catalog().model("gpt2"), TrainJob(tokens=1e9, ep=2), Cluster(device="a100-80gb", count=8)
        )
    with pytest.raises(UnknownNameError, match="did you mean 'megatron'"):
        estimate_train(
            get_catalog().model("gpt2"),
            TrainJob(tokens=1e9),
            Cluster(device="a100-80gb", count=8),
            framework="megatorn",
        )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "mixtral-8x7b", "--ep", "3"], "--ep 3 does not divide the 8 experts"),
        (["--model", "gpt2", "--pp", "16", "--gpus", "16"], "a stage would get no layer"),
        (["--model", "gpt2", "--framework", "megatorn"], "unknown framework family 'megatorn'"),
        (["--model", "gpt2", "--objective", "mlm"], "--objective mlm needs an encoder"),
        (["--model", "mixtral-8x7b", "--moe-dispatcher", "deepp"], "did you mean 'deepep'"),
        (
            ["--model", "gpt2", "--fp8-params"],
            "fp8 working weights (--fp8-params, fp8_params=True) need precision 'fp8'",
        ),
        (
            ["--model", "mixtral-8x7b", "--moe-node-limit", "0"],
            "--moe-node-limit must be a whole number >= 1",
        ),
        (
            ["--model", "mixtral-8x7b", "--gpus", "32", "--ep", "4", "--tp", "2", "--moe-node-limit", "2"],
            "--moe-node-limit 2 exceeds the 1 node(s)",
        ),
    ],
)
def test_cli_bad_input_one_line_exit_2(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["estimate", "train", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, err


def test_more_expert_parallelism_never_raises_model_states() -> None:
    model = get_catalog().model("mixtral-8x7b")
    states = []
    for ep in (1, 2, 4, 8):
        est = estimate_train(
            model,
            TrainJob(
                tokens=1e9, seq_len=4096, global_batch=64, micro_batch=1, zero=1, ep=ep, recompute="full"
            ),
            Cluster(device="h100-sxm", count=64),
        )
        states.append(est.memory.weights + est.memory.gradients + est.memory.optimizer)
    assert states == sorted(states, reverse=True) and states[-1] < states[0] / 3


def test_schedule_choices_are_checked() -> None:
    with pytest.raises(SpecError, match="zb-h1"):
        TrainJob(tokens=1e9, pp=2, virtual_stages=2, schedule="zb-h1")
    with pytest.raises(SpecError, match="interleaved"):
        TrainJob(tokens=1e9, pp=2, schedule="interleaved")


def test_vectorised_kernel_equals_scalar_for_new_schedules_and_policies() -> None:
    """The planner's path (one kernel call over arrays of candidates) gives estimate_train's figures for
    DualPipe, --ep-overlap and the norms/matmuls recompute policies, candidate by candidate."""
    import dataclasses

    import numpy as np

    from mlcost.estimate import build_inputs, validate_layout
    from mlcost.estimate.context import resolve_hardware
    from mlcost.estimate.kernel import TrainInputs, train_kernel

    model = get_catalog().model("deepseek-v3")
    cluster = Cluster(device="h800", count=2048)
    hw = resolve_hardware(cluster, get_catalog())
    variants = [
        {"recompute": "norms", "schedule": "dualpipe"},
        {"recompute": "matmuls", "ep_overlap": 0.5},
        {"recompute": "full", "schedule": "zb-h1"},
        {"recompute": "selective"},
        {"recompute": "norms", "moe_dispatcher": "deepep"},
        {"recompute": "norms", "moe_dispatcher": "deepep", "moe_node_limit": 8},
        {"recompute": "full", "moe_dispatcher": "deepep", "ep": 8, "capacity_factor": 1.25},
        {"recompute": "norms", "moe_dispatcher": "alltoall", "ep": 16, "ep_overlap": 0.3},
    ]
    jobs = [TrainJob(tokens=14.8e12, **{"ep": 64, **V3_JOB, **v}) for v in variants]  # type: ignore[arg-type, dict-item]
    singles = [build_inputs(model, j, hw, validate_layout(model, j, cluster.count)) for j in jobs]
    stacked = TrainInputs(
        **{
            f.name: np.array([getattr(x, f.name) for x in singles], dtype=np.float64)
            for f in dataclasses.fields(TrainInputs)
        }
    )
    out = train_kernel(model, stacked)
    for i, job in enumerate(jobs):
        est = estimate_train(model, job, cluster)
        assert float(out["step_time_s"][i]) == pytest.approx(est.step_time_s, rel=1e-9), variants[i]
        assert float(out["memory_total_bytes"][i]) == pytest.approx(est.memory.total, rel=1e-9), variants[i]
        assert float(out["time_ep_comm_s"][i]) == pytest.approx(est.time_breakdown_s["ep_comm_s"], abs=1e-12)
