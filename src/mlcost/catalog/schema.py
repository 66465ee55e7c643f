"""Typed rows of the catalogs. Data files use human units named in their column headers
(``peak_bf16_tflops``, ``memory_gb``, ``mem_bw_tb_per_s``, ...); the loader converts them to the SI
fields below. Every row carries ``source`` and ``date`` (ISO ``YYYY-MM-DD``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mlcost.spec.model import ModelSpec

#: Precisions a device may list a dense peak for. ``int8`` counts integer ops as FLOPs.
PEAK_PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8")
#: The devices.csv column holding each precision's dense peak (TFLOP/s; TOP/s for int8).
PEAK_COLUMNS: dict[str, str] = {
    "fp32": "peak_fp32_tflops",
    "tf32": "peak_tf32_tflops",
    "bf16": "peak_bf16_tflops",
    "fp16": "peak_fp16_tflops",
    "fp8": "peak_fp8_tflops",
    "int8": "peak_int8_tops",
}


@dataclass(frozen=True, kw_only=True)
class Device:
    """One accelerator (or CPU) model.

    Attributes:
        id: catalog id, e.g. ``a100-80gb``.
        name: display name.
        vendor: nvidia, amd, google, intel, ...
        kind: ``gpu``, ``tpu`` or ``cpu``.
        peak_flops_per_s: dense (non-sparse) peak per precision. Units: FLOP/s. A missing key means the
            device has no units for that precision.
        memory_bytes: device memory. Units: bytes.
        mem_bw_bytes_per_s: memory bandwidth. Units: bytes/s.
        tdp_w: board power (TDP). Units: W.
        idle_w: idle power, or None when unknown. Units: W.
        devices_per_node: devices in a typical node (e.g. 8 in a DGX).
        intra_node_bw_bytes_per_s: per-device, one-direction bandwidth inside a node. Units: bytes/s.
        inter_node_bw_bytes_per_s: per-device, one-direction bandwidth between nodes. Units: bytes/s.
        source / date: provenance of the row.
    """

    id: str
    name: str
    vendor: str
    kind: str
    peak_flops_per_s: dict[str, float]
    memory_bytes: float
    mem_bw_bytes_per_s: float
    tdp_w: float
    idle_w: float | None
    devices_per_node: int
    intra_node_bw_bytes_per_s: float
    inter_node_bw_bytes_per_s: float
    source: str
    date: str

    def peak_for(self, precision: str) -> float | None:
        """Dense peak FLOP/s for a compute precision, or None if the device has no units for it.

        ``tf32`` falls back to the fp32 peak on devices without TF32 units (the framework runs plain fp32).
        """
        if precision in self.peak_flops_per_s:
            return self.peak_flops_per_s[precision]
        if precision == "tf32":
            return self.peak_flops_per_s.get("fp32")
        return None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class PriceRow:
    """Price of one device-hour at one provider, region and pricing kind.

    Attributes:
        device: catalog device id.
        provider: aws, gcp, azure, lambda, runpod, coreweave, ...
        region: provider region, or ``*`` for a provider-wide price.
        pricing: ``on-demand`` or ``spot``.
        usd_per_device_h: Units: USD per device-hour.
        instance: instance type the price was derived from (e.g. ``p5.48xlarge/8``).
        source / date: provenance.
    """

    device: str
    provider: str
    region: str
    pricing: str
    usd_per_device_h: float
    instance: str
    source: str
    date: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def max_devices(self) -> float:
        """Most devices this row can supply (:func:`offer_devices`; inf: no limit in the catalog)."""
        return offer_devices(self.provider, self.instance)


#: Providers whose price rows are single marketplace offers: the SkyPilot Vast catalog lists one host's offer
#: per row ("one offer per row at catalog-build time", docs/reference/prices_snapshot.md), so such a row can
#: supply at most that offer's devices. List-price providers have no limit in the catalog (availability is not
#: modelled).
SINGLE_OFFER_PROVIDERS: tuple[str, ...] = ("vast",)


def offer_devices(provider: str | None, instance: str) -> float:
    """Most devices one price row can supply: the offer's devices for a single-offer provider (the ``/n`` of
    the imported instance label), else unlimited."""
    if provider in SINGLE_OFFER_PROVIDERS:
        tail = instance.rsplit("/", 1)[-1]
        try:
            return float(tail)
        except ValueError:
            return float("inf")
    return float("inf")


@dataclass(frozen=True, kw_only=True)
class CarbonRow:
    """Grid carbon intensity of a country or a cloud region.

    Attributes:
        zone: ISO-3166 alpha-3 country code (``USA``) or a cloud region (``us-east-1``), or ``world``.
        provider: cloud provider for a region row; empty for countries and ``world``.
        kg_co2_per_kwh: Units: kg CO2e per kWh.
        source / date: provenance.
    """

    zone: str
    provider: str
    kg_co2_per_kwh: float
    source: str
    date: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class ProviderRow:
    """Facts about a provider's data centres.

    Attributes:
        provider: provider id; ``default`` for the fallback.
        pue: power usage effectiveness (facility / IT energy).
        source / date: provenance.
    """

    provider: str
    pue: float
    source: str
    date: str


@dataclass(frozen=True, kw_only=True)
class EfficiencyProfile:
    """How close a device gets to its peaks in practice: the estimator's tunable parameters.

    Compute time of a GEMM whose smallest model dimension (hidden/TP, FFN/TP) is ``d`` is
    ``flops / (peak · matmul_eff_max · d / (d + matmul_half_dim))``.

    Attributes:
        device: device id, or ``default-gpu`` / ``default-tpu`` / ``default-cpu`` fallbacks.
        matmul_eff_max: fraction of dense peak large GEMMs reach.
        matmul_half_dim: the GEMM dimension at which half of ``matmul_eff_max`` is reached. Units: elements.
        attention_eff: fraction of dense peak for attention score/value FLOPs (relative to peak).
        mem_bw_eff: fraction of memory bandwidth reached by element-wise kernels and the optimizer.
        intra_comm_eff: fraction of intra-node link bandwidth reached by collectives (bus bandwidth).
        inter_comm_eff: fraction of inter-node bandwidth reached by collectives.
        dp_overlap: fraction of data-parallel gradient communication hidden behind backward compute.
        power_frac: average board power as a fraction of TDP while training.
        framework_overhead_bytes: memory the framework takes beyond tensors (CUDA context, allocator
            fragmentation, communication buffers). Units: bytes.
        step_overhead_s: fixed time per optimizer step (launches, Python, data loading). Units: s.
        layer_overhead_s: fixed time per layer per micro-batch forward+backward (kernel launches). Units: s.
        activation_overhead_frac: memory beyond tensors that grows with the stored activations, as a
            fraction of them: allocator pages the activations' churn leaves behind (a CPU process's
            peak RSS keeps freed heap pages) and backward's transient activation gradients. 0 where
            ``framework_overhead_bytes`` covers it (the GPU profiles). Units: fraction.
        error_band_rel: relative error (±) the estimator claims with this profile.
        source / date: provenance (e.g. 'fitted to Narayanan et al. 2021 Table 1', or 'mlcost calibrate').
    """

    device: str
    matmul_eff_max: float
    matmul_half_dim: float
    attention_eff: float
    mem_bw_eff: float
    intra_comm_eff: float
    inter_comm_eff: float
    dp_overlap: float
    power_frac: float
    framework_overhead_bytes: float
    step_overhead_s: float = 0.0
    layer_overhead_s: float = 0.0
    activation_overhead_frac: float = 0.0
    error_band_rel: float = 0.3
    source: str = ""
    date: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> EfficiencyProfile:
        return dataclasses.replace(self, **changes)


#: Serving engine families ``engines.csv`` describes (``hf``: transformers' own continuous batching).
ENGINES: tuple[str, ...] = ("vllm", "sglang", "trtllm", "hf")
#: Device classes an ``engines.csv`` row may name instead of a device id (the fallback rows).
ENGINE_DEVICE_CLASSES: tuple[str, ...] = ("gpu", "tpu", "cpu")


@dataclass(frozen=True, kw_only=True)
class EngineProfile:
    """What one serving engine adds to the hardware roofline on one device (or device class): one row of
    ``engines.csv``. The serving estimators (:mod:`mlcost.estimate.serve_step`) read it.

    Attributes:
        engine: engine family, one of :data:`ENGINES`.
        device: catalog device id, or a device class (``gpu``/``tpu``/``cpu``) for the fallback rows.
        iteration_overhead_s: fixed cost of one engine iteration (one forward pass of the running batch):
            kernel launches, scheduling, sampling, detokenisation. Units: s.
        per_seq_overhead_s: extra cost per sequence in the batch per iteration. Units: s.
        collective_latency_s: fixed latency of one tensor-parallel all-reduce (two per layer). Units: s.
        matmul_eff_scale: multiplies the device profile's GEMM efficiency (``matmul_eff_max``) for this
            engine's bf16/fp16 GEMMs. Units: fraction.
        fp8_matmul_eff_scale: the same for fp8 GEMMs (fp8 weights on fp8 devices). Units: fraction.
        decode_mem_bw_eff: fraction of memory bandwidth reached streaming weights and the KV cache in an
            iteration (replaces the profile's ``mem_bw_eff`` for serving). Units: fraction.
        source / date: provenance of the row.
        fitted_on: the published figures or runs the row was fitted on, or empty for a default.
    """

    engine: str
    device: str
    iteration_overhead_s: float
    per_seq_overhead_s: float
    collective_latency_s: float
    matmul_eff_scale: float
    fp8_matmul_eff_scale: float
    decode_mem_bw_eff: float
    source: str
    date: str
    fitted_on: str = ""

    @property
    def fitted(self) -> bool:
        """True when the row was fitted to measurements (``fitted_on`` is not empty)."""
        return bool(self.fitted_on.strip())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> EngineProfile:
        return dataclasses.replace(self, **changes)


#: CPU instruction-set levels host matching knows, from least to most capable (see :mod:`mlcost.catalog.host`).
ISA_LEVELS: tuple[str, ...] = ("baseline", "avx2", "avx512", "avx512_bf16", "amx")


@dataclass(frozen=True, kw_only=True)
class CpuRow:
    """Which hosts a ``cpu`` device row describes (``cpus.csv``), for host matching.

    Attributes:
        device: catalog device id (a ``kind = cpu`` row of devices.csv).
        vendor: ``amd``, ``intel``, ``arm`` ... as :func:`mlcost.catalog.host.parse_cpuinfo` names it, or
            empty for any vendor (the generic rows).
        isa: the row's instruction-set level, one of :data:`ISA_LEVELS`.
        model_words: words that must all appear in the host's CPU model name (lower case); empty = any.
        logical_cpus: the number of logical CPUs the row's figures are for, or None for any.
        per_logical_cpu: the row's peaks, memory, bandwidth and power are per logical CPU and are scaled
            to the host (the generic rows, whose peaks come from the ISA, not from a measurement).
        source / date: provenance.
    """

    device: str
    vendor: str
    isa: str
    model_words: str
    logical_cpus: int | None
    per_logical_cpu: bool
    source: str
    date: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class ModelRow:
    """A model preset with its provenance.

    Attributes:
        spec: the model shape.
        source: where the shape was taken from (usually the Hugging Face config URL).
        date: ISO date the row was entered.
    """

    spec: ModelSpec
    source: str
    date: str
