"""``estimate_serve``: time to first token, time per output token, throughput, KV cache, largest batch
and dollars per million output tokens for one model replica.

Two models answer (``model_kind`` in the result):

* **static closed form** (:func:`serve_kernel`, vectorised for the planner): one batch of B prompts of P
  tokens is prefilled in one engine iteration and decoded in lock-step. TTFT = that iteration; TPOT =
  one decode iteration of B sequences at the mean context P + O/2; a request takes TTFT + O·TPOT; a
  replica emits B·O tokens per request time.
* **continuous-batching simulation** (:mod:`mlcost.estimate.serve_sim`): requests arrive over time and
  join and leave the running batch between iterations (``estimate_serve_sim``).

**Prefix cache** (both models): ``prefix_share`` x of each prompt is a cache hit of h = min(floor(x·P), P − 1)
tokens: the static prefill computes the P − h other tokens of each prompt, attending to the h cached ones.
With ``share_prefix_blocks`` (default) the hit's full blocks of :data:`PREFIX_BLOCK_TOKENS` tokens are one
common prefix held once for the whole batch, as in the simulator: KV memory = B sequences − (B − 1) × the
shared tokens, and the largest batch = (room − shared) / (one sequence − shared); otherwise every sequence
holds its own copy.

Both price an iteration with :mod:`mlcost.estimate.serve_step` (a roofline per iteration plus the serving
engine's fixed costs from ``engines.csv``), so they agree where their assumptions meet. Weight-only
int8/int4 shrink the bytes read (int4 with group-wise fp16 scales adds 1/64 byte per weight); compute runs
in bf16/fp16; fp8 weights run fp8 GEMMs on devices with fp8 units.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mlcost.catalog.protocol import CatalogLike
from mlcost.catalog.schema import EfficiencyProfile, EngineProfile
from mlcost.errors import SpecError
from mlcost.estimate.context import resolve_hardware
from mlcost.estimate.kernel import broadcast_all
from mlcost.estimate.memory import kv_cache_bytes
from mlcost.estimate.params import count_params
from mlcost.estimate.result import Assumption, ErrorBand, ServeEstimate
from mlcost.estimate.serve_step import (
    KV_BLOCK_TOKENS,
    WEIGHT_BYTES,
    bare_engine,
    compute_peak,
    default_engine,
    step_coefficients,
    step_parts,
)
from mlcost.spec.cluster import Cluster
from mlcost.spec.job import BYTES_PER_ELEMENT, ServeJob
from mlcost.spec.model import ModelSpec
from mlcost.spec.validate import context_fits
from mlcost.units import J_PER_KWH, S_PER_H

__all__ = [
    "PREFIX_BLOCK_TOKENS",
    "USABLE_MEMORY_FRAC",
    "WEIGHT_BYTES",
    "engine_assumption",
    "estimate_serve",
    "estimate_serve_sim",
    "prefix_cache_assumption",
    "resolve_engine",
    "serve_kernel",
]

#: Fraction of device memory usable by weights + KV cache (the rest: activations, allocator, runtime).
USABLE_MEMORY_FRAC = 0.9
#: Tokens per KV block whose full blocks a shared prefix holds once: the engines' default block, as in the
#: simulator's ``EngineConfig.kv_block_size``.
PREFIX_BLOCK_TOKENS = KV_BLOCK_TOKENS
#: Kept for callers written before engines.csv: the static model now takes the all-reduce latency from
#: the engine row (``collective_latency_s``); this is the value of the old fixed assumption. Units: s.
ALLREDUCE_LATENCY_S = 10e-6

_compute_peak = compute_peak


def serve_kernel(
    model: ModelSpec,
    *,
    prompt_len: ArrayLike,
    output_len: ArrayLike,
    batch: ArrayLike,
    tp: ArrayLike,
    weight_bytes: ArrayLike,
    kv_bytes: ArrayLike,
    peak_flops_per_s: ArrayLike,
    mem_bw_bytes_per_s: ArrayLike,
    memory_bytes: ArrayLike,
    devices_per_node: ArrayLike,
    intra_bw_bytes_per_s: ArrayLike,
    inter_bw_bytes_per_s: ArrayLike,
    profile: EfficiencyProfile,
    engine: EngineProfile | None = None,
    fp8_compute: ArrayLike = False,
    prefix_share: float = 0.0,
    share_prefix_blocks: bool = True,
) -> dict[str, np.ndarray]:
    """Vectorised static serving model (module docstring). Returns arrays keyed by metric.

    ``engine`` supplies the per-iteration overheads (None: :func:`~mlcost.estimate.serve_step.bare_engine`,
    the hardware roofline alone); ``fp8_compute`` marks candidates whose GEMMs run in fp8; ``prefix_share``
    and ``share_prefix_blocks``: the prefix cache (module docstring)."""
    eng = engine if engine is not None else bare_engine(profile)
    P = np.asarray(prompt_len, dtype=np.float64)
    n_out = np.asarray(output_len, dtype=np.float64)
    B = np.asarray(batch, dtype=np.float64)
    t = np.asarray(tp, dtype=np.float64)
    c = step_coefficients(
        model,
        tp=t,
        weight_bytes=weight_bytes,
        kv_bytes=kv_bytes,
        peak_flops_per_s=peak_flops_per_s,
        mem_bw_bytes_per_s=mem_bw_bytes_per_s,
        devices_per_node=devices_per_node,
        intra_bw_bytes_per_s=intra_bw_bytes_per_s,
        inter_bw_bytes_per_s=inter_bw_bytes_per_s,
        profile=profile,
        engine=eng,
        fp8_compute=fp8_compute,
    )
    weights_dev = np.asarray(c.weights_bytes, dtype=np.float64)
    # Prefill: the whole batch in one iteration.
    if prefix_share > 0.0:
        # The cache hit h of each prompt is attended to, not recomputed.
        h = np.minimum(np.floor(prefix_share * P), P - 1.0)
        n_new = P - h
        pre = step_parts(
            c,
            prefill_tokens=B * n_new,
            prefill_seqs=B,
            prefill_pairs=B * (n_new * h + n_new * (n_new + 1.0) / 2.0),
            prefill_ctx_tokens=B * h,
        )
    else:
        pre = step_parts(c, prefill_tokens=B * P, prefill_seqs=B, prefill_pairs=B * P * (P + 1.0) / 2.0)
    ttft = pre.time_s
    # Decode at the mean context.
    ctx = P + n_out / 2.0
    dec = step_parts(c, decode_seqs=B, decode_ctx_tokens=B * ctx)
    tpot = dec.time_s
    # Tokens reach the client the engine's lag (in decode iterations) after the pass that made them.
    ttft = ttft + c.first_token_lag_steps * tpot

    latency = ttft + n_out * tpot
    tokens_per_s = B * n_out / latency
    kv_full = kv_cache_bytes(model, P + n_out, B, t, kv_bytes)
    overhead = np.asarray(profile.framework_overhead_bytes, dtype=np.float64)
    mem_total = weights_dev + kv_full + overhead
    usable = np.asarray(memory_bytes, dtype=np.float64) * USABLE_MEMORY_FRAC
    kv_per_seq = kv_cache_bytes(model, P + n_out, 1.0, t, kv_bytes)
    max_batch = np.floor(np.maximum(usable - weights_dev - overhead, 0.0) / kv_per_seq)
    if prefix_share > 0.0 and share_prefix_blocks:
        # One copy of the common prefix's full blocks for the whole batch.
        shared_tok = np.floor(h / PREFIX_BLOCK_TOKENS) * PREFIX_BLOCK_TOKENS
        kv_shared = kv_cache_bytes(model, shared_tok, 1.0, t, kv_bytes)
        kv_full = kv_full - np.maximum(B - 1.0, 0.0) * kv_shared
        mem_total = weights_dev + kv_full + overhead
        room = np.maximum(usable - weights_dev - overhead - kv_shared, 0.0)
        max_batch = np.where(
            usable - weights_dev - overhead >= kv_per_seq, np.floor(room / (kv_per_seq - kv_shared)), 0.0
        )
    out = {
        "ttft_s": ttft,
        "time_per_output_token_s": tpot,
        "request_latency_s": latency,
        "tokens_per_s": tokens_per_s,
        "kv_cache_bytes": kv_full,
        "weights_bytes": weights_dev,
        "memory_total_bytes": mem_total,
        "memory_other_bytes": overhead + 0.0 * B,
        "fits": mem_total <= usable,
        "max_batch": max_batch,
        "memory_bound": dec.memory_s >= dec.compute_s,
    }
    return broadcast_all(out)


def estimate_serve(
    model: ModelSpec,
    job: ServeJob,
    cluster: Cluster,
    *,
    catalog: CatalogLike | None = None,
    profile: EfficiencyProfile | None = None,
    engine: str | None = None,
    engine_profile: EngineProfile | None = None,
    prefix_share: float = 0.0,
    share_prefix_blocks: bool = True,
) -> ServeEstimate:
    """Predict serving ``model`` with ``job`` on one replica of ``job.tp`` devices of ``cluster.device``
    with the static closed form (module docstring; ``prefix_share``/``share_prefix_blocks``: the prefix cache).

    ``engine`` names the serving engine (engines.csv; default :func:`~mlcost.estimate.serve_step.default_engine`:
    vllm on accelerators, hf on CPUs); ``engine_profile`` overrides the row. ``cluster.count`` must be a
    multiple of TP; the result is per replica (costs are per output token and therefore independent of the
    number of replicas)."""
    if cluster.count % job.tp:
        raise SpecError(
            f"{cluster.count} devices are not a multiple of TP = {job.tp}", hint="one replica uses TP devices"
        )
    if model.n_heads % job.tp:
        raise SpecError(
            f"TP = {job.tp} does not divide the {model.n_heads} attention heads of {model.name}",
            hint="choose a TP that divides the number of heads",
        )
    context_fits(model.name, model.max_seq_len, job.context_len, "--prompt-len + --output-len")
    if not (0.0 <= prefix_share < 1.0):
        raise SpecError(
            f"--prefix-share must be in [0, 1), got {prefix_share}", hint="e.g. --prefix-share 0.8"
        )
    hw = resolve_hardware(cluster, catalog, profile)
    prof = hw.profile
    eng = engine_profile if engine_profile is not None else resolve_engine(hw.device, engine, catalog)
    peak, compute_precision = _compute_peak(hw.device, job.weight_precision)
    r = serve_kernel(
        model,
        prompt_len=job.prompt_len,
        output_len=job.output_len,
        batch=job.batch,
        tp=job.tp,
        weight_bytes=WEIGHT_BYTES[job.weight_precision],
        kv_bytes=BYTES_PER_ELEMENT[job.kv_precision],
        peak_flops_per_s=peak,
        mem_bw_bytes_per_s=hw.device.mem_bw_bytes_per_s,
        memory_bytes=hw.device.memory_bytes,
        devices_per_node=hw.devices_per_node,
        intra_bw_bytes_per_s=hw.intra_bw_bytes_per_s,
        inter_bw_bytes_per_s=hw.inter_bw_bytes_per_s,
        profile=prof,
        engine=eng,
        fp8_compute=compute_precision == "fp8",
        prefix_share=prefix_share,
        share_prefix_blocks=share_prefix_blocks,
    )
    v = {k: float(x) for k, x in r.items()}
    counts = count_params(model)
    tokens_per_h = v["tokens_per_s"] * S_PER_H
    power_w = hw.device.tdp_w * prof.power_frac * job.tp
    energy_per_m = power_w * hw.pue * (1e6 / v["tokens_per_s"]) / J_PER_KWH
    price_h = None if hw.price_usd_per_device_h is None else hw.price_usd_per_device_h * job.tp
    cost_per_m = None if price_h is None else price_h / tokens_per_h * 1e6
    rel = prof.error_band_rel
    ranges = {
        k: (v[k] * (1 - rel), v[k] * (1 + rel)) for k in ("ttft_s", "time_per_output_token_s", "tokens_per_s")
    }
    if cost_per_m is not None:
        ranges["cost_per_million_output_tokens_usd"] = (cost_per_m * (1 - rel), cost_per_m * (1 + rel))
    notes = [
        *hw.assumptions,
        Assumption("compute_precision", compute_precision, f"GEMMs for {job.weight_precision} weights"),
        Assumption(
            "weight_bytes_per_param", WEIGHT_BYTES[job.weight_precision], "includes quantisation scales"
        ),
        engine_assumption(eng),
        Assumption("batching", "static", "the batch is prefilled together and decoded in lock-step"),
        Assumption("usable_memory_frac", USABLE_MEMORY_FRAC, "share of device memory for weights + KV cache"),
        Assumption("utilisation", 1.0, "cost per token assumes the replica is busy all the time"),
    ]
    if prefix_share > 0.0:
        notes.append(prefix_cache_assumption(prefix_share, share_prefix_blocks))
    return ServeEstimate(
        model=model.name,
        params=counts.total,
        active_params=counts.active,
        devices=job.tp,
        ttft_s=v["ttft_s"],
        time_per_output_token_s=v["time_per_output_token_s"],
        tokens_per_s=v["tokens_per_s"],
        request_latency_s=v["request_latency_s"],
        kv_cache_bytes=v["kv_cache_bytes"],
        weights_bytes=v["weights_bytes"],
        memory={
            "weights": v["weights_bytes"],
            "kv_cache": v["kv_cache_bytes"],
            "other": v["memory_other_bytes"],
            "total": v["memory_total_bytes"],
            "capacity": hw.device.memory_bytes,
        },
        fits=bool(v["fits"]),
        max_batch=int(v["max_batch"]),
        cost_per_hour_usd=price_h,
        cost_per_million_output_tokens_usd=cost_per_m,
        energy_kwh_per_million_output_tokens=energy_per_m,
        co2_kg_per_million_output_tokens=energy_per_m * hw.carbon_kg_per_kwh,
        bound="memory" if v["memory_bound"] else "compute",
        error_band=ErrorBand(
            relative=rel, source=f"efficiency profile {prof.device}: {prof.source}", ranges=ranges
        ),
        assumptions=notes,
        config={
            "model": model.to_dict(),
            "job": job.to_dict(),
            "engine": eng.engine,
            "cluster": {
                "device": hw.device.id,
                "count": cluster.count,
                "provider": hw.provider,
                "region": hw.region,
                "pricing": hw.pricing,
            },
        },
        model_kind="static-closed-form",
        engine=eng.to_dict(),
    )


def resolve_engine(device: Any, engine: str | None, catalog: CatalogLike | None) -> EngineProfile:
    """The engines.csv row of ``engine`` (default :func:`default_engine`) on ``device`` (a Device)."""
    from mlcost.catalog.loader import builtin_catalog

    cat = catalog if catalog is not None else builtin_catalog()
    return cat.engine_profile(engine or default_engine(device), device)


def prefix_cache_assumption(share: float, shared: bool) -> Assumption:
    """The assumption line saying how the prefix-cache hit's KV blocks are counted (docs/serve.md)."""
    if shared:
        return Assumption(
            "prefix_cache",
            "shared",
            f"{share:g} of each prompt is a cache hit on one common prefix (system prompt, few-shot block): its "
            "full KV blocks are held once for every running sequence (vLLM automatic prefix caching, SGLang "
            "radix cache); --prefix-blocks per-sequence if the prefixes differ",
        )
    return Assumption(
        "prefix_cache",
        "per-sequence",
        f"{share:g} of each prompt is a cache hit on a prefix of its own (e.g. the conversation so far): its KV "
        "blocks are counted once per sequence (--prefix-blocks per-sequence)",
    )


def engine_assumption(eng: EngineProfile) -> Assumption:
    """The assumption line naming the engine row and whether it was fitted."""
    state = f"fitted on {eng.fitted_on}" if eng.fitted else "not fitted"
    return Assumption(
        "engine",
        f"{eng.engine}@{eng.device}",
        f"iteration {eng.iteration_overhead_s * 1e3:.2f} ms, collective {eng.collective_latency_s * 1e6:.0f} µs, "
        f"decode bandwidth {eng.decode_mem_bw_eff:.0%}; {state}; {eng.source} ({eng.date})",
    )


def estimate_serve_sim(
    model: ModelSpec,
    workload: Any,
    cluster: Cluster,
    *,
    tp: int = 1,
    weight_precision: str = "bf16",
    kv_precision: str = "bf16",
    config: Any = None,
    catalog: CatalogLike | None = None,
    profile: EfficiencyProfile | None = None,
    engine: str | None = None,
    engine_profile: EngineProfile | None = None,
    share_prefix_blocks: bool = True,
) -> ServeEstimate:
    """Predict serving ``model`` under ``workload`` (a :class:`~mlcost.estimate.serve_workload.Workload`) on
    one replica of ``tp`` devices with the continuous-batching simulator (:mod:`mlcost.estimate.serve_sim`)
    and engine settings ``config`` (an :class:`~mlcost.estimate.serve_sim.EngineConfig`; None = defaults).

    The headline fields are: ``ttft_s`` the median TTFT, ``time_per_output_token_s`` the median
    inter-token latency, ``request_latency_s`` the mean end-to-end latency, ``tokens_per_s`` the output
    throughput; ``simulation`` holds every distribution (p50/p90/p99), KV occupancy and preemptions.
    ``share_prefix_blocks``: the prefix-cache hit's full blocks are held once for every running sequence (one
    common prefix, e.g. a system prompt) or once per sequence (False: distinct prefixes, e.g. each
    conversation's own history); :mod:`mlcost.estimate.serve_sim`."""
    from mlcost.estimate.serve_sim import EngineConfig, kv_blocks, simulate
    from mlcost.estimate.serve_step import replica_coefficients

    cfg = config if config is not None else EngineConfig()
    if weight_precision not in WEIGHT_BYTES:
        raise SpecError(
            f"unknown weight precision {weight_precision!r}", hint=f"choose from {', '.join(WEIGHT_BYTES)}"
        )
    if kv_precision not in BYTES_PER_ELEMENT:
        raise SpecError(f"unknown KV-cache precision {kv_precision!r}")
    if cluster.count % tp:
        raise SpecError(
            f"{cluster.count} devices are not a multiple of TP = {tp}", hint="one replica uses TP devices"
        )
    if model.n_heads % tp:
        raise SpecError(
            f"TP = {tp} does not divide the {model.n_heads} attention heads of {model.name}",
            hint="choose a TP that divides the number of heads",
        )
    hw = resolve_hardware(cluster, catalog, profile)
    prof = hw.profile
    eng = engine_profile if engine_profile is not None else resolve_engine(hw.device, engine, catalog)
    _peak, compute_precision = _compute_peak(hw.device, weight_precision)
    c = replica_coefficients(
        model,
        hw.device,
        prof,
        eng,
        tp=tp,
        weight_precision=weight_precision,
        kv_precision=kv_precision,
        devices_per_node=hw.devices_per_node,
        intra_bw_bytes_per_s=hw.intra_bw_bytes_per_s,
        inter_bw_bytes_per_s=hw.inter_bw_bytes_per_s,
    )
    n_blocks = kv_blocks(c, hw.device.memory_bytes, prof.framework_overhead_bytes, cfg)
    price_h = None if hw.price_usd_per_device_h is None else hw.price_usd_per_device_h * tp
    sim = simulate(
        c,
        workload,
        cfg,
        n_blocks=n_blocks,
        price_usd_per_h=price_h,
        max_context=model.max_seq_len,
        share_prefix_blocks=share_prefix_blocks,
    )
    counts = count_params(model)
    tok_s = sim.output_tokens_per_s
    power_w = hw.device.tdp_w * prof.power_frac * tp
    energy_per_m = power_w * hw.pue * (1e6 / tok_s) / J_PER_KWH
    rel = prof.error_band_rel
    ttft, itl = sim.ttft_s["p50"], sim.itl_s["p50"]
    ranges = {
        "ttft_s": (ttft * (1 - rel), ttft * (1 + rel)),
        "time_per_output_token_s": (itl * (1 - rel), itl * (1 + rel)),
        "tokens_per_s": (tok_s * (1 - rel), tok_s * (1 + rel)),
    }
    cost_m = sim.cost_per_million_output_tokens_usd
    if cost_m is not None:
        ranges["cost_per_million_output_tokens_usd"] = (cost_m * (1 - rel), cost_m * (1 + rel))
    kv_tok = float(c.kv_bytes_per_token)
    kv_max_bytes = sim.kv_occupancy_max * n_blocks * cfg.kv_block_size * kv_tok
    weights = float(c.weights_bytes)
    mean_ctx = float(np.mean(workload.prompt_tokens) + np.mean(workload.output_tokens))
    max_seqs = int(n_blocks * cfg.kv_block_size // max(mean_ctx, 1.0))
    share = float(workload.prefix_share)
    if share > 0.0 and share_prefix_blocks:
        # The common prefix's full blocks once, then each sequence's own blocks at the mean context.
        bs = cfg.kv_block_size
        prompts = np.asarray(workload.prompt_tokens, dtype=np.int64)
        hits = np.minimum((share * prompts).astype(np.int64), prompts - 1)
        shared_blocks = hits // bs
        own_tokens = max(mean_ctx - float(np.mean(shared_blocks)) * bs, 1.0)
        max_seqs = int(max(n_blocks - int(shared_blocks.max()), 0) * bs // own_tokens)
    dec = step_parts(
        c, decode_seqs=max(sim.mean_running, 1.0), decode_ctx_tokens=max(sim.mean_running, 1.0) * mean_ctx
    )
    notes = [
        *hw.assumptions,
        Assumption("compute_precision", compute_precision, f"GEMMs for {weight_precision} weights"),
        Assumption("weight_bytes_per_param", WEIGHT_BYTES[weight_precision], "includes quantisation scales"),
        engine_assumption(eng),
        Assumption(
            "batching",
            "continuous",
            "discrete-event simulation of an engine loop (vLLM-like scheduler, paged KV cache, recompute "
            "preemption); docs/serve.md",
        ),
        Assumption(
            "kv_blocks",
            n_blocks,
            f"{cfg.kv_block_size}-token blocks in memory × {cfg.gpu_memory_fraction:g} − weights − overhead",
        ),
        Assumption("utilisation", "simulated", "cost per token from the simulated throughput at this load"),
    ]
    if share > 0.0:
        notes.append(prefix_cache_assumption(share, share_prefix_blocks))
    return ServeEstimate(
        model=model.name,
        params=counts.total,
        active_params=counts.active,
        devices=tp,
        ttft_s=ttft,
        time_per_output_token_s=itl,
        tokens_per_s=tok_s,
        request_latency_s=sim.e2e_s["mean"],
        kv_cache_bytes=kv_max_bytes,
        weights_bytes=weights,
        memory={
            "weights": weights,
            "kv_cache": kv_max_bytes,
            "kv_pool": n_blocks * cfg.kv_block_size * kv_tok,
            "other": prof.framework_overhead_bytes,
            "total": weights + kv_max_bytes + prof.framework_overhead_bytes,
            "capacity": hw.device.memory_bytes,
        },
        fits=True,
        max_batch=min(max_seqs, cfg.max_num_seqs),
        cost_per_hour_usd=price_h,
        cost_per_million_output_tokens_usd=cost_m,
        energy_kwh_per_million_output_tokens=energy_per_m,
        co2_kg_per_million_output_tokens=energy_per_m * hw.carbon_kg_per_kwh,
        bound="memory" if float(dec.memory_s) >= float(dec.compute_s) else "compute",
        error_band=ErrorBand(
            relative=rel, source=f"efficiency profile {prof.device}: {prof.source}", ranges=ranges
        ),
        assumptions=notes,
        config={
            "model": model.to_dict(),
            "job": {
                "tp": tp,
                "weight_precision": weight_precision,
                "kv_precision": kv_precision,
                "engine": eng.engine,
            },
            "cluster": {
                "device": hw.device.id,
                "count": cluster.count,
                "provider": hw.provider,
                "region": hw.region,
                "pricing": hw.pricing,
            },
        },
        model_kind="continuous-batching-simulation",
        engine=eng.to_dict(),
        simulation={
            "workload": dict(workload.description),
            "engine_config": cfg.to_dict(),
            **sim.to_dict(),
            "wall_s": sim.wall_s,
        },
    )
