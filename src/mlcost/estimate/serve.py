"""``estimate_serve``: time to first token, time per output token, throughput, KV cache, largest batch
and dollars per million output tokens for one model replica.

Model (roofline, vectorised like the training kernel):

* **Prefill** of a batch of B prompts of P tokens: FLOPs = B·P·(2·N_active_matmul + attention), time =
  max(compute at GEMM efficiency, reading the weights once) + 2 TP all-reduces per layer.
* **Decode** step at context c: FLOPs = B·(2·N_active_matmul + 4·c·a·d·L) at the GEMM efficiency of the
  weight matrices' dimension h/TP; bytes = weights read once (MoE: only the experts the batch touches,
  E·(1−(1−k/E)^B) per layer) + the KV cache of the batch; time = max(compute, bytes / bandwidth) + 2 TP
  all-reduces per layer (latency-bound). Small batches are therefore bound by the bandwidth at which the
  weights stream (on a calibrated CPU: the GEMV rate of ``mlcost calibrate``).
* TPOT is the decode step at the mean context P + O/2; a request takes TTFT + O·TPOT; a replica emits
  B·O tokens per request time. Weight-only int8/int4 shrink the bytes read (int4 with group-wise fp16
  scales adds 1/64 byte per weight); compute runs in bf16/fp16.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mlcost.catalog.protocol import CatalogLike
from mlcost.catalog.schema import EfficiencyProfile
from mlcost.errors import SpecError
from mlcost.estimate.context import resolve_hardware
from mlcost.estimate.kernel import broadcast_all
from mlcost.estimate.memory import kv_cache_bytes
from mlcost.estimate.params import count_params, mlp_weights
from mlcost.estimate.result import Assumption, ErrorBand, ServeEstimate
from mlcost.estimate.timing import allreduce_time_s, link_bandwidth, matmul_efficiency
from mlcost.spec.cluster import Cluster
from mlcost.spec.job import BYTES_PER_ELEMENT, ServeJob
from mlcost.spec.model import ModelSpec
from mlcost.spec.validate import context_fits
from mlcost.units import J_PER_KWH, S_PER_H

#: Storage bytes per weight including quantisation scales (int4: fp16 scale per group of 128 → +1/64).
WEIGHT_BYTES: dict[str, float] = {**BYTES_PER_ELEMENT, "int4": 0.5 + 1.0 / 64.0, "int8": 1.0 + 1.0 / 1024.0}
#: Fixed latency of one small all-reduce (NCCL ring on NVLink, order of magnitude). Units: s.
ALLREDUCE_LATENCY_S = 10e-6
#: Fraction of device memory usable by weights + KV cache (the rest: activations, allocator, runtime).
USABLE_MEMORY_FRAC = 0.9


def _compute_peak(device: Any, weight_precision: str) -> tuple[float, str]:
    """Peak used for serving compute: fp8 weights run fp8 GEMMs where supported; weight-only int8/int4
    dequantise to bf16 (fp16 on devices without bf16)."""
    order = {"fp8": ("fp8", "bf16", "fp16"), "fp32": ("fp32",)}.get(
        weight_precision, ("bf16", "fp16", "fp32")
    )
    if weight_precision in ("bf16", "fp16"):
        order = (weight_precision, "fp16", "bf16", "fp32")
    for p in order:
        peak = device.peak_for(p)
        if peak is not None:
            return peak, p
    raise SpecError(f"{device.id} lists no usable peak for serving in {weight_precision}")


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
) -> dict[str, np.ndarray]:
    """Vectorised serving model (module docstring). Returns arrays keyed by metric."""
    counts = count_params(model)
    P = np.asarray(prompt_len, dtype=np.float64)
    n_out = np.asarray(output_len, dtype=np.float64)
    B = np.asarray(batch, dtype=np.float64)
    t = np.asarray(tp, dtype=np.float64)
    wb = np.asarray(weight_bytes, dtype=np.float64)
    peak = np.asarray(peak_flops_per_s, dtype=np.float64)
    bw = np.asarray(mem_bw_bytes_per_s, dtype=np.float64) * profile.mem_bw_eff
    L, a, d, h = model.n_layers, model.n_heads, model.dim_head, model.d_model
    matmul_active = 2.0 * (
        L * counts.matmul_per_layer_active + (model.vocab_size * h if model.has_lm_head else 0)
    )
    weights_dev = counts.total * wb / t

    # Weights read per decode step: MoE reads only the experts the batch touches.
    if model.is_moe:
        expert_w = mlp_weights(model, model.ff_expert)
        touched = model.n_experts * (1.0 - (1.0 - model.experts_top_k / model.n_experts) ** B)
        read_params = counts.total - L * (model.n_experts - touched) * expert_w
    else:
        read_params = np.full_like(B, float(counts.total))
    read_dev = read_params * wb / t

    bw_tp = link_bandwidth(
        t,
        1,
        devices_per_node,
        intra_bw_bytes_per_s,
        inter_bw_bytes_per_s,
        profile.intra_comm_eff,
        profile.inter_comm_eff,
    )
    # Prefill.
    tokens_prefill = B * P
    flops_prefill = tokens_prefill * (matmul_active + L * 4.0 * P * a * d) / t
    eff_prefill = matmul_efficiency(
        np.minimum(h / t, tokens_prefill), profile.matmul_eff_max, profile.matmul_half_dim
    )
    t_prefill_compute = flops_prefill / (peak * eff_prefill)
    comm_prefill = np.where(
        t > 1, 2.0 * L * (allreduce_time_s(2.0 * tokens_prefill * h, t, bw_tp) + ALLREDUCE_LATENCY_S), 0.0
    )
    ttft = np.maximum(t_prefill_compute, weights_dev / bw) + comm_prefill

    # Decode at the mean context.
    ctx = P + n_out / 2.0
    kv_dev_step = kv_cache_bytes(model, ctx, B, t, kv_bytes)
    flops_decode = B * (matmul_active + L * 4.0 * ctx * a * d) / t
    # A decode GEMM is [B × h] @ [h × n]: at small B it streams the weights (the memory term bounds it);
    # its compute runs at the efficiency of the weight matrix's dimension, not of the batch — the
    # square-GEMM curve at n = B would make batch-1 decode compute-bound at ~1% of peak on a CPU.
    eff_decode = matmul_efficiency(h / t + 0.0 * B, profile.matmul_eff_max, profile.matmul_half_dim)
    t_dec_compute = flops_decode / (peak * eff_decode)
    t_dec_memory = (read_dev + kv_dev_step) / bw
    comm_decode = np.where(
        t > 1, 2.0 * L * (allreduce_time_s(2.0 * B * h, t, bw_tp) + ALLREDUCE_LATENCY_S), 0.0
    )
    tpot = np.maximum(t_dec_compute, t_dec_memory) + comm_decode + profile.step_overhead_s

    latency = ttft + n_out * tpot
    tokens_per_s = B * n_out / latency
    kv_full = kv_cache_bytes(model, P + n_out, B, t, kv_bytes)
    overhead = np.asarray(profile.framework_overhead_bytes, dtype=np.float64)
    mem_total = weights_dev + kv_full + overhead
    usable = np.asarray(memory_bytes, dtype=np.float64) * USABLE_MEMORY_FRAC
    kv_per_seq = kv_cache_bytes(model, P + n_out, 1.0, t, kv_bytes)
    max_batch = np.floor(np.maximum(usable - weights_dev - overhead, 0.0) / kv_per_seq)
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
        "memory_bound": t_dec_memory >= t_dec_compute,
    }
    return broadcast_all(out)


def estimate_serve(
    model: ModelSpec,
    job: ServeJob,
    cluster: Cluster,
    *,
    catalog: CatalogLike | None = None,
    profile: EfficiencyProfile | None = None,
) -> ServeEstimate:
    """Predict serving ``model`` with ``job`` on one replica of ``job.tp`` devices of ``cluster.device``.

    ``cluster.count`` must be a multiple of TP; the result is per replica (costs are per output token and
    therefore independent of the number of replicas)."""
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
    hw = resolve_hardware(cluster, catalog, profile)
    prof = hw.profile
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
        Assumption("batching", "static", "the batch is prefilled together and decoded in lock-step"),
        Assumption("usable_memory_frac", USABLE_MEMORY_FRAC, "share of device memory for weights + KV cache"),
        Assumption("utilisation", 1.0, "cost per token assumes the replica is busy all the time"),
    ]
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
            "cluster": {
                "device": hw.device.id,
                "count": cluster.count,
                "provider": hw.provider,
                "region": hw.region,
                "pricing": hw.pricing,
            },
        },
    )
