"""The runner: trains (or serves) a real PyTorch model under a strategy, measures it with the meters and
records one :class:`~mlcost.measure.record.RunRecord` in the ledger.

Training (:func:`run_training`)::

    build model ─► count FLOPs (FlopCounterMode, one fwd+bwd) ─► apply strategy ─► warm-up steps
      (first step timed apart: compile time) ─► measured steps (timer per step, energy over the window,
      peak memory) ─► metrics: median/p90 step time, tokens/s (per device and total), achieved FLOP/s,
      MFU, energy, $ and CO2 ─► ledger: ``running`` at start, metrics every few steps, final status.

Statuses: ``completed``; ``failed`` (an exception, message in ``error``); ``oom`` (torch.OutOfMemoryError
or MemoryError); ``diverged`` (a NaN/inf loss: stops at once); ``interrupted`` (KeyboardInterrupt or
SIGTERM, partial metrics kept).

Under torchrun (``WORLD_SIZE`` > 1) the process group is initialised (gloo on CPU, NCCL on CUDA), the model
wrapped per strategy (ddp/fsdp), and only rank 0 writes the ledger; step times are the slowest rank's and
token counts are summed over ranks, so ``tokens_per_s`` is the whole job's throughput.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mlcost.errors import MlcostError, SpecError, require
from mlcost.measure.distributed import (
    DistContext,
    all_reduce,
    all_reduce_list,
    broadcast_flag,
    device_for,
    init_distributed,
    shutdown,
)
from mlcost.measure.strategies import Strategy, parse_strategy, precision_support
from mlcost.spec import ModelSpec, TrainJob

log = logging.getLogger("mlcost.measure")

#: Metrics are written to the ledger every this many steps (and at the end).
CHECKPOINT_EVERY_STEPS = 5
#: Refuse to build a model whose estimated training footprint exceeds this share of free memory.
MEMORY_HEADROOM = 0.9
ProgressFn = Callable[[int, int], None]


class RunInterrupted(KeyboardInterrupt):
    """Raised by the SIGTERM handler so a terminated run finishes as ``interrupted`` with partial metrics."""


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


# ---- helpers without torch ----------------------------------------------------------------------------


def grad_accum_steps(shape: TrainShape, strategy: Strategy, world_size: int) -> int:
    """Micro-batches per optimizer step on one rank: the ``grad-accum=N`` lever, else
    global_batch / (micro_batch × world_size)."""
    if strategy.grad_accum is not None:
        return strategy.grad_accum
    if shape.global_batch is None:
        return 1
    per_step = shape.micro_batch * world_size
    if shape.global_batch % per_step:
        raise SpecError(
            f"global batch {shape.global_batch} is not a multiple of micro-batch × world size "
            f"({shape.micro_batch} × {world_size})",
            hint="global batch = micro-batch × data-parallel ranks × gradient-accumulation steps",
        )
    return max(1, shape.global_batch // per_step)


def resolve_device(device: str) -> str:
    """``local`` → ``cuda`` when CUDA is usable, else ``cpu``; others as given."""
    if device == "local":
        try:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            return "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise SpecError(f"device must be cpu, cuda, cuda:N or local, got {device!r}")
    return device


def available_memory_bytes(device: str) -> float | None:
    """Free memory on the device (CUDA: ``mem_get_info``; CPU: psutil available). Units: bytes."""
    try:
        if device.startswith("cuda"):
            import torch

            free, _total = torch.cuda.mem_get_info(torch.device(device))
            return float(free)
        import psutil

        return float(psutil.virtual_memory().available)
    except Exception:
        return None


def check_fits(spec: ModelSpec, shape: TrainShape, device: str, *, local_ranks: int = 1) -> None:
    """Raise :class:`SpecError` before allocating when the model cannot train in the free memory."""
    from mlcost.measure.torch_models import training_memory_bytes

    need = training_memory_bytes(spec, micro_batch=shape.micro_batch, seq_len=shape.seq_len)
    free = available_memory_bytes(device)
    per_process = free / local_ranks if free is not None and not device.startswith("cuda") else free
    if per_process is not None and need > MEMORY_HEADROOM * per_process:
        raise SpecError(
            f"model {spec.name!r} needs ~{need / 1e9:.1f} GB to train at micro-batch {shape.micro_batch} × "
            f"{shape.seq_len} tokens, but {device} has {per_process / 1e9:.1f} GB free",
            hint="use a smaller preset or a config with fewer layers, e.g. --layers 2 --d-model 256 "
            "(also --heads, --vocab), or a smaller --micro-batch/--seq-len",
        )


def _catalog() -> Any:
    try:
        from mlcost.context import default_catalog as get_catalog

        return get_catalog()
    except Exception:
        return None


def _catalog_device_rows(catalog: Any) -> list[Any]:
    rows: Any = getattr(catalog, "devices", None)
    if callable(rows):
        rows = rows()
    if isinstance(rows, dict):
        rows = list(rows.values())
    return list(rows or [])


def catalog_device_for(device: str) -> Any:
    """The catalog row of the device in use: the CUDA device by name, or the CPU row matching this CPU
    (the only CPU row if none matches by name). None when the catalog or a row is missing."""
    catalog = _catalog()
    if catalog is None:
        return None
    rows = _catalog_device_rows(catalog)
    if device.startswith("cuda"):
        try:
            import torch

            name = torch.cuda.get_device_name(torch.device(device)).lower()
        except Exception:
            return None
        best = None
        for row in rows:
            if getattr(row, "kind", "") != "gpu":
                continue
            row_name = str(getattr(row, "name", "")).lower().replace("nvidia ", "")
            tokens = [t for t in row_name.split() if t not in ("sxm", "pcie")]
            if tokens and all(t in name for t in tokens[:2]):
                best = row
                break
        return best
    from mlcost.measure.provenance import cpu_model_name

    cpus = [r for r in rows if getattr(r, "kind", "") == "cpu"]
    model = (cpu_model_name() or "").lower()
    for row in cpus:
        words = [w for w in str(getattr(row, "name", "")).lower().replace("(", " ").split() if w.isalpha()]
        if words and all(w in model for w in words[:2]):
            return row
    return cpus[0] if len(cpus) == 1 else None


def _local_calibration(device: str) -> Any:
    """This machine's calibration (``mlcost calibrate``) on a CPU run, else None (CUDA runs, not
    calibrated, or the calibrate module unavailable)."""
    if device.startswith("cuda"):
        return None
    try:
        from mlcost.context import local_calibration as load_local_profile

        return load_local_profile()
    except Exception:
        return None


def mfu_peak(device: str, precision: str) -> tuple[float | None, str]:
    """Peak FLOP/s of one device for MFU, and where it came from.

    CPU: the calibrated profile (``mlcost calibrate``) if one exists, else the catalog's cpu row.
    CUDA: the catalog's dense peak for the precision in use."""
    prec = "fp32" if precision == "tf32" and not device.startswith("cuda") else precision
    profile = _local_calibration(device)
    peak = _profile_peak(profile, prec)
    if peak:
        return peak, f"calibrated profile ({getattr(profile, 'source', '') or 'mlcost calibrate'})"
    row = catalog_device_for(device)
    if row is not None:
        peak = row.peak_for(prec) if hasattr(row, "peak_for") else None
        if peak is None and prec != "fp32":
            fp32 = row.peak_for("fp32") if hasattr(row, "peak_for") else None
            if fp32:
                return fp32, f"catalog {row.id} fp32 peak (no {prec} units; {row.date})"
        if peak:
            return float(peak), f"catalog {row.id} {prec} dense peak ({row.date})"
    return None, "unknown: no calibrated profile and no catalog row for this device"


def _profile_peak(profile: Any, precision: str) -> float | None:
    if profile is None:
        return None
    peaks = getattr(profile, "peak_flops_per_s", None)
    if isinstance(peaks, dict):
        value = peaks.get(precision) or peaks.get("fp32")
        return float(value) if value else None
    if isinstance(peaks, (int, float)) and peaks > 0:
        return float(peaks)
    extra = getattr(profile, "extra", None) or {}
    for key in (f"peak_{precision}_flops_per_s", "matmul_peak_flops_per_s", "peak_flops_per_s"):
        if isinstance(extra, dict) and extra.get(key):
            return float(extra[key])
    return None


@dataclass(frozen=True)
class CostInputs:
    """Price, PUE and carbon intensity used for ``cost_usd`` and ``co2_kg``, with where each came from.

    Attributes:
        price_usd_per_device_h: Units: USD per device-hour.
        pue: facility / IT energy.
        carbon_kg_per_kwh: Units: kg CO2e per kWh.
        price_source / pue_source / carbon_source: provenance labels.
    """

    price_usd_per_device_h: float
    price_source: str
    pue: float
    pue_source: str
    carbon_kg_per_kwh: float | None
    carbon_source: str


def cost_inputs(
    device: str,
    *,
    price_usd_per_device_h: float | None = None,
    pue: float | None = None,
    carbon_kg_per_kwh: float | None = None,
    region: str | None = None,
) -> CostInputs:
    """Resolve price, PUE and carbon: the user's values, else the catalog's, else labelled defaults
    (a local CPU costs 0 USD/h unless a price is given)."""
    catalog = _catalog()
    if price_usd_per_device_h is not None:
        price, price_src = float(price_usd_per_device_h), "given by the user"
    elif device.startswith("cuda"):
        price, price_src = 0.0, "no catalog price for this GPU: 0 (give --price-usd-per-h)"
        row = catalog_device_for(device)
        if catalog is not None and row is not None:
            with contextlib.suppress(Exception):
                p = catalog.price(row.id)
                value = getattr(p, "usd_per_device_h", p)
                if isinstance(value, (int, float)):
                    price = float(value)
                    price_src = (
                        f"catalog {row.id} {getattr(p, 'provider', '')} {getattr(p, 'pricing', '')}".strip()
                    )
    else:
        price, price_src = 0.0, "local machine: 0 USD/h (owned hardware; give --price-usd-per-h for a rate)"
    if pue is not None:
        pue_v, pue_src = float(pue), "given by the user"
    elif device.startswith("cuda") and catalog is not None and price_src.startswith("catalog"):
        pue_v, pue_src = 1.2, "1.2 (mlcost default)"
        with contextlib.suppress(Exception):
            row = catalog.pue(price_src.split()[2] if len(price_src.split()) > 2 else None)
            pue_v, pue_src = float(row.pue), f"catalog PUE of {row.provider}"
    else:
        pue_v, pue_src = 1.0, "1.0 (local machine, no facility overhead assumed)"
    if carbon_kg_per_kwh is not None:
        carbon, carbon_src = float(carbon_kg_per_kwh), "given by the user"
    else:
        carbon, carbon_src = None, "unknown"
        if catalog is not None:
            with contextlib.suppress(Exception):
                row = catalog.carbon(region or "world")
                value = getattr(row, "kg_co2_per_kwh", row)
                if isinstance(value, (int, float)):
                    carbon = float(value)
                    carbon_src = f"catalog carbon {region or 'world'} ({getattr(row, 'source', '')[:60]})"
        if carbon is None:
            carbon, carbon_src = (
                0.475,
                "world average 0.475 kg/kWh (CodeCarbon fallback; catalog unavailable)",
            )
    return CostInputs(price, price_src, pue_v, pue_src, carbon, carbon_src)


def predict_train(
    spec: ModelSpec | None, shape: TrainShape, device: str, world_size: int, precision: str, steps: int
) -> dict[str, Any]:
    """The estimator's prediction for the same run (empty if the estimator or catalog is missing)."""
    if spec is None:
        return {}
    try:
        from mlcost.estimate import estimate_train  # type: ignore[attr-defined]
        from mlcost.spec import Cluster
    except Exception:
        return {}
    try:
        # On a CPU, a calibrated profile of this machine ('local', mlcost calibrate) predicts best; else
        # the catalog row of the device in use.
        row = None if _local_calibration(device) is not None else catalog_device_for(device)
        cluster = Cluster(device=row.id if row is not None else "local", count=world_size)
        global_batch = shape.global_batch or shape.micro_batch * world_size
        job = TrainJob(
            tokens=float(global_batch * shape.seq_len * max(steps, 1)),
            seq_len=shape.seq_len,
            global_batch=global_batch,
            micro_batch=shape.micro_batch,
            precision=precision,  # type: ignore[arg-type]
            recompute=shape.recompute,  # type: ignore[arg-type]
            # The runner's models are eager transformers modules with SDPA attention: a fused (flash)
            # attention kernel on CPU and CUDA, unfused element-wise ops.
            flash_attention=True,
            fused_elementwise=False,
        )
        est = estimate_train(spec, job, cluster, catalog=_catalog())
    except Exception as exc:  # the estimator is optional here; a failure must not stop a measurement
        return {"error": f"{type(exc).__name__}: {exc}"}
    out: dict[str, Any] = {"device": cluster.device}
    for key, attr in (
        ("step_time_s", "step_time_s"),
        ("model_flops_per_step", "model_flops_per_step"),
        ("hardware_flops_per_step", "hardware_flops_per_step"),
        ("mfu", "mfu"),
    ):
        value = getattr(est, attr, None)
        if isinstance(value, (int, float)):
            out[key] = float(value)
    # The job's own memory per device (on a CPU: what the run adds to the runtime's baseline RSS).
    total = getattr(getattr(est, "memory", None), "total", None)
    if isinstance(total, (int, float)):
        out["peak_memory_bytes"] = float(total)
    if out.get("step_time_s"):
        out["tokens_per_s"] = (
            shape.seq_len * (shape.global_batch or shape.micro_batch * world_size) / out["step_time_s"]
        )
    return out


def money_metrics(
    *,
    energy_j: float | None,
    measured_s: float,
    world_size: int,
    tokens_per_s: float | None,
    inputs: CostInputs,
) -> dict[str, Any]:
    """cost_usd (price × device-hours of the measured window), USD per million tokens and co2_kg
    (energy × PUE × carbon intensity)."""
    device_h = world_size * measured_s / 3600.0
    out: dict[str, Any] = {
        "cost_usd": inputs.price_usd_per_device_h * device_h,
        "cost_source": inputs.price_source,
        "price_usd_per_device_h": inputs.price_usd_per_device_h,
        "device_hours": device_h,
        "usd_per_million_tokens": (
            inputs.price_usd_per_device_h * world_size / 3600.0 / tokens_per_s * 1e6 if tokens_per_s else None
        ),
        "pue": inputs.pue,
        "carbon_kg_per_kwh": inputs.carbon_kg_per_kwh,
    }
    if energy_j is not None and inputs.carbon_kg_per_kwh is not None:
        out["co2_kg"] = energy_j / 3.6e6 * inputs.pue * inputs.carbon_kg_per_kwh
        out["co2_source"] = f"energy × PUE {inputs.pue:g} ({inputs.pue_source}) × {inputs.carbon_source}"
    else:
        out["co2_kg"] = None
        out["co2_source"] = "unknown"
    return out


# ---- ledger and signals -------------------------------------------------------------------------------


class _LedgerWriter:
    """Writes to the ledger on rank 0 only; a ledger failure mid-run is logged, not fatal."""

    def __init__(self, ledger: Any, enabled: bool) -> None:
        self.ledger = ledger if enabled else None
        self.run_id: str | None = None

    def start(self, record: Any) -> None:
        if self.ledger is not None:
            self.run_id = self.ledger.start_run(record)

    def update(self, metrics: dict[str, Any]) -> None:
        if self.ledger is not None and self.run_id is not None:
            try:
                self.ledger.update_metrics(self.run_id, metrics)
            except MlcostError as exc:
                log.warning("could not checkpoint metrics: %s", exc)

    def finish(self, status: str, metrics: dict[str, Any], error: str | None) -> Any:
        if self.ledger is None or self.run_id is None:
            return None
        self.ledger.finish_run(self.run_id, status, metrics=metrics, error=error)
        try:
            return self.ledger.get(self.run_id)
        except Exception:
            return None


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While active, SIGTERM raises :class:`RunInterrupted` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _handler(signum: int, frame: Any) -> None:
        raise RunInterrupted(f"signal {signal.Signals(signum).name}")

    old = signal.signal(signal.SIGTERM, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def classify_exception(exc: BaseException) -> str:
    """Final status for an exception: interrupted, oom or failed."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, MemoryError):
        return "oom"
    try:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            return "oom"
    except (ImportError, AttributeError):
        pass
    if isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower():
        return "oom"
    return "failed"


# ---- training -----------------------------------------------------------------------------------------


@dataclass
class _Progress:
    """Counters of the step loop, readable when the loop is cut short."""

    steps_done: int = 0
    warmup_times_s: list[float] = dataclasses.field(default_factory=list)
    losses: list[float] = dataclasses.field(default_factory=list)
    energy_started: bool = False


def _model_label(model: ModelSpec | Any, name: str | None) -> str:
    if name:
        return name
    if isinstance(model, ModelSpec):
        return model.name
    return type(model).__name__


def _spec_of(model: Any) -> ModelSpec | None:
    if isinstance(model, ModelSpec):
        return model
    try:
        return ModelSpec.from_torch_module(model)
    except Exception:
        return None


def run_training(
    model: ModelSpec | Any,
    job: TrainJob | TrainShape | None = None,
    *,
    strategy: str | Strategy = "baseline",
    steps: int = 10,
    warmup: int = 2,
    device: str = "cpu",
    ledger: Any = None,
    meters: Any = None,
    dry_run: bool = False,
    data: str | os.PathLike[str] | None = None,
    seed: int = 0,
    lr: float = 1e-4,
    model_name: str | None = None,
    attn_implementation: str = "sdpa",
    price_usd_per_device_h: float | None = None,
    pue: float | None = None,
    carbon_kg_per_kwh: float | None = None,
    region: str | None = None,
    checkpoint_every: int = CHECKPOINT_EVERY_STEPS,
    progress: ProgressFn | None = None,
    check_memory: bool = True,
) -> Any:
    """Train ``model`` for ``warmup + steps`` optimizer steps under ``strategy`` and record the run.

    Args:
        model: a :class:`ModelSpec` (built as a ``transformers`` model with random weights) or an
            ``nn.Module`` (called as ``model(input_ids=..., labels=...)`` if it is a Hugging Face model,
            else ``model(input_ids)`` returning logits, a loss or an object with ``.loss``).
        job: the step shape (a TrainJob or :class:`TrainShape`; default micro-batch 4 × 128 tokens, fp32).
        strategy: ``"baseline"``, or levers joined with ``+`` (see :mod:`mlcost.measure.strategies`).
        steps / warmup: measured and warm-up optimizer steps (warm-up excluded from all timings).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``local`` (CUDA if present, else CPU).
        ledger: a :class:`~mlcost.measure.ledger.Ledger` (or None: the record is only returned).
        meters: a MeterSet (default: ``select_meters(device)``; for a dry run, replayed readings).
        dry_run: replay meters instead of running torch (no torch needed).
        data: a text file (byte-level tokens), or None for synthetic random tokens.
        price_usd_per_device_h / pue / carbon_kg_per_kwh / region: cost inputs (labelled defaults otherwise).
        checkpoint_every: write partial metrics to the ledger every this many steps.
        progress: called as ``progress(steps_done, total_steps)`` after each step.
        check_memory: refuse (SpecError) a model whose estimated footprint exceeds free memory.

    Returns:
        The :class:`~mlcost.measure.record.RunRecord` (re-read from the ledger when one is given).
    """
    from mlcost.measure.provenance import collect_provenance
    from mlcost.measure.record import RunRecord, utc_now_iso

    strat = parse_strategy(strategy)
    shape = TrainShape.from_job(job) if job is not None else TrainShape()
    if steps < 1 or warmup < 0:
        raise SpecError(f"steps must be >= 1 and warmup >= 0, got steps={steps}, warmup={warmup}")
    if strat.compile and warmup == 0:
        warmup = 1  # the compiling step must not be measured
    device = "cpu" if dry_run else resolve_device(device)
    ctx = DistContext() if dry_run else init_distributed(device)
    if strat.parallel and not ctx.is_distributed and not dry_run:
        raise SpecError(
            f"strategy {strat.parallel!r} needs several processes",
            hint=f"launch with torchrun: python -m torch.distributed.run --nproc_per_node 2 -m mlcost measure "
            f"train ... --strategy {strat.name}",
        )
    device = device_for(device, ctx)
    spec = _spec_of(model)
    accum = grad_accum_steps(shape, strat, ctx.world_size)
    precision = strat.precision or shape.precision
    tokens_per_device_step = shape.micro_batch * accum * shape.seq_len
    tokens_per_step = tokens_per_device_step * ctx.world_size
    if spec is not None and check_memory and not dry_run and isinstance(model, ModelSpec):
        check_fits(spec, shape, device, local_ranks=int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    supported, support_note = precision_support(precision, device)
    predicted = predict_train(spec, shape, device, ctx.world_size, precision, steps)

    config: dict[str, Any] = {
        "shape": shape.to_dict(),
        "precision": precision,
        "precision_supported": supported,
        "precision_note": support_note,
        "grad_accum": accum,
        "global_batch": shape.micro_batch * accum * ctx.world_size,
        "tokens_per_step": tokens_per_step,
        "steps": steps,
        "warmup": warmup,
        "strategy": strat.to_dict(),
        "strategy_levers": strat.descriptions(),
        "data": str(data) if data is not None else "synthetic",
        "seed": seed,
        "lr": lr,
        "attn_implementation": attn_implementation,
        "dry_run": dry_run,
        "backend": ctx.backend,
        "model_spec": spec.to_dict() if spec is not None else None,
    }
    record = RunRecord(
        kind="train",
        model=_model_label(model, model_name),
        config=config,
        strategy=strat.name,
        device=device,
        world_size=ctx.world_size,
        predicted=predicted,
        provenance=collect_provenance(import_torch=not dry_run),
    )
    writer = _LedgerWriter(ledger, ctx.is_main)
    writer.start(record)
    prog = _Progress()
    metrics: dict[str, Any] = {
        "steps_done": 0,
        "world_size": ctx.world_size,
        "tokens_per_step": tokens_per_step,
    }
    status, error = "completed", None
    own_meters = meters is None
    meter_set = as_meter_set(meters)
    try:
        with sigterm_interrupts():
            if dry_run:
                meter_set = meter_set or _dry_run_meters(predicted)
                metrics.update(
                    _dry_run_loop(
                        meter_set, spec, shape, accum, steps, warmup, prog, writer, checkpoint_every, progress
                    )
                )
            else:
                if meter_set is None:
                    from mlcost.measure.meters import select_meters

                    meter_set = select_meters(device)
                status, loop_metrics = _train_loop(
                    model,
                    spec=spec,
                    shape=shape,
                    strat=strat,
                    precision=precision,
                    accum=accum,
                    steps=steps,
                    warmup=warmup,
                    device=device,
                    ctx=ctx,
                    meters=meter_set,
                    data=data,
                    seed=seed,
                    lr=lr,
                    attn_implementation=attn_implementation,
                    prog=prog,
                    writer=writer,
                    checkpoint_every=checkpoint_every,
                    progress=progress,
                    config=config,
                )
                metrics.update(loop_metrics)
                if status == "diverged":
                    error = (
                        f"loss became {prog.losses[-1] if prog.losses else 'nan'} at step {prog.steps_done}"
                    )
    except BaseException as exc:
        status = classify_exception(exc)
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if status == "failed" and not isinstance(exc, MlcostError):
            log.error("run failed:\n%s", "".join(traceback.format_exception(exc)))
        metrics.update(_partial_metrics(meter_set, prog, tokens_per_step, ctx, energy=False))
        if isinstance(exc, MlcostError) and prog.steps_done == 0:
            writer.finish("failed", metrics, error)
            shutdown(ctx)
            raise
    finally:
        if own_meters and meter_set is not None:
            close = getattr(meter_set, "close", None)
            if callable(close):
                close()
    if "tokens_per_s" in metrics or status == "completed":
        cost = cost_inputs(
            device,
            price_usd_per_device_h=price_usd_per_device_h,
            pue=pue,
            carbon_kg_per_kwh=carbon_kg_per_kwh,
            region=region,
        )
        metrics.update(
            money_metrics(
                energy_j=metrics.get("energy_j"),
                measured_s=float(metrics.get("measured_s") or 0.0),
                world_size=ctx.world_size,
                tokens_per_s=metrics.get("tokens_per_s"),
                inputs=cost,
            )
        )
    metrics["steps_done"] = prog.steps_done
    stored = writer.finish(status, metrics, error)
    shutdown(ctx)
    if stored is not None:
        return stored
    return record.replace(status=status, metrics=metrics, error=error, finished_at=utc_now_iso())


def as_meter_set(meters: Any) -> Any:
    """A MeterSet as is; one object that is a timer, energy and memory meter at once (ReplayMeters) is
    wrapped into a MeterSet."""
    if meters is None or hasattr(meters, "timer"):
        return meters
    from mlcost.measure.meters import MeterSet

    return MeterSet(timer=meters, energy=meters, memory=meters, notes=[getattr(meters, "detail", "replay")])


def _dry_run_meters(predicted: dict[str, Any]) -> Any:
    from mlcost.measure.meters import ReplayMeters

    step_s = predicted.get("step_time_s")
    if step_s:
        return as_meter_set(
            ReplayMeters.from_readings(
                step_times_s=[step_s],
                energy_j=0.0,
                peak_bytes=int(predicted.get("peak_memory_bytes") or 0),
                detail="dry run: the estimator's predicted step time; no energy",
            )
        )
    return as_meter_set(ReplayMeters.example())


def _dry_run_loop(
    meters: Any,
    spec: ModelSpec | None,
    shape: TrainShape,
    accum: int,
    steps: int,
    warmup: int,
    prog: _Progress,
    writer: _LedgerWriter,
    checkpoint_every: int,
    progress: ProgressFn | None,
) -> dict[str, Any]:
    """Replays meter readings through the same bookkeeping as a real run (no torch)."""
    from mlcost.measure.torch_models import approx_param_count

    meters.memory.reset()
    for i in range(warmup + steps):
        if i == warmup:
            meters.energy.begin()
            prog.energy_started = True
        if i >= warmup:
            meters.timer.start()
            meters.timer.stop()
        prog.steps_done += 1
        if i >= warmup and (i - warmup + 1) % checkpoint_every == 0:
            writer.update({"steps_done": prog.steps_done})
        if progress:
            progress(i + 1, warmup + steps)
    tokens_per_step = shape.micro_batch * accum * shape.seq_len
    flops = 6.0 * approx_param_count(spec) * tokens_per_step if spec is not None else None
    out = _summarise(meters, tokens_per_step, flops, None, DistContext(), "cpu", "fp32")
    out["model_flops_source"] = "6 × parameters × tokens (dry run: nothing executed)"
    out["mfu"] = None
    out["mfu_peak_flops_per_s"] = None
    out["mfu_peak_source"] = "dry run: no hardware measured"
    return out


def _summarise(
    meters: Any,
    tokens_per_device_step: int,
    model_flops_per_device_step: float | None,
    hardware_flops_per_device_step: float | None,
    ctx: DistContext,
    device: str,
    precision: str,
    energy: bool = True,
) -> dict[str, Any]:
    """Step-time statistics, throughput, FLOP/s, MFU, memory and energy from the meters (all ranks)."""
    from mlcost.measure.meters import summarize_times

    times = all_reduce_list(meters.timer.times_s(), "max", ctx, device)  # the slowest rank sets the pace
    stats = summarize_times(times)
    median = stats["median_s"]
    tokens_total_step = all_reduce(float(tokens_per_device_step), "sum", ctx, device)
    out: dict[str, Any] = {
        "steps_measured": stats["n"],
        "step_time_s": median,
        "step_time_p90_s": stats["p90_s"],
        "step_time_mean_s": stats["mean_s"],
        "step_time_min_s": stats["min_s"],
        "measured_s": sum(times),
        "step_times_s": times,
        "tokens_per_step": int(tokens_total_step),
    }
    if median:
        out["tokens_per_s"] = tokens_total_step / median
        out["tokens_per_s_per_device"] = tokens_total_step / median / ctx.world_size
    if model_flops_per_device_step is not None:
        total_flops = model_flops_per_device_step * ctx.world_size
        out["model_flops_per_step"] = total_flops
        if hardware_flops_per_device_step is not None:
            out["hardware_flops_per_step"] = hardware_flops_per_device_step * ctx.world_size
        if median:
            out["achieved_flops_per_s"] = total_flops / median
            out["achieved_flops_per_s_per_device"] = model_flops_per_device_step / median
            peak, source = mfu_peak(device, precision)
            out["mfu_peak_flops_per_s"] = peak
            out["mfu_peak_source"] = source
            out["mfu"] = out["achieved_flops_per_s_per_device"] / peak if peak else None
    mem = meters.memory.read()
    out["peak_memory_bytes"] = int(all_reduce(float(mem.peak_bytes), "max", ctx, device))
    out["memory_source"] = mem.source
    if mem.reserved_bytes is not None:
        out["reserved_memory_bytes"] = int(all_reduce(float(mem.reserved_bytes), "max", ctx, device))
    if energy:
        reading = meters.energy.end()
        out["energy_j"] = all_reduce(reading.energy_j, "sum", ctx, device)
        out["energy_source"] = reading.source
        out["energy_detail"] = reading.detail + (
            f" (summed over {ctx.world_size} ranks)" if ctx.is_distributed else ""
        )
        out["energy_duration_s"] = reading.duration_s
    return out


def _partial_metrics(
    meters: Any, prog: _Progress, tokens_per_step: int, ctx: DistContext, energy: bool
) -> dict[str, Any]:
    """Whatever can be read after a run was cut short (never raises)."""
    out: dict[str, Any] = {"steps_done": prog.steps_done}
    if prog.losses:
        out["loss_last"] = prog.losses[-1]
    if meters is None:
        return out
    try:
        from mlcost.measure.meters import summarize_times

        times = meters.timer.times_s()
        stats = summarize_times(times)
        out["steps_measured"] = stats["n"]
        if stats["median_s"]:
            out["step_time_s"] = stats["median_s"]
            out["step_time_p90_s"] = stats["p90_s"]
            out["tokens_per_s"] = tokens_per_step / stats["median_s"]
            out["tokens_per_s_per_device"] = out["tokens_per_s"] / ctx.world_size
            out["measured_s"] = sum(times)
        mem = meters.memory.read()
        out["peak_memory_bytes"] = mem.peak_bytes
        out["memory_source"] = mem.source
        if prog.energy_started:
            reading = meters.energy.end()
            out["energy_j"] = reading.energy_j
            out["energy_source"] = reading.source
            out["energy_detail"] = reading.detail
    except Exception as exc:  # partial metrics are best effort
        out["partial_metrics_error"] = repr(exc)
    return out


def _train_loop(
    model: Any,
    *,
    spec: ModelSpec | None,
    shape: TrainShape,
    strat: Strategy,
    precision: str,
    accum: int,
    steps: int,
    warmup: int,
    device: str,
    ctx: DistContext,
    meters: Any,
    data: Any,
    seed: int,
    lr: float,
    attn_implementation: str,
    prog: _Progress,
    writer: _LedgerWriter,
    checkpoint_every: int,
    progress: ProgressFn | None,
    config: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    torch = require("torch", "mlcost measure", extra="measure")
    from mlcost.measure.data import make_dataset, make_loader
    from mlcost.measure.strategies import enable_checkpointing, prepare
    from mlcost.measure.torch_models import (
        build_model,
        compute_loss,
        count_model_flops,
        param_count,
        vocab_size_of,
    )

    meters.memory.reset()
    extra: dict[str, Any] = {}
    if isinstance(model, ModelSpec):
        module = build_model(model, attn_implementation=attn_implementation, seed=seed, device=device)
    else:
        module = model.to(device)
        module.train()
    vocab = vocab_size_of(module, spec.vocab_size if spec is not None else None)
    if vocab is None:
        raise SpecError(
            "cannot tell the vocabulary size of this module",
            hint="give it a .config.vocab_size or pass a ModelSpec",
        )
    extra["param_count"] = param_count(module)

    # FLOPs of one micro-batch (model FLOPs; with checkpointing also the hardware FLOPs that recompute).
    flops = count_model_flops(module, shape.micro_batch, shape.seq_len, vocab_size=vocab)
    model_flops = float(flops["total_flops"] * accum)
    hardware_flops = None
    if strat.checkpointing or shape.recompute in ("selective", "full"):
        enable_checkpointing(module)
        hardware_flops = float(
            count_model_flops(module, shape.micro_batch, shape.seq_len, vocab_size=vocab)["total_flops"]
            * accum
        )
    extra["flops_per_micro_batch"] = flops

    dataset = make_dataset(vocab_size=vocab, seq_len=shape.seq_len, path=data, seed=seed)
    loader = make_loader(
        dataset,
        micro_batch=shape.micro_batch,
        workers=strat.workers,
        rank=ctx.rank,
        world_size=ctx.world_size,
        pin_memory=device.startswith("cuda"),
    )
    prep = prepare(module, strat, precision=precision, device=device, recompute=shape.recompute, lr=lr)
    extra["applied"] = prep.notes
    is_ddp = strat.parallel == "ddp"
    cuda = device.startswith("cuda")

    def _sync() -> None:
        if cuda:
            torch.cuda.synchronize(torch.device(device))

    def _step() -> float:
        prep.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=device)
        for k in range(accum):
            ids = next(loader).to(device, non_blocking=True)
            no_sync = (
                prep.model.no_sync()
                if is_ddp and k < accum - 1 and hasattr(prep.model, "no_sync")
                else contextlib.nullcontext()
            )
            with no_sync:
                with prep.autocast():
                    loss = compute_loss(prep.model, ids, ids) / accum
                if prep.scaler is not None:
                    prep.scaler.scale(loss).backward()
                else:
                    loss.backward()
            total += loss.detach().float()
        if prep.scaler is not None:
            prep.scaler.step(prep.optimizer)
            prep.scaler.update()
        else:
            prep.optimizer.step()
        return float(total.item())

    status = "completed"
    total_steps = warmup + steps
    for i in range(total_steps):
        measured = i >= warmup
        if i == warmup:
            _sync()
            meters.energy.begin()
            prog.energy_started = True
        if measured:
            meters.timer.start()
            loss = _step()
            meters.timer.stop()
        else:
            _sync()
            t0 = time.perf_counter()
            loss = _step()
            _sync()
            prog.warmup_times_s.append(time.perf_counter() - t0)
        prog.steps_done += 1
        prog.losses.append(loss)
        bad = not math.isfinite(loss)
        if broadcast_flag(bad, ctx, device):
            status = "diverged"
            break
        if measured and (i - warmup + 1) % checkpoint_every == 0 and i + 1 < total_steps:
            partial = _partial_metrics(
                meters, prog, shape.micro_batch * accum * shape.seq_len * ctx.world_size, ctx, energy=False
            )
            writer.update(partial)
        if progress:
            progress(i + 1, total_steps)

    out: dict[str, Any] = {}
    if status == "diverged" and not meters.timer.times_s():
        out["steps_done"] = prog.steps_done
    else:
        out = _summarise(
            meters,
            shape.micro_batch * accum * shape.seq_len,
            model_flops,
            hardware_flops,
            ctx,
            device,
            prep.precision,
        )
    out["loss_first"] = prog.losses[0] if prog.losses else None
    out["loss_last"] = prog.losses[-1] if prog.losses else None
    out["warmup_step_times_s"] = prog.warmup_times_s
    if prog.warmup_times_s:
        out["first_step_s"] = prog.warmup_times_s[0]
        if strat.compile and out.get("step_time_s"):
            out["compile_time_s"] = max(0.0, prog.warmup_times_s[0] - float(out["step_time_s"]))
    out["model_flops_source"] = (
        "torch.utils.flop_counter.FlopCounterMode, one forward+backward per micro-batch"
    )
    out["precision"] = prep.precision
    out.update(extra)
    return status, out


# ---- serving ------------------------------------------------------------------------------------------


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


def run_serving(
    model: ModelSpec | Any,
    shape: ServeShape | None = None,
    *,
    requests: int = 5,
    warmup: int = 1,
    device: str = "cpu",
    ledger: Any = None,
    meters: Any = None,
    seed: int = 0,
    model_name: str | None = None,
    attn_implementation: str = "sdpa",
    price_usd_per_device_h: float | None = None,
    pue: float | None = None,
    carbon_kg_per_kwh: float | None = None,
    progress: ProgressFn | None = None,
) -> Any:
    """Serve ``requests`` batches (prefill + greedy decode with a KV cache) and record TTFT, time per output
    token and output tokens/s. Warm-up requests are excluded.

    Metrics: ``ttft_s`` (median time to first token), ``time_per_output_token_s`` (median decode time per
    token after the first), ``request_time_s`` (median), ``tokens_per_s`` (output tokens per second over
    all sequences), peak memory, energy, cost and CO2.
    """
    from mlcost.measure.provenance import collect_provenance
    from mlcost.measure.record import RunRecord, utc_now_iso

    shape = shape or ServeShape()
    device = resolve_device(device)
    spec = _spec_of(model)
    if spec is not None and spec.kind == "encoder":
        raise SpecError(
            "serving measures generation, which needs a decoder model", hint="use a decoder preset"
        )
    record = RunRecord(
        kind="serve",
        model=_model_label(model, model_name),
        config={
            "shape": shape.to_dict(),
            "requests": requests,
            "warmup": warmup,
            "seed": seed,
            "attn_implementation": attn_implementation,
            "model_spec": spec.to_dict() if spec is not None else None,
        },
        strategy=shape.precision,
        device=device,
        world_size=1,
        provenance=collect_provenance(import_torch=True),
    )
    writer = _LedgerWriter(ledger, True)
    writer.start(record)
    metrics: dict[str, Any] = {}
    status, error = "completed", None
    own = meters is None
    meters = as_meter_set(meters)
    prog = _Progress()
    try:
        with sigterm_interrupts():
            if meters is None:
                from mlcost.measure.meters import select_meters

                meters = select_meters(device)
            metrics = _serve_loop(
                model, shape, requests, warmup, device, meters, seed, attn_implementation, prog, progress
            )
    except BaseException as exc:
        status = classify_exception(exc)
        error = f"{type(exc).__name__}: {exc}"
        metrics.update(
            _partial_metrics(meters, prog, shape.batch * shape.output_len, DistContext(), energy=False)
        )
        if isinstance(exc, MlcostError) and prog.steps_done == 0:
            writer.finish("failed", metrics, error)
            raise
    finally:
        if own and meters is not None and callable(getattr(meters, "close", None)):
            meters.close()
    metrics["steps_done"] = prog.steps_done
    if metrics.get("tokens_per_s"):
        inputs = cost_inputs(
            device,
            price_usd_per_device_h=price_usd_per_device_h,
            pue=pue,
            carbon_kg_per_kwh=carbon_kg_per_kwh,
        )
        metrics.update(
            money_metrics(
                energy_j=metrics.get("energy_j"),
                measured_s=float(metrics.get("measured_s") or 0.0),
                world_size=1,
                tokens_per_s=metrics.get("tokens_per_s"),
                inputs=inputs,
            )
        )
    stored = writer.finish(status, metrics, error)
    if stored is not None:
        return stored
    return record.replace(status=status, metrics=metrics, error=error, finished_at=utc_now_iso())


def _serve_loop(
    model: Any,
    shape: ServeShape,
    requests: int,
    warmup: int,
    device: str,
    meters: Any,
    seed: int,
    attn_implementation: str,
    prog: _Progress,
    progress: ProgressFn | None,
) -> dict[str, Any]:
    torch = require("torch", "mlcost measure", extra="measure")
    from mlcost.measure.meters import summarize_times
    from mlcost.measure.torch_models import build_model, vocab_size_of

    meters.memory.reset()
    module: Any
    if isinstance(model, ModelSpec):
        module = build_model(model, attn_implementation=attn_implementation, seed=seed, device=device)
    else:
        module = model.to(device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(shape.precision)
    if dtype is not None:
        module = module.to(dtype)
    module.eval()
    if hasattr(module, "config"):
        module.config.use_cache = True
    vocab = vocab_size_of(module, 256) or 256
    gen = torch.Generator().manual_seed(seed)
    cuda = device.startswith("cuda")

    def _now() -> float:
        if cuda:
            torch.cuda.synchronize(torch.device(device))
        return time.perf_counter()

    ttft: list[float] = []
    tpot: list[float] = []
    total = warmup + requests
    with torch.inference_mode():
        for i in range(total):
            if i == warmup:
                meters.energy.begin()
                prog.energy_started = True
            ids = torch.randint(0, vocab, (shape.batch, shape.prompt_len), generator=gen).to(device)
            measured = i >= warmup
            if measured:
                meters.timer.start()
            t0 = _now()
            out = module(input_ids=ids, use_cache=True)
            past = out.past_key_values
            token = out.logits[:, -1:].argmax(-1)
            t1 = _now()
            for _ in range(shape.output_len - 1):
                out = module(input_ids=token, past_key_values=past, use_cache=True)
                past = out.past_key_values
                token = out.logits[:, -1:].argmax(-1)
            t2 = _now()
            if measured:
                meters.timer.stop()
                ttft.append(t1 - t0)
                if shape.output_len > 1:
                    tpot.append((t2 - t1) / (shape.output_len - 1))
            prog.steps_done += 1
            if progress:
                progress(i + 1, total)
    times = meters.timer.times_s()
    stats = summarize_times(times)
    out_tokens = shape.batch * shape.output_len
    reading = meters.energy.end()
    mem = meters.memory.read()
    return {
        "requests_measured": stats["n"],
        "request_time_s": stats["median_s"],
        "request_time_p90_s": stats["p90_s"],
        "ttft_s": summarize_times(ttft)["median_s"],
        "ttft_p90_s": summarize_times(ttft)["p90_s"],
        "time_per_output_token_s": summarize_times(tpot)["median_s"] if tpot else None,
        "tokens_per_s": out_tokens / stats["median_s"] if stats["median_s"] else None,
        "measured_s": sum(times),
        "output_tokens_per_request": out_tokens,
        "peak_memory_bytes": mem.peak_bytes,
        "memory_source": mem.source,
        "energy_j": reading.energy_j,
        "energy_source": reading.source,
        "energy_detail": reading.detail,
    }


# ---- the JSON contract ----------------------------------------------------------------------------------

#: Keys of ``mlcost measure train --json`` (docs/measure.md). Units are in the names; absent values are null.
SUMMARY_KEYS: tuple[str, ...] = (
    "step_time_s",
    "step_time_p90_s",
    "tokens_per_s",
    "tokens_per_s_per_device",
    "tokens_per_step",
    "achieved_flops_per_s",
    "model_flops_per_step",
    "mfu",
    "mfu_peak_flops_per_s",
    "mfu_peak_source",
    "peak_memory_bytes",
    "memory_source",
    "energy_j",
    "energy_source",
    "energy_detail",
    "cost_usd",
    "cost_source",
    "usd_per_million_tokens",
    "co2_kg",
    "co2_source",
    "compile_time_s",
    "steps_done",
    "steps_measured",
    "loss_first",
    "loss_last",
    "param_count",
)

SERVE_SUMMARY_KEYS: tuple[str, ...] = (
    "ttft_s",
    "ttft_p90_s",
    "time_per_output_token_s",
    "request_time_s",
    "tokens_per_s",
    "peak_memory_bytes",
    "energy_j",
    "energy_source",
    "cost_usd",
    "usd_per_million_tokens",
    "co2_kg",
    "steps_done",
)


def run_summary(record: Any) -> dict[str, Any]:
    """One run as the flat JSON object of ``mlcost measure train --json`` (JSON-safe)."""
    from mlcost.measure.record import json_safe

    keys = SERVE_SUMMARY_KEYS if record.kind == "serve" else SUMMARY_KEYS
    out: dict[str, Any] = {
        "run_id": record.run_id,
        "status": record.status,
        "kind": record.kind,
        "model": record.model,
        "strategy": record.strategy,
        "device": record.device,
        "world_size": record.world_size,
        "dry_run": bool(record.config.get("dry_run", False)),
    }
    for key in keys:
        out[key] = record.metrics.get(key)
    out["error"] = record.error
    out["predicted"] = dict(record.predicted)
    return json_safe(out)  # type: ignore[no-any-return]
