"""Result types of the estimator. Every result carries its assumptions and an error band."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Assumption:
    """One input the estimate depends on that the user did not give explicitly, or a modelling choice.

    Attributes:
        name: what (e.g. ``price_usd_per_device_h``).
        value: the value used (number or text).
        source: where it came from (catalog row source and date, default, user).
    """

    name: str
    value: Any
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "source": self.source}


@dataclass(frozen=True)
class ErrorBand:
    """Relative error the estimator claims (±``relative``) and the resulting ranges.

    Attributes:
        relative: e.g. 0.15 for ±15%.
        source: why this band (validation it rests on).
        ranges: metric name → (low, high) in the metric's own unit.
    """

    relative: float
    source: str
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "relative": self.relative,
            "source": self.source,
            **{k: [lo, hi] for k, (lo, hi) in self.ranges.items()},
        }


@dataclass(frozen=True)
class MemoryBreakdown:
    """Memory per device. Units: bytes.

    ``total`` = weights + gradients + optimizer + activations + other − ``not_concurrent``: the part of
    those that is never resident at the same time as the rest (eager PyTorch allocates gradients as it
    frees activations; 0 where the framework keeps both, mlcost.estimate.memory)."""

    weights: float
    gradients: float
    optimizer: float
    activations: float
    other: float
    total: float
    capacity: float
    not_concurrent: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "weights": self.weights,
            "gradients": self.gradients,
            "optimizer": self.optimizer,
            "activations": self.activations,
            "other": self.other,
            "not_concurrent": self.not_concurrent,
            "total": self.total,
            "capacity": self.capacity,
        }


@dataclass(frozen=True)
class TrainEstimate:
    """Prediction for a training job.

    Attributes (units in names; FLOPs are whole-job per optimizer step):
        params / active_params: parameter counts.
        devices, tp, pp, dp, grad_accum_steps: the layout.
        model_flops_per_step: forward+backward FLOPs without recomputation.
        hardware_flops_per_step: including recomputation.
        step_time_s: one optimizer step.
        tokens_per_s: whole-job throughput.
        tflops_per_device: hardware TFLOP/s per device.
        mfu / hfu: model / hardware FLOP utilisation against the dense peak of the precision used.
        memory: per-device memory of the worst pipeline stage.
        fits: whether ``memory.total`` fits in device memory.
        fit_suggestions: when it does not fit, changes that make it fit (each verified with the estimator).
        steps: optimizer steps for ``tokens``.
        total_time_s, device_hours, energy_kwh, cost_usd, co2_kg: totals for the job (cost None without a price).
        time_breakdown_s: where a step's time goes.
        error_band: ± band and ranges of time and cost.
        assumptions: every default and catalog row used.
    """

    model: str
    params: int
    active_params: int
    devices: int
    tp: int
    pp: int
    dp: int
    grad_accum_steps: float
    model_flops_per_step: float
    hardware_flops_per_step: float
    step_time_s: float
    tokens_per_s: float
    tflops_per_device: float
    mfu: float
    hfu: float
    memory: MemoryBreakdown
    fits: bool
    fit_suggestions: list[str]
    steps: float
    total_time_s: float
    device_hours: float
    energy_kwh: float
    cost_usd: float | None
    co2_kg: float
    time_breakdown_s: dict[str, float]
    error_band: ErrorBand
    assumptions: list[Assumption]
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON contract of ``mlcost estimate train --json`` (docs/json.md)."""
        return {
            "kind": "train",
            "model": self.model,
            "params": self.params,
            "active_params": self.active_params,
            "devices": self.devices,
            "tp": self.tp,
            "pp": self.pp,
            "dp": self.dp,
            "grad_accum_steps": self.grad_accum_steps,
            "model_flops_per_step": self.model_flops_per_step,
            "hardware_flops_per_step": self.hardware_flops_per_step,
            "step_time_s": self.step_time_s,
            "tokens_per_s": self.tokens_per_s,
            "tflops_per_device": self.tflops_per_device,
            "mfu": self.mfu,
            "hfu": self.hfu,
            "memory_per_device_bytes": self.memory.to_dict(),
            "fits": self.fits,
            "fit_suggestions": list(self.fit_suggestions),
            "steps": self.steps,
            "total_time_s": self.total_time_s,
            "device_hours": self.device_hours,
            "energy_kwh": self.energy_kwh,
            "cost_usd": self.cost_usd,
            "co2_kg": self.co2_kg,
            "time_breakdown_s": dict(self.time_breakdown_s),
            "error_band": self.error_band.to_dict(),
            "assumptions": [a.to_dict() for a in self.assumptions],
            "config": self.config,
        }


@dataclass(frozen=True)
class ServeEstimate:
    """Prediction for serving one model replica.

    Attributes:
        params: parameter count.
        devices: devices per replica (= TP).
        ttft_s: time to first token for a batch prefilled together. Units: s.
        time_per_output_token_s: decode step time at the mean context. Units: s.
        tokens_per_s: output tokens per second of the replica (prefill time included). Units: tokens/s.
        request_latency_s: TTFT + output_len × time per output token. Units: s.
        kv_cache_bytes: KV cache per device for the batch at full context. Units: bytes.
        weights_bytes: weights per device. Units: bytes.
        memory: per-device memory (weights, KV cache, other).
        fits / max_batch: whether the batch fits; the largest batch that fits (0 if the weights alone do not).
        cost_per_million_output_tokens_usd: at full utilisation; None without a price.
        bound: ``memory`` or ``compute`` for the decode step.
        model_kind: which model answered: ``static-closed-form`` or ``continuous-batching-simulation``.
        engine: the serving engine row used (engines.csv), or None.
        simulation: the simulator's workload, engine settings and distributions (TTFT, ITL, E2E
            percentiles in s, throughput, KV occupancy, preemptions); None for the static model.
    """

    model: str
    params: int
    active_params: int
    devices: int
    ttft_s: float
    time_per_output_token_s: float
    tokens_per_s: float
    request_latency_s: float
    kv_cache_bytes: float
    weights_bytes: float
    memory: dict[str, float]
    fits: bool
    max_batch: int
    cost_per_hour_usd: float | None
    cost_per_million_output_tokens_usd: float | None
    energy_kwh_per_million_output_tokens: float
    co2_kg_per_million_output_tokens: float
    bound: str
    error_band: ErrorBand
    assumptions: list[Assumption]
    config: dict[str, Any]
    model_kind: str = "static-closed-form"
    engine: dict[str, Any] | None = None
    simulation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON contract of ``mlcost estimate serve --json`` (docs/json.md)."""
        return {
            "kind": "serve",
            "model_kind": self.model_kind,
            "engine": self.engine,
            "simulation": self.simulation,
            "model": self.model,
            "params": self.params,
            "active_params": self.active_params,
            "devices": self.devices,
            "ttft_s": self.ttft_s,
            "time_per_output_token_s": self.time_per_output_token_s,
            "tokens_per_s": self.tokens_per_s,
            "request_latency_s": self.request_latency_s,
            "kv_cache_bytes": self.kv_cache_bytes,
            "weights_bytes": self.weights_bytes,
            "memory_per_device_bytes": dict(self.memory),
            "fits": self.fits,
            "max_batch": self.max_batch,
            "cost_per_hour_usd": self.cost_per_hour_usd,
            "cost_per_million_output_tokens_usd": self.cost_per_million_output_tokens_usd,
            "energy_kwh_per_million_output_tokens": self.energy_kwh_per_million_output_tokens,
            "co2_kg_per_million_output_tokens": self.co2_kg_per_million_output_tokens,
            "bound": self.bound,
            "error_band": self.error_band.to_dict(),
            "assumptions": [a.to_dict() for a in self.assumptions],
            "config": self.config,
        }
