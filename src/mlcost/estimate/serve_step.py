"""The cost of one serving-engine iteration: one forward pass over a mix of prefill tokens and decode
sequences, on one replica of ``tp`` devices. Both serving models use it: the static closed form
(:func:`mlcost.estimate.serve.serve_kernel`) and the continuous-batching simulator
(:mod:`mlcost.estimate.serve_sim`). The formula lives in :func:`step_parts`, written once for floats (the
simulator's pure-Python fast path) and numpy arrays (the planner's candidate grids).

An iteration holds prefill chunks (``n_i`` new tokens each, after ``s_i`` tokens of the same sequence
already in the KV cache) and ``n_d`` decode sequences with contexts ``c_j``, each scoring ``q`` query
tokens (1; ``k + 1`` under speculative decoding). With T = Σn_i + q·n_d tokens and per-device figures
(``/tp``):

* **GEMMs**: FLOPs = T · 2·N_body + (prefill sequences + q·n_d) · 2·V·h (logits only for sampled
  positions); rate = peak · ``matmul_eff_max`` · g/(g + ``matmul_half_dim``) · engine scale, with g = h/tp,
  the model's GEMM width. The rate does not fall with the batch: a small batch is bound by reading the
  weights (the memory term), never by the training GEMM curve at M = batch.
* **Attention**: FLOPs = 4·a·d·L · pairs, pairs = Σ(n_i·s_i + n_i(n_i+1)/2) + q·Σc_j (causal), at
  ``attention_eff`` of peak.
* **Memory**: bytes = weights read once (MoE: the experts T tokens touch, E·(1 − (1 − k/E)^T) per layer) +
  KV read (Σs_i + Σc_j tokens) + KV written (T tokens), at ``decode_mem_bw_eff`` of the bandwidth. Where
  the profile carries a measured weight-stream curve (``weight_stream_rel_rows_<M>`` extras, written by
  ``mlcost calibrate`` on CPUs: :func:`weight_stream_curve`), the weights stream at that fraction of the
  one-row rate for T = M rows (linear interpolation; the last point beyond the grid): a CPU BLAS reads the
  weights two to three times slower at M = 2–3 rows than at one row or eight, so decode time is not
  monotone in the batch. Profiles without the curve (every accelerator row) stream at one rate.
* **Tensor parallelism**: 2 all-reduces per layer of T·h activations (2 bytes each) at the profile's
  link efficiency + the engine's ``collective_latency_s`` each.
* **Engine**: + ``iteration_overhead_s`` + ``per_seq_overhead_s`` · sequences in the batch.

time = max(GEMM + attention time, memory time) + collectives + engine overheads (a roofline per
iteration; see docs/serve.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mlcost.catalog.schema import Device, EfficiencyProfile, EngineProfile
from mlcost.errors import SpecError
from mlcost.estimate.memory import kv_cache_bytes
from mlcost.estimate.params import count_params, mlp_weights
from mlcost.estimate.timing import link_bandwidth
from mlcost.spec.job import BYTES_PER_ELEMENT
from mlcost.spec.model import ModelSpec

__all__ = [
    "ACTIVATION_BYTES",
    "DEFAULT_ENGINE_BY_KIND",
    "KV_BLOCK_TOKENS",
    "STREAM_EXTRA_PREFIX",
    "WEIGHT_BYTES",
    "IterationParts",
    "StepCoefficients",
    "bare_engine",
    "compute_peak",
    "default_engine",
    "iteration_time_s",
    "replica_coefficients",
    "step_coefficients",
    "step_parts",
    "step_time_s",
    "weight_stream_curve",
]

#: Bytes per activation element moved by the TP all-reduces (bf16/fp16 activations).
ACTIVATION_BYTES = 2.0
#: Storage bytes per weight including quantisation scales (int4: fp16 scale per group of 128 → +1/64).
WEIGHT_BYTES: dict[str, float] = {**BYTES_PER_ELEMENT, "int4": 0.5 + 1.0 / 64.0, "int8": 1.0 + 1.0 / 1024.0}
#: Tokens per paged KV-cache block by default (vLLM's default block size): the simulator's
#: ``EngineConfig.kv_block_size`` and the block whose full copies the static model's shared prefix holds once.
KV_BLOCK_TOKENS = 16
#: The engine ``mlcost estimate serve`` assumes when ``--engine`` is not given, per device kind.
DEFAULT_ENGINE_BY_KIND: dict[str, str] = {"gpu": "vllm", "tpu": "vllm", "cpu": "hf"}


#: Profile extras ``weight_stream_rel_rows_<M>``: the weight-streaming rate of a GEMM with M rows relative to
#: one row (:func:`mlcost.calibrate.microbench.bench_weight_stream_rows`).
STREAM_EXTRA_PREFIX = "weight_stream_rel_rows_"


def weight_stream_curve(profile: EfficiencyProfile) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The profile's measured weight-stream curve as (rows, rate relative to one row), sorted by rows;
    empty tuples when the profile has none. Raises SpecError on a malformed entry (a profile file edited by
    hand)."""
    pts: list[tuple[int, float]] = []
    for key, value in profile.extra.items():
        if not key.startswith(STREAM_EXTRA_PREFIX):
            continue
        tail = key[len(STREAM_EXTRA_PREFIX) :]
        if not tail.isdigit() or int(tail) < 1 or not (float(value) > 0.0 and np.isfinite(float(value))):
            raise SpecError(
                f"profile {profile.device}: extra {key} = {value} is not a positive rate at a row count >= 1",
                hint=f"rerun mlcost calibrate, or remove the {STREAM_EXTRA_PREFIX}* entries",
            )
        pts.append((int(tail), float(value)))
    pts.sort()
    return tuple(r for r, _ in pts), tuple(v for _, v in pts)


def _stream_table(profile: EfficiencyProfile) -> tuple[float, ...]:
    """Relative weight-stream rate for 0, 1, 2, … rows up to the curve's last point (index = rows;
    interpolated between measured points, 1.0 at 0 and at 1 row); () without a curve."""
    rows, rel = weight_stream_curve(profile)
    if not rows:
        return ()
    xs = np.arange(rows[-1] + 1, dtype=np.float64)
    table = np.interp(xs, (0.0, *rows), (rel[0], *rel))
    return tuple(float(v) for v in table)


def default_engine(device: Device) -> str:
    """The default serving engine for a device: vLLM on accelerators, transformers (``hf``) on CPUs."""
    return DEFAULT_ENGINE_BY_KIND.get(device.kind, "vllm")


def bare_engine(profile: EfficiencyProfile) -> EngineProfile:
    """An engine with no overheads of its own (zero fixed costs, unscaled GEMMs, the profile's memory
    efficiency): the hardware roofline alone, for callers that name no engine."""
    return EngineProfile(
        engine="none",
        device=profile.device,
        iteration_overhead_s=0.0,
        per_seq_overhead_s=0.0,
        collective_latency_s=0.0,
        matmul_eff_scale=1.0,
        fp8_matmul_eff_scale=1.0,
        decode_mem_bw_eff=profile.mem_bw_eff,
        source="no engine: hardware roofline only",
        date=profile.date,
    )


@dataclass(frozen=True)
class StepCoefficients:
    """Per-device constants of one replica's iteration cost. Each field is a float, or a numpy array when
    built for a grid of candidates (:func:`step_coefficients` broadcasts its inputs).

    Attributes:
        body_flops_per_token: GEMM FLOPs of the transformer blocks per token. Units: FLOP.
        head_flops_per_sample: vocabulary-projection FLOPs per sampled position. Units: FLOP.
        attn_flops_per_pair: attention FLOPs per (query, key) pair over all layers. Units: FLOP.
        gemm_flops_per_s: GEMM rate. Units: FLOP/s.
        attn_flops_per_s: attention rate. Units: FLOP/s.
        dense_weight_bytes: weights read every iteration (all but the routed experts). Units: bytes.
        expert_bytes_per_layer_expert: one routed expert of one layer (0 for dense models). Units: bytes.
        n_layers: transformer blocks.
        n_experts / experts_top_k: routed experts per layer and experts per token (0 / 0 for dense models).
        kv_bytes_per_token: KV cache of one token. Units: bytes.
        mem_bytes_per_s: memory bandwidth reached (``decode_mem_bw_eff`` × device bandwidth). Units: bytes/s.
        allreduce_s_per_token: all-reduce transfer time per token of one iteration (all 2·L all-reduces,
            0 at TP 1). Units: s.
        collective_s: fixed latency of all 2·L all-reduces of one iteration (0 at TP 1). Units: s.
        iteration_overhead_s / per_seq_overhead_s: the engine's fixed costs. Units: s.
        weights_bytes: all weights stored per device. Units: bytes.
        first_token_lag_steps: decode iterations between the pass that made a token and the client seeing
            it (the engine's ``first_token_lag_steps``). Units: iterations.
        stream_rel_by_rows: the weights' streaming rate at M rows relative to one row, index M (the
            profile's measured curve, :func:`weight_stream_curve`); () streams at one rate.
    """

    body_flops_per_token: Any
    head_flops_per_sample: Any
    attn_flops_per_pair: Any
    gemm_flops_per_s: Any
    attn_flops_per_s: Any
    dense_weight_bytes: Any
    expert_bytes_per_layer_expert: Any
    n_layers: float
    n_experts: float
    experts_top_k: float
    kv_bytes_per_token: Any
    mem_bytes_per_s: Any
    allreduce_s_per_token: Any
    collective_s: Any
    iteration_overhead_s: Any
    per_seq_overhead_s: Any
    weights_bytes: Any
    first_token_lag_steps: float = 0.0
    stream_rel_by_rows: tuple[float, ...] = ()


def step_coefficients(
    model: ModelSpec,
    *,
    tp: ArrayLike,
    weight_bytes: ArrayLike,
    kv_bytes: ArrayLike,
    peak_flops_per_s: ArrayLike,
    mem_bw_bytes_per_s: ArrayLike,
    devices_per_node: ArrayLike,
    intra_bw_bytes_per_s: ArrayLike,
    inter_bw_bytes_per_s: ArrayLike,
    profile: EfficiencyProfile,
    engine: EngineProfile,
    fp8_compute: ArrayLike = False,
    scalar: bool = False,
) -> StepCoefficients:
    """The constants of :func:`step_parts` for ``model`` on one replica (module docstring).

    ``weight_bytes`` is the storage per weight including quantisation scales
    (:data:`mlcost.estimate.serve.WEIGHT_BYTES`), ``kv_bytes`` per KV element; ``fp8_compute`` says the GEMMs
    run in fp8 (``fp8_matmul_eff_scale`` applies instead of ``matmul_eff_scale``). ``scalar=True`` returns
    plain floats (the simulator's fast path); otherwise numpy arrays broadcast over the inputs."""
    counts = count_params(model)
    t = np.asarray(tp, dtype=np.float64)
    wb = np.asarray(weight_bytes, dtype=np.float64)
    L, a, d, h = model.n_layers, model.n_heads, model.dim_head, model.d_model
    head = float(model.vocab_size * h if model.has_lm_head else 0)
    body = 2.0 * L * counts.matmul_per_layer_active / t
    g = h / t
    scale = np.where(
        np.asarray(fp8_compute, dtype=bool), engine.fp8_matmul_eff_scale, engine.matmul_eff_scale
    )
    gemm_rate = (
        np.asarray(peak_flops_per_s, dtype=np.float64)
        * profile.matmul_eff_max
        * scale
        * g
        / (g + profile.matmul_half_dim)
    )
    attn_rate = np.asarray(peak_flops_per_s, dtype=np.float64) * profile.attention_eff
    if model.is_moe:
        expert_w = float(mlp_weights(model, model.ff_expert))
        expert_bytes = expert_w * wb / t
        dense_bytes = (counts.total - L * model.n_experts * expert_w) * wb / t
        n_exp, top_k = float(model.n_experts), float(model.experts_top_k)
    else:
        expert_bytes = 0.0 * t
        dense_bytes = counts.total * wb / t
        n_exp, top_k = 0.0, 0.0
    kv_tok = kv_cache_bytes(model, 1.0, 1.0, t, kv_bytes)
    bw = np.asarray(mem_bw_bytes_per_s, dtype=np.float64) * engine.decode_mem_bw_eff
    bw_tp = link_bandwidth(
        t,
        1,
        devices_per_node,
        intra_bw_bytes_per_s,
        inter_bw_bytes_per_s,
        profile.intra_comm_eff,
        profile.inter_comm_eff,
    )
    multi = t > 1
    n_ar = 2.0 * L
    ar_per_token = np.where(multi, n_ar * 2.0 * (t - 1.0) / t * ACTIVATION_BYTES * h / bw_tp, 0.0)
    coll = np.where(multi, n_ar * engine.collective_latency_s, 0.0)
    vals: dict[str, Any] = {
        "body_flops_per_token": body,
        "head_flops_per_sample": head / t,
        "attn_flops_per_pair": 4.0 * (a / t) * d * L + 0.0 * t,
        "gemm_flops_per_s": gemm_rate,
        "attn_flops_per_s": attn_rate,
        "dense_weight_bytes": dense_bytes,
        "expert_bytes_per_layer_expert": expert_bytes,
        "kv_bytes_per_token": kv_tok,
        "mem_bytes_per_s": bw,
        "allreduce_s_per_token": ar_per_token,
        "collective_s": coll,
        "iteration_overhead_s": engine.iteration_overhead_s + 0.0 * t,
        "per_seq_overhead_s": engine.per_seq_overhead_s + 0.0 * t,
        "weights_bytes": counts.total * wb / t,
    }
    if scalar:
        for k, v in vals.items():
            arr = np.asarray(v, dtype=np.float64)
            if arr.size != 1:
                raise SpecError("scalar step coefficients need scalar inputs (one replica configuration)")
            vals[k] = float(arr.reshape(()))
    return StepCoefficients(
        **vals,
        n_layers=float(L),
        n_experts=n_exp,
        experts_top_k=top_k,
        first_token_lag_steps=float(engine.first_token_lag_steps),
        stream_rel_by_rows=_stream_table(profile),
    )


@dataclass(frozen=True)
class IterationParts:
    """One iteration's time split (floats or arrays). Units: s.

    Attributes:
        compute_s: GEMM + attention time at their rates.
        memory_s: weights + KV bytes at the reached bandwidth.
        fixed_s: collectives + engine overheads (added after the roofline max).
    """

    compute_s: Any
    memory_s: Any
    fixed_s: Any

    @property
    def time_s(self) -> Any:
        return _maximum(self.compute_s, self.memory_s) + self.fixed_s


def _maximum(x: Any, y: Any) -> Any:
    if isinstance(x, float) and isinstance(y, float):
        return x if x >= y else y
    return np.maximum(x, y)


def step_parts(
    c: StepCoefficients,
    *,
    prefill_tokens: Any = 0.0,
    prefill_seqs: Any = 0.0,
    prefill_pairs: Any = 0.0,
    prefill_ctx_tokens: Any = 0.0,
    decode_seqs: Any = 0.0,
    decode_ctx_tokens: Any = 0.0,
    decode_query_tokens: Any = 1.0,
) -> IterationParts:
    """Compute, memory and fixed time of one iteration (module docstring) from its aggregates:

    ``prefill_tokens`` new prompt tokens in ``prefill_seqs`` chunks, ``prefill_pairs`` causal attention pairs
    of those chunks (Σ n·s + n(n+1)/2), ``prefill_ctx_tokens`` tokens already cached before the chunks (Σ s);
    ``decode_seqs`` decode sequences whose contexts sum to ``decode_ctx_tokens``, each scoring
    ``decode_query_tokens`` tokens (speculative decoding: draft length + 1). Floats in, floats out (no
    numpy on the fast path); arrays broadcast."""
    dq = decode_seqs * decode_query_tokens
    tokens = prefill_tokens + dq
    samples = prefill_seqs + dq
    flops_gemm = tokens * c.body_flops_per_token + samples * c.head_flops_per_sample
    pairs = prefill_pairs + decode_query_tokens * decode_ctx_tokens
    compute = flops_gemm / c.gemm_flops_per_s + pairs * c.attn_flops_per_pair / c.attn_flops_per_s
    if c.n_experts:
        touched = c.n_experts * (1.0 - (1.0 - c.experts_top_k / c.n_experts) ** tokens)
        weights = c.dense_weight_bytes + c.n_layers * touched * c.expert_bytes_per_layer_expert
    else:
        weights = c.dense_weight_bytes
    table = c.stream_rel_by_rows
    if table:
        if isinstance(tokens, float | int):
            weights = weights / table[min(int(tokens), len(table) - 1)]
        else:
            weights = weights / np.interp(tokens, np.arange(len(table), dtype=np.float64), table)
    kv = (prefill_ctx_tokens + decode_ctx_tokens + tokens) * c.kv_bytes_per_token
    memory = (weights + kv) / c.mem_bytes_per_s
    fixed = (
        tokens * c.allreduce_s_per_token
        + c.collective_s
        + c.iteration_overhead_s
        + (prefill_seqs + decode_seqs) * c.per_seq_overhead_s
    )
    return IterationParts(compute_s=compute, memory_s=memory, fixed_s=fixed)


def step_time_s(c: StepCoefficients, **aggregates: Any) -> Any:
    """Duration of one iteration (:func:`step_parts`). Units: s."""
    return step_parts(c, **aggregates).time_s


def iteration_time_s(
    c: StepCoefficients,
    *,
    prefill: list[tuple[int, int]] | None = None,
    decode_ctx: ArrayLike | None = None,
    decode_query_tokens: int = 1,
) -> float:
    """Duration of one iteration given its requests one by one: ``prefill`` as ``(new tokens, tokens
    already cached)`` per chunk, ``decode_ctx`` the context length of each decode sequence. Units: s."""
    pf = prefill or []
    for n, s in pf:
        if n < 1 or s < 0 or int(n) != n or int(s) != s:
            raise SpecError(f"a prefill chunk needs >= 1 new token and >= 0 cached tokens, got ({n}, {s})")
    dc = np.asarray(decode_ctx if decode_ctx is not None else [], dtype=np.float64).ravel()
    if (dc < 0).any() or not np.isfinite(dc).all():
        raise SpecError("decode context lengths must be finite and >= 0")
    if not pf and dc.size == 0:
        return 0.0
    return float(
        step_time_s(
            c,
            prefill_tokens=float(sum(n for n, _ in pf)),
            prefill_seqs=float(len(pf)),
            prefill_pairs=float(sum(n * s + n * (n + 1) / 2.0 for n, s in pf)),
            prefill_ctx_tokens=float(sum(s for _, s in pf)),
            decode_seqs=float(dc.size),
            decode_ctx_tokens=float(dc.sum()),
            decode_query_tokens=float(decode_query_tokens),
        )
    )


def compute_peak(device: Device, weight_precision: str) -> tuple[float, str]:
    """Peak used for serving GEMMs: fp8 weights run fp8 GEMMs where supported; weight-only int8/int4
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


def replica_coefficients(
    model: ModelSpec,
    device: Device,
    profile: EfficiencyProfile,
    engine: EngineProfile,
    *,
    tp: int,
    weight_precision: str,
    kv_precision: str,
    devices_per_node: int | None = None,
    intra_bw_bytes_per_s: float | None = None,
    inter_bw_bytes_per_s: float | None = None,
) -> StepCoefficients:
    """Scalar :class:`StepCoefficients` of one replica of ``tp`` ``device``s (the simulator's input)."""
    peak, compute = compute_peak(device, weight_precision)
    return step_coefficients(
        model,
        tp=tp,
        weight_bytes=WEIGHT_BYTES[weight_precision],
        kv_bytes=BYTES_PER_ELEMENT[kv_precision],
        peak_flops_per_s=peak,
        mem_bw_bytes_per_s=device.mem_bw_bytes_per_s,
        devices_per_node=devices_per_node or device.devices_per_node,
        intra_bw_bytes_per_s=intra_bw_bytes_per_s or device.intra_node_bw_bytes_per_s,
        inter_bw_bytes_per_s=inter_bw_bytes_per_s or device.inter_node_bw_bytes_per_s,
        profile=profile,
        engine=engine,
        fp8_compute=compute == "fp8",
        scalar=True,
    )
