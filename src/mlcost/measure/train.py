"""Measured training: :func:`run_training` trains a real PyTorch model under a strategy through the one
lifecycle (:mod:`mlcost.measure.lifecycle`) and the one step loop (:mod:`mlcost.measure.steps`)::

    validate (no torch) ─► plan: strategy, accumulation, prediction ─► ledger row 'running'
      ─► build model ─► count FLOPs (FlopCounterMode, one fwd+bwd) ─► apply strategy
      ─► warm-up steps (timed apart: compile time) ─► measured steps ─► summary ─► final record

Statuses: ``completed``; ``failed``; ``oom``; ``diverged`` (a NaN/inf loss: stops at once); ``interrupted``
(Ctrl-C or SIGTERM, partial metrics kept). Under torchrun (``WORLD_SIZE`` > 1) the process group is
initialised, the model wrapped per strategy (ddp/fsdp) and only rank 0 writes the ledger; step times are
the slowest rank's and tokens are summed over ranks.

A dry run (``dry_run=True``) replays the estimator's predicted step time through the same loop (no torch).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

from mlcost.errors import SpecError, require
from mlcost.measure.distributed import DistContext, device_for, init_distributed, shutdown
from mlcost.measure.facts import predict_train
from mlcost.measure.lifecycle import RunLifecycle, as_meter_set
from mlcost.measure.options import TrainOptions, TrainShape, grad_accum_steps
from mlcost.measure.steps import ProgressFn, StepLoop, StepOutput, flops_metrics
from mlcost.measure.strategies import Strategy, parse_strategy, precision_support
from mlcost.measure.validate import check_fits, validate_train_options
from mlcost.spec import ModelSpec, TrainJob

#: Refuse to build a model whose estimated training footprint exceeds this share of free memory.
MEMORY_HEADROOM = 0.9
FLOPS_SOURCE = "torch.utils.flop_counter.FlopCounterMode, one forward+backward per micro-batch"


@dataclass(frozen=True)
class TrainPlan:
    """Everything decided before the first step (no torch needed)."""

    opts: TrainOptions
    strat: Strategy
    spec: ModelSpec | None
    device: str
    ctx: DistContext
    warmup: int
    accum: int
    precision: str

    @property
    def shape(self) -> TrainShape:
        return self.opts.shape

    @property
    def tokens_per_device_step(self) -> int:
        return self.shape.micro_batch * self.accum * self.shape.seq_len


def resolve_device(device: str) -> str:
    """``local`` → ``cuda`` when CUDA is usable, else ``cpu``; others as given."""
    if device != "local":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


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


def spec_of(model: Any) -> ModelSpec | None:
    if isinstance(model, ModelSpec):
        return model
    try:
        return ModelSpec.from_torch_module(model)
    except Exception:
        return None


def model_label(model: Any, name: str | None) -> str:
    if name:
        return name
    return model.name if isinstance(model, ModelSpec) else type(model).__name__


def plan_training(model: Any, opts: TrainOptions) -> TrainPlan:
    """Validate and decide: device, process group, accumulation, precision; refuse what cannot fit."""
    validate_train_options(opts)
    strat = parse_strategy(opts.strategy)
    warmup = max(opts.warmup, 1) if strat.compile else opts.warmup  # never measure the compiling step
    device = "cpu" if opts.dry_run else resolve_device(opts.device)
    ctx = DistContext() if opts.dry_run else init_distributed(device)
    try:
        device = device_for(device, ctx)
        spec = spec_of(model)
        accum = grad_accum_steps(opts.shape, strat.grad_accum, ctx.world_size)
        if spec is not None and opts.check_memory and not opts.dry_run and isinstance(model, ModelSpec):
            _check_fits(spec, opts, device)
    except BaseException:
        shutdown(ctx)
        raise
    precision = strat.precision or opts.shape.precision
    return TrainPlan(opts, strat, spec, device, ctx, warmup, accum, precision)


def _check_fits(spec: ModelSpec, opts: TrainOptions, device: str) -> None:
    from mlcost.measure.torch_models import training_memory_bytes

    shape = opts.shape
    need = training_memory_bytes(spec, micro_batch=shape.micro_batch, seq_len=shape.seq_len)
    free = available_memory_bytes(device)
    ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    if free is not None and not device.startswith("cuda"):
        free /= ranks
    what = f"model {spec.name!r} at --micro-batch {shape.micro_batch} × --seq-len {shape.seq_len}"
    check_fits(need, free, what=what, device=device, headroom=MEMORY_HEADROOM)


def _record(model: Any, plan: TrainPlan, predicted: dict[str, Any]) -> Any:
    from mlcost.measure.provenance import collect_provenance
    from mlcost.measure.record import RunRecord

    opts, shape = plan.opts, plan.shape
    supported, support_note = precision_support(plan.precision, plan.device)
    config: dict[str, Any] = {
        "shape": shape.to_dict(),
        "precision": plan.precision,
        "precision_supported": supported,
        "precision_note": support_note,
        "grad_accum": plan.accum,
        "global_batch": shape.micro_batch * plan.accum * plan.ctx.world_size,
        "tokens_per_step": plan.tokens_per_device_step * plan.ctx.world_size,
        "steps": opts.steps,
        "warmup": plan.warmup,
        "strategy": plan.strat.to_dict(),
        "strategy_levers": plan.strat.descriptions(),
        "data": opts.data if opts.data is not None else "synthetic",
        "seed": opts.seed,
        "lr": opts.lr,
        "attn_implementation": opts.attn_implementation,
        "dry_run": opts.dry_run,
        "backend": plan.ctx.backend,
        "model_spec": plan.spec.to_dict() if plan.spec is not None else None,
    }
    extra: dict[str, Any] = {}
    if opts.dry_run and "dry_run" in RunRecord.__dataclass_fields__:
        extra["dry_run"] = True
    return RunRecord(
        kind="train",
        model=model_label(model, opts.model_name),
        config=config,
        strategy=plan.strat.name,
        device=plan.device,
        world_size=plan.ctx.world_size,
        predicted=predicted,
        provenance=collect_provenance(import_torch=not opts.dry_run),
        **extra,
    )


def run_training(
    model: ModelSpec | Any,
    options: TrainOptions | TrainJob | TrainShape | None = None,
    *,
    ledger: Any = None,
    meters: Any = None,
    progress: ProgressFn | None = None,
    **kwargs: Any,
) -> Any:
    """Train ``model`` for ``warmup + steps`` optimizer steps and record the run.

    Args:
        model: a :class:`ModelSpec` (built as a ``transformers`` model with random weights) or an
            ``nn.Module`` (called as ``model(input_ids=..., labels=...)`` if it is a Hugging Face model,
            else ``model(input_ids)`` returning logits, a loss or an object with ``.loss``).
        options: :class:`TrainOptions`; or a TrainJob / :class:`TrainShape` with the other options as
            keyword arguments (``TrainOptions.of(job, **kwargs)``).
        ledger: a :class:`~mlcost.measure.ledger.Ledger`, or None (the record is only returned).
        meters: a MeterSet (default ``select_meters(device)``; a dry run replays the prediction).
        progress: called as ``progress(steps_done, total_steps)`` after each step.

    Returns:
        The :class:`~mlcost.measure.record.RunRecord` (re-read from the ledger when one is given).
    """
    opts = options if isinstance(options, TrainOptions) else TrainOptions.of(options, **kwargs)
    plan = plan_training(model, opts)
    try:
        predicted = predict_train(
            plan.spec, plan.shape, plan.device, plan.ctx.world_size, plan.precision, opts.steps, opts.facts
        )
        record = _record(model, plan, predicted)
        if opts.dry_run:
            meters = as_meter_set(meters) or _dry_run_meters(predicted)
        run = RunLifecycle(
            record,
            ledger=ledger,
            meters=meters,
            cost=opts.cost,
            facts=opts.facts,
            is_main=plan.ctx.is_main,
        )
        with run.active():
            run.open()
            if opts.dry_run:
                step_fn, flops = _dry_run_steps(run, plan, predicted)
            else:
                step_fn, flops = _torch_steps(run, model, plan)
            loop = run.loop
            loop.progress = progress
            status = loop.drive(step_fn, plan.warmup + opts.steps)
            run.finish(
                status,
                _final_metrics(loop, plan, flops),
                _diverged_error(loop) if status == "diverged" else None,
            )
        return run.record
    finally:
        shutdown(plan.ctx)


def _diverged_error(loop: StepLoop) -> str:
    return f"loss became {loop.loss_last} at step {loop.steps_done}"


def _final_metrics(loop: StepLoop, plan: TrainPlan, flops: dict[str, Any]) -> dict[str, Any]:
    if not loop.meters.timer.times_s():
        return loop.partial_metrics()
    out = loop.summary()
    out.update(
        flops_metrics(
            out,
            model_flops_per_step=flops.get("model"),
            hardware_flops_per_step=flops.get("hardware"),
            source=flops["source"],
            device=plan.device,
            precision=flops.get("precision", plan.precision),
            world_size=plan.ctx.world_size,
            facts=plan.opts.facts,
        )
    )
    if flops.get("dry_run"):
        out.update(mfu=None, mfu_peak_flops_per_s=None, mfu_peak_source="dry run: no hardware measured")
        out["mfu_unavailable_reason"] = "dry run: no hardware measured"
    if plan.strat.compile and loop.warmup_times_s and out.get("step_time_s"):
        out["compile_time_s"] = max(0.0, loop.warmup_times_s[0] - float(out["step_time_s"]))
    out.update(flops.get("extra", {}))
    return out


# ---- the dry run --------------------------------------------------------------------------------------


def _dry_run_meters(predicted: dict[str, Any]) -> Any:
    from mlcost.measure.meters import ReplayMeters

    step_s = predicted.get("step_time_s")
    if not step_s:
        return as_meter_set(ReplayMeters.example())
    return as_meter_set(
        ReplayMeters.from_readings(
            step_times_s=[step_s],
            energy_j=0.0,
            peak_bytes=int(predicted.get("peak_memory_bytes") or 0),
            detail="dry run: the estimator's predicted step time; no energy",
        )
    )


def _dry_run_steps(
    run: RunLifecycle, plan: TrainPlan, predicted: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """Replayed steps through the same loop; FLOPs are the estimator's count for the spec."""
    StepLoop(run, warmup=plan.warmup, checkpoint_every=plan.opts.checkpoint_every)
    tokens, accum = plan.tokens_per_device_step, plan.accum

    def step() -> StepOutput:
        return StepOutput(tokens=tokens, micro_batches=accum)

    flops = {
        "model": predicted.get("model_flops_per_step"),
        "source": "the estimator's FLOP count for the spec (dry run: nothing executed)",
        "dry_run": True,
        "precision": "fp32",
    }
    return step, flops


# ---- the real run -------------------------------------------------------------------------------------


def _module(model: Any, plan: TrainPlan) -> tuple[Any, int]:
    from mlcost.measure.torch_models import build_model, vocab_size_of

    if isinstance(model, ModelSpec):
        opts = plan.opts
        module = build_model(
            model, attn_implementation=opts.attn_implementation, seed=opts.seed, device=plan.device
        )
    else:
        module = model.to(plan.device)
        module.train()
    vocab = vocab_size_of(module, plan.spec.vocab_size if plan.spec is not None else None)
    if vocab is None:
        raise SpecError(
            "cannot tell the vocabulary size of this module",
            hint="give it a .config.vocab_size or pass a ModelSpec",
        )
    return module, vocab


def _count_flops(module: Any, plan: TrainPlan, vocab: int) -> dict[str, Any]:
    """Model FLOPs of one optimizer step on this rank (× world size: the job's), and with checkpointing
    the hardware FLOPs that include the recomputed forward. Checkpointing is switched on here."""
    from mlcost.measure.strategies import enable_checkpointing
    from mlcost.measure.torch_models import count_model_flops

    shape, world = plan.shape, plan.ctx.world_size
    out: dict[str, Any] = {"source": FLOPS_SOURCE, "extra": {}}
    checkpointing = plan.strat.checkpointing or shape.recompute in ("selective", "full")
    if not plan.opts.count_flops:
        out["source"] = "not counted (count_flops=False)"
        if checkpointing:
            enable_checkpointing(module)
        return out
    flops = count_model_flops(module, shape.micro_batch, shape.seq_len, vocab_size=vocab)
    out["model"] = float(flops["total_flops"] * plan.accum * world)
    out["extra"]["flops_per_micro_batch"] = flops
    if checkpointing:
        enable_checkpointing(module)
        hw = count_model_flops(module, shape.micro_batch, shape.seq_len, vocab_size=vocab)["total_flops"]
        out["hardware"] = float(hw * plan.accum * world)
    return out


def _torch_steps(run: RunLifecycle, model: Any, plan: TrainPlan) -> tuple[Any, dict[str, Any]]:
    """Build, count, prepare; return the step function for the loop (created here, so the memory meter is
    reset before the model is built) and the FLOPs."""
    torch = require("torch", "mlcost measure", extra="measure")
    from mlcost.measure.data import make_dataset, make_loader
    from mlcost.measure.strategies import prepare
    from mlcost.measure.torch_models import param_count

    cuda = plan.device.startswith("cuda")
    sync = (lambda: torch.cuda.synchronize(torch.device(plan.device))) if cuda else None
    StepLoop(
        run,
        warmup=plan.warmup,
        checkpoint_every=plan.opts.checkpoint_every,
        sync=sync,
        ctx=plan.ctx,
        device=plan.device,
    )
    module, vocab = _module(model, plan)
    flops = _count_flops(module, plan, vocab)
    opts, shape = plan.opts, plan.shape
    dataset = make_dataset(vocab_size=vocab, seq_len=shape.seq_len, path=opts.data, seed=opts.seed)
    loader = make_loader(
        dataset,
        micro_batch=shape.micro_batch,
        workers=plan.strat.workers,
        rank=plan.ctx.rank,
        world_size=plan.ctx.world_size,
        pin_memory=cuda,
    )
    prep = prepare(
        module,
        plan.strat,
        precision=plan.precision,
        device=plan.device,
        recompute=shape.recompute,
        lr=opts.lr,
    )
    flops["precision"] = prep.precision
    flops["extra"].update(param_count=param_count(module), applied=prep.notes, precision=prep.precision)
    return _step_fn(torch, prep, loader, plan), flops


def _step_fn(torch: Any, prep: Any, loader: Any, plan: TrainPlan) -> Any:
    """One optimizer step: ``accum`` micro-batches (DDP syncs gradients on the last), then the update.
    The loss reported is the mean over the micro-batches (what a trainer logs)."""
    from mlcost.measure.torch_models import compute_loss

    accum, device = plan.accum, plan.device
    is_ddp = plan.strat.parallel == "ddp"
    tokens = plan.tokens_per_device_step

    def step() -> StepOutput:
        prep.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=device)
        for k in range(accum):
            ids = next(loader).to(device, non_blocking=True)
            last = k == accum - 1
            no_sync = (
                prep.model.no_sync()
                if is_ddp and not last and hasattr(prep.model, "no_sync")
                else contextlib.nullcontext()
            )
            with no_sync:
                with prep.autocast():
                    loss = compute_loss(prep.model, ids, ids) / accum
                (prep.scaler.scale(loss) if prep.scaler is not None else loss).backward()
            total += loss.detach().float()
        if prep.scaler is not None:
            prep.scaler.step(prep.optimizer)
            prep.scaler.update()
        else:
            prep.optimizer.step()
        return StepOutput(loss=float(total.item()), tokens=tokens, micro_batches=accum)

    return step
