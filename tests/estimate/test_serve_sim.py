"""The continuous-batching simulator: queueing laws, limits where the answer is known, scheduler effects."""

from __future__ import annotations

import numpy as np
import pytest

from mlcost.catalog import builtin_catalog
from mlcost.errors import SpecError
from mlcost.estimate.serve import estimate_serve, estimate_serve_sim
from mlcost.estimate.serve_sim import EngineConfig, kv_blocks, simulate, speculative_tokens_per_step
from mlcost.estimate.serve_step import iteration_time_s, replica_coefficients
from mlcost.estimate.serve_workload import Workload
from mlcost.spec import Cluster, ServeJob

CAT = builtin_catalog()
MODEL = CAT.model("llama-3.1-8b")
DEV = CAT.device("h100-sxm")
PROF = CAT.efficiency(DEV.id)
ENG = CAT.engine_profile("vllm", DEV)
C = replica_coefficients(MODEL, DEV, PROF, ENG, tp=1, weight_precision="bf16", kv_precision="bf16")
BLOCKS = kv_blocks(C, DEV.memory_bytes, PROF.framework_overhead_bytes, EngineConfig())


def test_low_load_ttft_is_one_prefill_and_itl_one_decode_step() -> None:
    """At 0.05 req/s requests rarely overlap: TTFT = the prefill iteration of one prompt, ITL = the decode
    step of one sequence (at the median context, P + O/2)."""
    P, Out = 1000, 200
    r = simulate(C, Workload.poisson(0.05, 300, P, Out, seed=3), EngineConfig(), n_blocks=BLOCKS)
    assert r.ttft_s["p50"] == pytest.approx(iteration_time_s(C, prefill=[(P, 0)]), rel=1e-6)
    assert r.itl_s["p50"] == pytest.approx(iteration_time_s(C, decode_ctx=[P + Out / 2]), rel=0.01)
    assert r.queue_s["p50"] == pytest.approx(0.0, abs=1e-12)
    assert not r.overloaded and r.preemptions == 0


def test_littles_law() -> None:
    """Mean requests in the system (sampled over time from the per-request arrival/finish times) equals
    arrival rate × mean end-to-end latency (Little's law), and a stable replica completes what arrives."""
    rate = 15.0
    r = simulate(
        C,
        Workload.poisson(rate, 6000, 800, 150, seed=1, output_dist="exponential"),
        EngineConfig(),
        n_blocks=BLOCKS,
    )
    pr = r.per_request
    a, f = pr["arrival_s"], pr["finish_s"]
    grid = np.linspace(a.min() + 0.1 * np.ptp(a), a.max() - 0.1 * np.ptp(a), 4000)
    in_system = (a[None, :] <= grid[:, None]) & (f[None, :] > grid[:, None])
    mean_l = in_system.sum(axis=1).mean()
    assert mean_l == pytest.approx(rate * r.e2e_s["mean"], rel=0.06)
    assert r.throughput_rps == pytest.approx(rate, rel=0.03)
    assert not r.overloaded


def test_overload_grows_the_queue_and_says_so() -> None:
    capacity = simulate(
        C, Workload.closed_loop(256, 1500, 1000, 200, seed=0), EngineConfig(), n_blocks=BLOCKS
    ).throughput_rps
    r = simulate(
        C, Workload.poisson(2.0 * capacity, 3000, 1000, 200, seed=0), EngineConfig(), n_blocks=BLOCKS
    )
    assert r.overloaded
    assert r.throughput_rps < 0.7 * r.offered_rps  # type: ignore[operator]
    q = r.per_request["scheduled_s"] - r.per_request["arrival_s"]
    assert q[-300:].mean() > 10 * q[:300].mean() + 1.0
    assert r.max_waiting > 500


def test_preemption_when_kv_blocks_are_scarce() -> None:
    """A pool for ~6 full sequences and 32 concurrent clients: decode steps run out of blocks and the newest
    sequences are preempted (recompute); every request still finishes with all its tokens."""
    wl = Workload.closed_loop(32, 200, 500, 300, seed=0)
    scarce = simulate(C, wl, EngineConfig(), n_blocks=6 * (800 // 16))
    ample = simulate(C, wl, EngineConfig(), n_blocks=BLOCKS)
    assert scarce.preemptions > 0 and ample.preemptions == 0
    assert scarce.requests == 200 and np.isfinite(scarce.per_request["finish_s"]).all()
    assert scarce.kv_occupancy_max <= 1.0 and scarce.kv_occupancy_max > 0.9
    assert scarce.throughput_rps < ample.throughput_rps


def test_chunked_prefill_lowers_p90_itl_under_long_prompts() -> None:
    """Long prompts stall running decodes for a whole prefill without chunking; 512-token chunks mixed with
    decodes bound the stall (the reason vLLM and Sarathi-Serve chunk prefills)."""
    wl = Workload.poisson(3.0, 600, 6000, 200, seed=2)
    chunked = simulate(C, wl, EngineConfig(max_num_batched_tokens=512), n_blocks=BLOCKS)
    whole = simulate(C, wl, EngineConfig(chunked_prefill=False), n_blocks=BLOCKS)
    assert chunked.itl_s["p90"] < 0.7 * whole.itl_s["p90"]
    assert chunked.ttft_s["p50"] > whole.ttft_s["p50"]  # the price: prompts take several iterations


@pytest.mark.parametrize("batch", [1, 8, 64])
def test_static_and_simulated_agree_at_concurrency_equal_batch(batch: int) -> None:
    """``batch`` requests arriving together, all prefilled in one iteration: the simulator's TTFT is the
    static model's, its mean ITL the static TPOT (decode at the mean context), its E2E the static latency
    less one decode step (the static model counts O steps after the prefill, the engine O − 1)."""
    P, Out = 512, 128
    static = estimate_serve(
        MODEL, ServeJob(prompt_len=P, output_len=Out, batch=batch), Cluster(device=DEV.id)
    )
    cfg = EngineConfig(max_num_batched_tokens=batch * P, max_num_seqs=batch)
    r = simulate(C, Workload.closed_loop(batch, batch, P, Out), cfg, n_blocks=BLOCKS)
    assert r.ttft_s["p50"] == pytest.approx(static.ttft_s, rel=1e-6)
    assert r.itl_s["mean"] == pytest.approx(static.time_per_output_token_s, rel=0.01)
    assert r.e2e_s["mean"] == pytest.approx(
        static.request_latency_s - static.time_per_output_token_s, rel=0.01
    )


def test_deterministic_under_a_seed() -> None:
    def run(seed: int) -> dict[str, object]:
        wl = Workload.poisson(10.0, 800, 700, 120, seed=seed, prompt_dist="lognormal", output_dist="uniform")
        return simulate(C, wl, EngineConfig(), n_blocks=BLOCKS).to_dict()

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_closed_form_stretches_match_stepping_every_iteration() -> None:
    """The closed-form sums over decode-only stretches give the same answer as stepping one by one."""
    wl = Workload.poisson(8.0, 400, 600, 150, seed=5, output_dist="exponential")
    for cfg, blocks in ((EngineConfig(), BLOCKS), (EngineConfig(chunked_prefill=False), 900)):
        fast = simulate(C, wl, cfg, n_blocks=blocks)
        slow = simulate(C, wl, cfg, n_blocks=blocks, closed_form=False)
        assert fast.iterations == slow.iterations
        assert fast.event_steps < slow.event_steps
        assert fast.preemptions == slow.preemptions
        np.testing.assert_allclose(fast.per_request["finish_s"], slow.per_request["finish_s"], rtol=1e-9)
        np.testing.assert_allclose(
            fast.per_request["first_token_s"], slow.per_request["first_token_s"], rtol=1e-9
        )
        assert fast.itl_s["mean"] == pytest.approx(slow.itl_s["mean"], rel=1e-3)
        assert fast.kv_occupancy_max == slow.kv_occupancy_max


def test_speculative_decoding_with_acceptance_zero_is_not_faster() -> None:
    wl = Workload.poisson(0.5, 200, 500, 200, seed=1)
    base = simulate(C, wl, EngineConfig(), n_blocks=BLOCKS)
    zero = simulate(C, wl, EngineConfig(spec_draft_tokens=4, spec_acceptance=0.0), n_blocks=BLOCKS)
    good = simulate(C, wl, EngineConfig(spec_draft_tokens=4, spec_acceptance=0.8), n_blocks=BLOCKS)
    assert zero.e2e_s["mean"] >= base.e2e_s["mean"]
    assert good.e2e_s["mean"] < 0.6 * base.e2e_s["mean"]  # memory-bound decode: ~3.4 tokens per step
    assert speculative_tokens_per_step(4, 0.8) == pytest.approx((1 - 0.8**5) / 0.2)
    assert speculative_tokens_per_step(4, 0.0) == 1.0


def test_prefix_sharing_cuts_ttft() -> None:
    wl = Workload.poisson(1.0, 200, 4000, 50, seed=0)
    cold = simulate(C, wl, EngineConfig(), n_blocks=BLOCKS)
    warm = simulate(
        C, Workload.poisson(1.0, 200, 4000, 50, seed=0, prefix_share=0.75), EngineConfig(), n_blocks=BLOCKS
    )
    assert warm.ttft_s["p50"] < 0.4 * cold.ttft_s["p50"]


def test_kv_block_larger_than_memory_is_an_error_naming_the_flag() -> None:
    with pytest.raises(SpecError, match="--kv-block-size"):
        kv_blocks(C, DEV.memory_bytes, PROF.framework_overhead_bytes, EngineConfig(kv_block_size=10**9))
    with pytest.raises(SpecError, match="no memory for the KV cache"):
        big = replica_coefficients(
            CAT.model("llama-3.1-70b"), DEV, PROF, ENG, tp=1, weight_precision="bf16", kv_precision="bf16"
        )
        kv_blocks(big, DEV.memory_bytes, PROF.framework_overhead_bytes, EngineConfig())


def test_request_longer_than_the_pool_is_an_error() -> None:
    with pytest.raises(SpecError, match="KV blocks"):
        simulate(C, Workload.closed_loop(1, 1, 5000, 100), EngineConfig(), n_blocks=100)


def test_estimate_serve_sim_reports_the_model_kind_and_distributions() -> None:
    est = estimate_serve_sim(
        MODEL,
        Workload.poisson(4.0, 300, 1000, 100, seed=0),
        Cluster(device=DEV.id, price_usd_per_device_h=2.0),
    )
    d = est.to_dict()
    assert d["model_kind"] == "continuous-batching-simulation"
    assert d["engine"]["engine"] == "vllm"
    sim = d["simulation"]
    for key in ("ttft_s", "itl_s", "tpot_s", "e2e_s", "queue_s"):
        assert sim[key]["p50"] <= sim[key]["p90"] <= sim[key]["p99"]
    assert d["cost_per_million_output_tokens_usd"] == pytest.approx(
        2.0 / (sim["output_tokens_per_s"] * 3600) * 1e6, rel=1e-9
    )
    static = estimate_serve(MODEL, ServeJob(), Cluster(device=DEV.id)).to_dict()
    assert static["model_kind"] == "static-closed-form" and static["simulation"] is None


@pytest.mark.parametrize("seed", range(5))
def test_run_sums_and_crossing_search_match_brute_force(seed: int) -> None:
    """The closed-form stretch sums (a max of two affine lines) and the search for the step that passes a
    time equal summing step by step."""
    from mlcost.estimate.serve_sim import _Run

    rng = np.random.default_rng(seed)
    for _ in range(200):
        run = _Run(*rng.uniform(0.001, 0.01, 2), *rng.uniform(0.001, 0.01, 2), rng.uniform(0, 0.002))
        run.cb, run.mb = rng.uniform(0, 1e-4, 2) * rng.choice([0.0, 1.0], 2)
        m = int(rng.integers(1, 400))
        steps = np.array([run.step(j) for j in range(m)])
        assert run.total(m) == pytest.approx(steps.sum(), rel=1e-9)
        target = float(rng.uniform(0, 1.1) * steps.sum())
        want = int(np.searchsorted(np.cumsum(steps), target, side="left")) + 1
        assert run.steps_until(target, m) == min(max(want, 1), m)


def test_one_sequence_at_a_time_is_an_m_d_1_queue() -> None:
    """With max_num_seqs = 1 and fixed lengths every request takes the same service time S (its prefill
    iteration + O − 1 decode steps), so Poisson arrivals make an M/D/1 queue: the mean wait before service is
    ρ·S / (2(1 − ρ)) (Pollaczek–Khinchine with deterministic service), ρ = λ·S."""
    P, Out = 300, 60
    probe = simulate(C, Workload.closed_loop(1, 1, P, Out), EngineConfig(max_num_seqs=1), n_blocks=BLOCKS)
    service_s = float(probe.e2e_s["mean"])
    for rho in (0.5, 0.8):
        rate = rho / service_s
        r = simulate(
            C, Workload.poisson(rate, 40_000, P, Out, seed=11), EngineConfig(max_num_seqs=1), n_blocks=BLOCKS
        )
        assert r.queue_s["mean"] == pytest.approx(rho * service_s / (2 * (1 - rho)), rel=0.06)
        assert r.e2e_s["mean"] - r.queue_s["mean"] == pytest.approx(service_s, rel=1e-6)


def test_first_token_lag_shifts_ttft_and_e2e_by_decode_steps_not_itl() -> None:
    """An engine whose tokens reach the client k decode iterations late (EngineProfile.first_token_lag_steps):
    every request's TTFT and E2E grow by k x its own decode step, the gaps between tokens stay, and the
    static model's TTFT grows by k x its TPOT."""
    k = 2.0
    lagged = replica_coefficients(
        MODEL,
        DEV,
        PROF,
        ENG.replace(first_token_lag_steps=k),
        tp=1,
        weight_precision="bf16",
        kv_precision="bf16",
    )
    w = Workload.poisson(0.05, 200, 1000, 200, seed=3)
    base, late = (simulate(c, w, EngineConfig(), n_blocks=BLOCKS) for c in (C, lagged))
    step = base.tpot_s["p50"]
    assert late.ttft_s["p50"] == pytest.approx(base.ttft_s["p50"] + k * step, rel=0.01)
    assert late.e2e_s["p50"] == pytest.approx(base.e2e_s["p50"] + k * step, rel=0.01)
    assert late.itl_s["p50"] == pytest.approx(base.itl_s["p50"], rel=1e-9)
    assert late.throughput_rps == pytest.approx(base.throughput_rps, rel=0.01)

    job = ServeJob(prompt_len=1000, output_len=200, batch=4)
    cat = builtin_catalog()
    plain = estimate_serve(MODEL, job, Cluster(device=DEV.id), engine_profile=ENG, catalog=cat)
    slow = estimate_serve(
        MODEL, job, Cluster(device=DEV.id), engine_profile=ENG.replace(first_token_lag_steps=k), catalog=cat
    )
    assert slow.ttft_s == pytest.approx(plain.ttft_s + k * plain.time_per_output_token_s, rel=1e-9)
    assert slow.time_per_output_token_s == pytest.approx(plain.time_per_output_token_s, rel=1e-12)


# ---- prefix cache: shared full blocks (serve_sim module docstring) ------------------------------------------


def test_shared_prefix_blocks_are_counted_once_hand_computed() -> None:
    """8 identical requests (1000-token prompts, 80% cache hit, 201 output tokens) arriving together, all
    prefilled in the first iteration. A sequence's last decode step holds ceil((1000 + 201 − 1) / 16) = 75
    blocks, of which floor(800 / 16) = 50 are full blocks of the shared prefix: the pool holds
    50 + 8 × (75 − 50) = 250 blocks, not 8 × 75 = 600 as a per-sequence count would."""
    wl = Workload.closed_loop(8, 8, 1000, 201, prefix_share=0.8)
    cfg = EngineConfig(max_num_seqs=8)
    shared = simulate(C, wl, cfg, n_blocks=1000)
    per_seq = simulate(C, wl, cfg, n_blocks=1000, share_prefix_blocks=False)
    assert shared.kv_occupancy_max == pytest.approx((50 + 8 * 25) / 1000, abs=1e-12)
    assert per_seq.kv_occupancy_max == pytest.approx(8 * 75 / 1000, abs=1e-12)
    # With room for everything the schedule is the same: sharing changes memory, not time.
    np.testing.assert_array_equal(shared.per_request["finish_s"], per_seq.per_request["finish_s"])
    assert shared.kv_occupancy_mean < 0.5 * per_seq.kv_occupancy_mean


def test_two_requests_run_together_only_when_the_prefix_is_shared() -> None:
    """A 110-block pool and two such requests: counted per sequence the second one's prompt (63 blocks) does
    not fit beside the first one's, so it waits until the first finishes; shared, the two need
    50 + 2 × 13 = 76 blocks at admission and 50 + 2 × 25 = 100 at the end, and run side by side."""
    wl = Workload.closed_loop(2, 2, 1000, 201, prefix_share=0.8)
    shared = simulate(C, wl, EngineConfig(), n_blocks=110)
    per_seq = simulate(C, wl, EngineConfig(), n_blocks=110, share_prefix_blocks=False)
    ft, fin = shared.per_request["first_token_s"], shared.per_request["finish_s"]
    assert ft[0] == ft[1] and shared.preemptions == 0
    assert shared.kv_occupancy_max == pytest.approx(100 / 110, abs=1e-12)
    pft, pfin = per_seq.per_request["first_token_s"], per_seq.per_request["finish_s"]
    assert pft[1] >= pfin[0] and per_seq.preemptions == 0
    assert fin.max() < 0.6 * pfin.max()


def test_shared_prefix_blocks_cut_preemptions_on_a_scarce_pool() -> None:
    """32 clients, 500-token prompts with an 80% hit, 300 output tokens: a sequence ends holding
    ceil(799 / 16) = 50 blocks, 25 of them the shared prefix's. A 900-block pool holds 18 such sequences
    counted per sequence (decode steps run out and preempt) but 25 + 32 × 25 = 825 blocks shared: none."""
    wl = Workload.closed_loop(32, 200, 500, 300, seed=0, prefix_share=0.8)
    shared = simulate(C, wl, EngineConfig(), n_blocks=900)
    per_seq = simulate(C, wl, EngineConfig(), n_blocks=900, share_prefix_blocks=False)
    assert per_seq.preemptions > 20 and per_seq.kv_occupancy_max > 0.95
    assert shared.preemptions == 0 and shared.kv_occupancy_max <= 825 / 900
    assert shared.throughput_rps > 1.2 * per_seq.throughput_rps
    assert shared.mean_running > per_seq.mean_running
    # A pool far too small for the concurrency even shared: vLLM-style admission (prompt blocks only) lets
    # more sequences in, so they preempt each other more often, yet more work gets done.
    tight = simulate(C, wl, EngineConfig(), n_blocks=300)
    tight_per_seq = simulate(C, wl, EngineConfig(), n_blocks=300, share_prefix_blocks=False)
    assert tight.preemptions > 0 and tight_per_seq.preemptions > 0
    assert tight.throughput_rps > tight_per_seq.throughput_rps
    assert 0.0 < tight.kv_occupancy_max <= 1.0
    assert tight.requests == 200 and np.isfinite(tight.per_request["finish_s"]).all()


def test_littles_law_with_shared_prefix_blocks_on_a_tight_pool() -> None:
    """Little's law still holds when sharing decides admissions (a pool that a per-sequence count fills)."""
    rate = 15.0
    wl = Workload.poisson(rate, 6000, 800, 150, seed=1, output_dist="exponential", prefix_share=0.6)
    r = simulate(C, wl, EngineConfig(), n_blocks=700)
    pr = r.per_request
    a, f = pr["arrival_s"], pr["finish_s"]
    grid = np.linspace(a.min() + 0.1 * np.ptp(a), a.max() - 0.1 * np.ptp(a), 4000)
    in_system = (a[None, :] <= grid[:, None]) & (f[None, :] > grid[:, None])
    assert in_system.sum(axis=1).mean() == pytest.approx(rate * r.e2e_s["mean"], rel=0.06)
    assert not r.overloaded
    per_seq = simulate(C, wl, EngineConfig(), n_blocks=700, share_prefix_blocks=False)
    assert per_seq.overloaded  # the same pool counted per sequence cannot keep up


def test_closed_form_stretches_match_stepping_with_shared_prefix_blocks() -> None:
    """The closed-form decode stretches stop where the pool runs out with the shared blocks counted once."""
    wl = Workload.poisson(12.0, 500, 900, 200, seed=4, prompt_dist="lognormal", prefix_share=0.7)
    for cfg, blocks in ((EngineConfig(), 700), (EngineConfig(chunked_prefill=False), 700)):
        fast = simulate(C, wl, cfg, n_blocks=blocks)
        slow = simulate(C, wl, cfg, n_blocks=blocks, closed_form=False)
        assert fast.preemptions == slow.preemptions > 0
        assert fast.iterations == slow.iterations and fast.event_steps < slow.event_steps
        np.testing.assert_allclose(fast.per_request["finish_s"], slow.per_request["finish_s"], rtol=1e-9)
        assert fast.kv_occupancy_max == slow.kv_occupancy_max
        assert fast.kv_occupancy_mean == pytest.approx(slow.kv_occupancy_mean, rel=0.02)


def test_share_zero_is_the_same_in_both_modes_and_a_lone_request_still_needs_all_its_blocks() -> None:
    wl = Workload.poisson(10.0, 400, 700, 120, seed=7, prompt_dist="lognormal")
    assert (
        simulate(C, wl, EngineConfig(), n_blocks=600).to_dict()
        == simulate(C, wl, EngineConfig(), n_blocks=600, share_prefix_blocks=False).to_dict()
    )
    # Shared blocks are held by someone: a request alone needs them all (P + O = 5100 tokens: 319 blocks).
    with pytest.raises(SpecError, match="needs 319 KV blocks but the pool holds 100"):
        simulate(C, Workload.closed_loop(1, 1, 5000, 100, prefix_share=0.9), EngineConfig(), n_blocks=100)


def test_estimate_serve_sim_states_the_prefix_assumption_and_lower_occupancy() -> None:
    wl = Workload.poisson(0.3, 300, 3000, 200, seed=0, prefix_share=0.8)
    cluster = Cluster(device="l4")
    shared = estimate_serve_sim(MODEL, wl, cluster).to_dict()
    per_seq = estimate_serve_sim(MODEL, wl, cluster, share_prefix_blocks=False).to_dict()
    notes = {a["name"]: a["value"] for a in shared["assumptions"]}
    assert notes["prefix_cache"] == "shared"
    assert {a["name"]: a["value"] for a in per_seq["assumptions"]}["prefix_cache"] == "per-sequence"
    assert shared["simulation"]["kv_occupancy_mean"] < 0.5 * per_seq["simulation"]["kv_occupancy_mean"]
    assert shared["kv_cache_bytes"] < per_seq["kv_cache_bytes"]
    assert shared["max_batch"] > 2 * per_seq["max_batch"]
    plain = estimate_serve_sim(MODEL, Workload.poisson(3.0, 50, 3000, 200, seed=0), cluster).to_dict()
    assert "prefix_cache" not in {a["name"] for a in plain["assumptions"]}


@pytest.mark.parametrize("batch", [1, 8, 32])
def test_static_model_counts_the_shared_prefix_like_the_simulator(batch: int) -> None:
    """The closed form with a prefix cache: ``batch`` 1000-token prompts with an 80% hit arriving together
    have the simulator's TTFT (the 200 new tokens of each prompt after 800 cached), and the static KV cache
    (one copy of the 800-token prefix, 50 full blocks) is the simulator's peak KV use within block
    rounding; counted per sequence both are ``batch`` full copies."""
    P, Out, share = 1000, 201, 0.8
    job = ServeJob(prompt_len=P, output_len=Out, batch=batch)
    cfg = EngineConfig(max_num_batched_tokens=batch * P, max_num_seqs=batch)
    wl = Workload.closed_loop(batch, batch, P, Out, prefix_share=share)
    block_bytes = 16 * float(C.kv_bytes_per_token)
    for shared in (True, False):
        static = estimate_serve(
            MODEL, job, Cluster(device=DEV.id), prefix_share=share, share_prefix_blocks=shared
        )
        r = simulate(C, wl, cfg, n_blocks=BLOCKS, share_prefix_blocks=shared)
        assert r.ttft_s["p50"] == pytest.approx(static.ttft_s, rel=1e-6)
        peak_bytes = r.kv_occupancy_max * BLOCKS * block_bytes
        assert peak_bytes == pytest.approx(static.kv_cache_bytes, rel=0.02)
    cold = estimate_serve(MODEL, job, Cluster(device=DEV.id))
    assert cold.ttft_s > 2 * static.ttft_s


def test_static_max_batch_with_a_shared_prefix() -> None:
    """On a 24 GB L4 the KV room holds 7 sequences of 3000 + 200 tokens; sharing 80% of each prompt
    (2400 tokens, 150 full blocks, once) leaves 800 own tokens per sequence: about 4× as many."""
    job = ServeJob(prompt_len=3000, output_len=200, batch=8)
    l4 = Cluster(device="l4")
    per_seq = estimate_serve(MODEL, job, l4, prefix_share=0.8, share_prefix_blocks=False)
    shared = estimate_serve(MODEL, job, l4, prefix_share=0.8)
    assert not per_seq.fits and shared.fits
    room = per_seq.max_batch * 3200  # tokens of KV room, to within one sequence
    assert shared.max_batch == pytest.approx((room - 2400) / 800, abs=1 + 3200 / 800)
    assert shared.max_batch >= 3 * per_seq.max_batch
    assert {a.name: a.value for a in shared.assumptions}["prefix_cache"] == "shared"
    with pytest.raises(SpecError, match="--prefix-share"):
        estimate_serve(MODEL, job, l4, prefix_share=1.0)


def test_shared_prefix_blocks_random_engines_closed_form_equals_stepping() -> None:
    """Random engine settings (block size, chunking, budget, max seqs, speculative decoding), workloads and
    tight pools with a prefix hit: the closed-form stretches give stepping's answer, the pool is never
    over-full, every request finishes."""
    rng = np.random.default_rng(0)
    checked = 0
    while checked < 25:
        share = float(rng.choice([0.3, 0.6, 0.9]))
        P, Out, bs = int(rng.integers(20, 1500)), int(rng.integers(2, 400)), int(rng.choice([1, 8, 16, 32]))
        spec = int(rng.choice([0, 0, 2]))
        chunked = bool(rng.integers(0, 2))
        cfg = EngineConfig(
            chunked_prefill=chunked,
            kv_block_size=bs,
            max_num_seqs=int(rng.integers(1, 64)),
            max_num_batched_tokens=int(rng.choice([512, 2048, 8192])) if chunked else None,
            spec_draft_tokens=spec,
            spec_acceptance=0.6 if spec else 0.0,
        )
        if rng.integers(0, 2):
            wl = Workload.poisson(
                float(rng.uniform(1, 30)),
                120,
                P,
                Out,
                seed=checked,
                prompt_dist="lognormal",
                prefix_share=share,
            )
        else:
            wl = Workload.closed_loop(int(rng.integers(1, 40)), 120, P, Out, seed=checked, prefix_share=share)
        longest = int(max(wl.prompt_tokens + wl.output_tokens))
        need = -(-(longest + spec) // bs) + 2
        blocks = int(rng.integers(need, need * 4))
        fast = simulate(C, wl, cfg, n_blocks=blocks)
        slow = simulate(C, wl, cfg, n_blocks=blocks, closed_form=False)
        assert (fast.iterations, fast.preemptions) == (slow.iterations, slow.preemptions)
        np.testing.assert_allclose(fast.per_request["finish_s"], slow.per_request["finish_s"], rtol=1e-9)
        assert fast.kv_occupancy_max == slow.kv_occupancy_max <= 1.0
        assert np.isfinite(fast.per_request["finish_s"]).all()
        checked += 1
