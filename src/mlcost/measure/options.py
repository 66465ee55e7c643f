"""Typed options of a measured run: what ``mlcost measure train|serve``, calibrate's runs and the Python
API pass to :func:`~mlcost.measure.train.run_training` and :func:`~mlcost.measure.serve.run_serving`.

Frozen, keyword-only dataclasses (no torch). :mod:`mlcost.measure.validate` checks them before torch is
imported; every field has the CLI flag that sets it in :data:`FLAGS`, so error messages name the flag.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from mlcost.catalog import host as catalog_host
from mlcost.catalog.host import HostCpu
from mlcost.catalog.loader import builtin_catalog
from mlcost.catalog.protocol import CatalogLike
from mlcost.errors import SpecError
from mlcost.spec import TrainJob

#: Metrics are written to the ledger (a heartbeat) every this many steps, and at the end.
CHECKPOINT_EVERY_STEPS = 5

#: The runner's model flavour, in the estimator's terms: eager ``transformers`` modules with SDPA
#: attention (torch's fused attention kernel on CPU and CUDA, which never stores the s×s scores) and
#: unfused element-wise ops. The one place this is said; the predicted block and calibrate use it.
RUNNER_ATTN_IMPLEMENTATION = "sdpa"
#: attention kernels ``transformers`` accepts (``flash_attention_2`` needs CUDA and flash-attn).
ATTN_IMPLEMENTATIONS: tuple[str, ...] = (RUNNER_ATTN_IMPLEMENTATION, "eager", "flash_attention_2")
RUNNER_FLASH_ATTENTION = True
RUNNER_FUSED_ELEMENTWISE = False

PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16")
SERVE_PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
#: Serving engines ``measure serve --engine`` runs: the static loop, or transformers' continuous batching.
SERVE_ENGINES: tuple[str, ...] = ("static", "hf")
RECOMPUTE: tuple[str, ...] = ("none", "selective", "full")


@dataclass(frozen=True, kw_only=True)
class TrainShape:
    """The shape of a measured training step (a :class:`~mlcost.spec.TrainJob` converts to it).

    Attributes:
        micro_batch: sequences per forward/backward on one rank.
        global_batch: sequences per optimizer step over all ranks; None = micro_batch × world size
            (× the ``grad-accum=N`` strategy).
        seq_len: tokens per sequence.
        precision: compute precision (``fp32``, ``tf32``, ``bf16``, ``fp16``); a strategy lever overrides it.
        recompute: ``none``, ``selective`` or ``full`` (both turn activation checkpointing on).
    """

    micro_batch: int = 4
    global_batch: int | None = None
    seq_len: int = 128
    precision: str = "fp32"
    recompute: str = "none"

    @classmethod
    def from_job(cls, job: TrainJob | TrainShape) -> TrainShape:
        if isinstance(job, TrainShape):
            return job
        return cls(
            micro_batch=job.micro_batch,
            global_batch=job.global_batch,
            seq_len=job.seq_len,
            precision=job.precision,
            recompute=job.recompute,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class ServeShape:
    """A serving measurement: ``batch`` prompts of ``prompt_len`` tokens, ``output_len`` new tokens each.

    Attributes:
        prompt_len / output_len: tokens per request.
        batch: sequences decoded together.
        precision: ``fp32``, ``bf16`` or ``fp16`` weights and compute.
    """

    prompt_len: int = 64
    output_len: int = 32
    batch: int = 1
    precision: str = "fp32"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class CostOptions:
    """Inputs of ``cost_usd`` and ``co2_kg``; None = the catalog's value (resolved by
    :func:`mlcost.estimate.context.resolve_hardware`, labelled).

    Attributes:
        price_usd_per_device_h: Units: USD per device-hour.
        pue: facility energy / IT energy (>= 1).
        carbon_kg_per_kwh: Units: kg CO2e per kWh.
        region: carbon zone of the grid (catalog carbon table), e.g. ``FRA`` or ``us-east-1``.
    """

    price_usd_per_device_h: float | None = None
    pue: float | None = None
    carbon_kg_per_kwh: float | None = None
    region: str | None = None


@dataclass(frozen=True)
class RunFacts:
    """The facts a measured run is given, never fetches: the catalog it resolves devices, prices, PUE and
    carbon in, and this host's calibration. The application edge builds it (``mlcost measure`` passes
    ``RunFacts(catalog=mlcost.context.default_catalog(), calibration=mlcost.context.local_calibration())``);
    None in the options means :meth:`builtin`: the package data only, no calibration.

    Attributes:
        catalog: the catalog (:class:`~mlcost.catalog.CatalogLike`).
        calibration: this host's calibration (a :class:`mlcost.calibrate.profile.Calibration`: ``.device``
            is the calibrated ``local`` row, ``.profile`` its fitted efficiency profile, ``.source`` its
            label, ``.provenance["host_cpu"]`` the host it was measured on), or None. It is used for CPU
            runs on the host it was measured on; on another host the catalog row is used.
        host: the host's CPU for matching catalog CPU rows; None = this machine
            (:func:`mlcost.catalog.host.detect_host`). Tests pass ``/proc/cpuinfo`` fixtures here.
    """

    catalog: CatalogLike
    calibration: Any | None = None
    host: HostCpu | None = None

    @classmethod
    def builtin(cls) -> RunFacts:
        """The package catalog alone, no calibration: what a run uses when it is given no facts."""
        return cls(builtin_catalog(), None)

    def this_host(self) -> HostCpu:
        """``host``, else this machine (looked up on :mod:`mlcost.catalog.host` at call time)."""
        return self.host if self.host is not None else catalog_host.detect_host()


def facts_or_builtin(facts: RunFacts | None) -> RunFacts:
    """``facts``, or :meth:`RunFacts.builtin` when None."""
    return facts if facts is not None else RunFacts.builtin()


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """What every measured run shares.

    Attributes:
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``local`` (CUDA if present, else CPU).
        warmup: steps (requests) run first and excluded from all timings.
        seed: seed of weights and synthetic data.
        model_name: label of the model in the ledger (default: the spec's name or the module's class).
        attn_implementation: ``sdpa`` (fused, default) or ``eager`` attention.
        cost: price, PUE, carbon.
        checkpoint_every: write partial metrics (a heartbeat) every this many steps.
        facts: the catalog and calibration the run resolves its device, MFU peak, price, PUE and carbon
            in (:class:`RunFacts`); None = the package catalog and no calibration.
    """

    device: str = "cpu"
    warmup: int = 2
    seed: int = 0
    model_name: str | None = None
    attn_implementation: str = RUNNER_ATTN_IMPLEMENTATION
    cost: CostOptions = field(default_factory=CostOptions)
    checkpoint_every: int = CHECKPOINT_EVERY_STEPS
    facts: RunFacts | None = None


@dataclass(frozen=True, kw_only=True)
class TrainOptions(RunOptions):
    """A measured training run.

    Attributes:
        shape: the step shape.
        strategy: ``baseline`` or levers joined with ``+`` (:mod:`mlcost.measure.strategies`).
        steps: measured optimizer steps (after ``warmup``).
        dry_run: replay the estimator's predicted step time through the same loop; runs no model.
        data: a text file (byte-level tokens), or None for synthetic random tokens.
        lr: AdamW learning rate.
        check_memory: refuse a model whose estimated footprint exceeds free memory, before allocating.
        count_flops: count one micro-batch's FLOPs with ``FlopCounterMode`` (for achieved FLOP/s, MFU).
    """

    shape: TrainShape = field(default_factory=TrainShape)
    strategy: str = "baseline"
    steps: int = 10
    dry_run: bool = False
    data: str | None = None
    lr: float = 1e-4
    check_memory: bool = True
    count_flops: bool = True

    @classmethod
    def of(cls, job: TrainJob | TrainShape | None = None, **kwargs: Any) -> TrainOptions:
        """Options from a job (or shape) and keyword overrides (``data`` may be a path)."""
        if "data" in kwargs and kwargs["data"] is not None:
            kwargs["data"] = os.fspath(kwargs["data"])
        shape = TrainShape.from_job(job) if job is not None else TrainShape()
        return cls(shape=shape, **kwargs)


@dataclass(frozen=True, kw_only=True)
class ServeOptions(RunOptions):
    """A measured serving run.

    Attributes:
        shape: prompt and output lengths, batch, precision.
        requests: measured requests (after ``warmup``; each request is one step of the loop).
        engine: ``static`` (``batch`` prompts prefilled together, then decoded in lock-step, one request
            after another) or ``hf`` (transformers' continuous batching under an open-loop Poisson load at
            ``rps``; ``batch`` is unused: the engine batches as requests arrive).
        rps: arrival rate of the ``hf`` engine's load. Units: requests/s.
        max_batch_tokens / max_seqs: the ``hf`` engine's limits per iteration (tokens, sequences).
    """

    shape: ServeShape = field(default_factory=ServeShape)
    requests: int = 5
    warmup: int = 1
    engine: str = "static"
    rps: float | None = None
    max_batch_tokens: int = 256
    max_seqs: int = 16


def grad_accum_steps(shape: TrainShape, grad_accum: int | None, world_size: int) -> int:
    """Micro-batches per optimizer step on one rank: the ``grad-accum=N`` lever, else
    global_batch / (micro_batch × world_size)."""
    if grad_accum is not None:
        return grad_accum
    if shape.global_batch is None:
        return 1
    per_step = shape.micro_batch * world_size
    if shape.global_batch % per_step:
        raise SpecError(
            f"--global-batch {shape.global_batch} is not a multiple of --micro-batch × world size "
            f"({shape.micro_batch} × {world_size})",
            hint="global batch = micro-batch × data-parallel ranks × gradient-accumulation steps",
        )
    return max(1, shape.global_batch // per_step)
