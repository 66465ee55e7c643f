"""Training strategies: named levers that change how a step runs, composable with ``+``
(e.g. ``bf16+compile+grad-accum=4``). Each lever says what it does and when it pays.

Parsing (:func:`parse_strategy`) needs no torch; applying a strategy (:func:`prepare`) does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlcost.errors import SpecError, UnknownNameError, require

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass(frozen=True)
class Lever:
    """One named lever.

    Attributes:
        name: what users type (``bf16``, ``grad-accum=N``).
        description: what it does.
        pays_when: on which hardware and workloads it is expected to pay.
        takes_value: ``name=N`` form.
    """

    name: str
    description: str
    pays_when: str
    takes_value: bool = False


LEVERS: dict[str, Lever] = {
    lever.name: lever
    for lever in (
        Lever(
            "baseline",
            "fp32 eager PyTorch, default AdamW, no recomputation, data loaded in the main process",
            "the reference every other strategy is compared with",
        ),
        Lever(
            "bf16",
            "bf16 autocast (fp32 master weights and optimizer states)",
            "on devices with bf16 matrix units (A100/H100, CPUs with AVX512_BF16 or AMX); much slower elsewhere",
        ),
        Lever(
            "fp16",
            "fp16 autocast; on CUDA with a GradScaler (dynamic loss scaling)",
            "on GPUs with fp16 tensor cores (V100 and later); CPUs without AVX512_FP16/AMX-FP16 emulate it",
        ),
        Lever(
            "compile",
            "torch.compile of the model (compile time measured apart, excluded from step time)",
            "on long runs where the one-off compile time (minutes on a small CPU) is amortised; fuses element-wise ops",
        ),
        Lever(
            "checkpointing",
            "activation checkpointing: recompute activations in the backward pass",
            "when activation memory limits the batch; costs about one extra forward (~25-33% more time)",
        ),
        Lever(
            "grad-accum",
            "N micro-batches per optimizer step (gradient accumulation)",
            "when the wanted global batch does not fit in memory; amortises the optimizer step over N micro-batches",
            takes_value=True,
        ),
        Lever(
            "foreach",
            "AdamW with foreach (multi-tensor) kernels",
            "on CUDA, where it launches one kernel for many tensors; no multi-tensor kernels on CPU",
        ),
        Lever(
            "fused",
            "AdamW with the fused single-kernel implementation (CUDA; CPU in torch >= 2.4)",
            "when the optimizer step is a visible share of the step (small models, many parameters per FLOP)",
        ),
        Lever(
            "workers",
            "N DataLoader worker processes",
            "when data loading or tokenisation is on the critical path; synthetic tokens rarely need it",
            takes_value=True,
        ),
        Lever(
            "ddp",
            "DistributedDataParallel over the torchrun processes (gloo on CPU, NCCL on CUDA)",
            "with several devices, when the model fits on one; needs torchrun",
        ),
        Lever(
            "fsdp",
            "FullyShardedDataParallel (ZeRO-3 style sharding of weights, grads and optimizer states)",
            "when weights + optimizer states do not fit on one device; needs torchrun",
        ),
    )
}


@dataclass(frozen=True, kw_only=True)
class Strategy:
    """A parsed strategy.

    Attributes:
        name: canonical text (levers joined with ``+``).
        precision: ``bf16``/``fp16`` from a lever, or None to use the job's precision.
        compile: torch.compile the model.
        checkpointing: activation checkpointing.
        grad_accum: micro-batches per optimizer step, or None to derive it from the job.
        optimizer_impl: ``default``, ``foreach`` or ``fused`` AdamW.
        workers: DataLoader worker processes.
        parallel: ``ddp``, ``fsdp`` or None.
    """

    name: str = "baseline"
    precision: str | None = None
    compile: bool = False
    checkpointing: bool = False
    grad_accum: int | None = None
    optimizer_impl: str = "default"
    workers: int = 0
    parallel: str | None = None

    @property
    def levers(self) -> list[str]:
        return self.name.split("+")

    def descriptions(self) -> list[str]:
        return [f"{part}: {LEVERS[part.split('=')[0]].description}" for part in self.levers]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_strategy(text: str | Strategy) -> Strategy:
    """Parse ``"bf16+compile+grad-accum=4"``. Unknown levers raise :class:`UnknownNameError`."""
    if isinstance(text, Strategy):
        return text
    parts = [p.strip().lower() for p in str(text).split("+") if p.strip()]
    if not parts:
        parts = ["baseline"]
    fields: dict[str, Any] = {}
    seen: list[str] = []
    for part in parts:
        key, _, value = part.partition("=")
        key = {"grad_accum": "grad-accum", "gradient-checkpointing": "checkpointing", "fp32": "baseline"}.get(
            key, key
        )
        if key not in LEVERS:
            raise UnknownNameError(
                "strategy", key, LEVERS, extra_hint="combine levers with '+', e.g. bf16+compile"
            )
        lever = LEVERS[key]
        if lever.takes_value:
            try:
                n = int(value)
            except ValueError:
                raise SpecError(
                    f"strategy {key!r} needs a positive integer, e.g. {key}=4, got {part!r}"
                ) from None
            if n < (1 if key == "grad-accum" else 0):
                raise SpecError(
                    f"strategy {part!r}: the value must be {'>= 1' if key == 'grad-accum' else '>= 0'}"
                )
            fields["grad_accum" if key == "grad-accum" else "workers"] = n
            seen.append(f"{key}={n}")
            continue
        if value:
            raise SpecError(f"strategy {key!r} takes no value, got {part!r}")
        seen.append(key)
        if key in ("bf16", "fp16"):
            if fields.get("precision") not in (None, key):
                raise SpecError("strategy combines bf16 and fp16; choose one")
            fields["precision"] = key
        elif key == "compile":
            fields["compile"] = True
        elif key == "checkpointing":
            fields["checkpointing"] = True
        elif key in ("foreach", "fused"):
            if fields.get("optimizer_impl") not in (None, key):
                raise SpecError("strategy combines foreach and fused; choose one")
            fields["optimizer_impl"] = key
        elif key in ("ddp", "fsdp"):
            if fields.get("parallel") not in (None, key):
                raise SpecError("strategy combines ddp and fsdp; choose one")
            fields["parallel"] = key
    named = [s for s in dict.fromkeys(seen) if s != "baseline"] or ["baseline"]
    return Strategy(name="+".join(named), **fields)


# ---- hardware support -------------------------------------------------------------------------------


def cpu_flags() -> set[str]:
    """CPU ISA flags, from the one CPU reader (:func:`mlcost.catalog.host.cpu_flags`)."""
    from mlcost.catalog.host import cpu_flags as host_flags

    return set(host_flags())


def precision_support(precision: str, device: str) -> tuple[bool, str]:
    """Whether ``device`` has native units for ``precision``, and why (for the verdict column)."""
    if precision in ("fp32", "tf32"):
        return True, "fp32 runs natively everywhere"
    if device.startswith("cuda"):
        torch = require("torch", "mlcost measure", extra="measure")
        if not torch.cuda.is_available():
            return False, "no CUDA device"
        major, _ = torch.cuda.get_device_capability()
        if precision == "bf16":
            ok = bool(torch.cuda.is_bf16_supported())
            return ok, "bf16 tensor cores" if ok else "this GPU has no bf16 tensor cores (needs sm_80+)"
        if precision == "fp16":
            return major >= 7, "fp16 tensor cores" if major >= 7 else "no fp16 tensor cores before sm_70"
        return False, f"{precision} autocast is not a measured strategy"
    flags = cpu_flags()
    if precision == "bf16":
        have = sorted(flags & {"avx512_bf16", "amx_bf16"})
        return (
            (True, f"CPU has {', '.join(have)}")
            if have
            else (False, "no bf16 units on this CPU (no AVX512_BF16/AMX)")
        )
    if precision == "fp16":
        have = sorted(flags & {"avx512_fp16", "amx_fp16"})
        return (
            (True, f"CPU has {', '.join(have)}")
            if have
            else (False, "no fp16 units on this CPU (no AVX512_FP16/AMX-FP16)")
        )
    return False, f"{precision} is not supported on {device}"


def autocast_dtype(precision: str) -> torch.dtype | None:
    torch = require("torch", "mlcost measure", extra="measure")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


# ---- applying a strategy ----------------------------------------------------------------------------


@dataclass
class Prepared:
    """A model and optimizer set up for a strategy.

    Attributes:
        model: the module to call (possibly wrapped in DDP/FSDP and compiled).
        base_model: the unwrapped module.
        optimizer: AdamW.
        precision: compute precision in use (``fp32``, ``bf16``, ``fp16``).
        autocast: a factory of the autocast context for one forward.
        scaler: a GradScaler (fp16 on CUDA) or None.
        notes: what was applied, for the record.
    """

    model: Any
    base_model: Any
    optimizer: Any
    precision: str
    autocast: Callable[[], contextlib.AbstractContextManager[Any]]
    scaler: Any
    notes: list[str]


def enable_checkpointing(model: Any) -> str:
    """Activation checkpointing: ``gradient_checkpointing_enable()`` on Hugging Face models; otherwise each
    child of the module's largest ``nn.ModuleList`` is wrapped to run under ``torch.utils.checkpoint``."""
    torch = require("torch", "mlcost measure", extra="measure")
    from torch.utils.checkpoint import checkpoint

    if getattr(model, "_mlcost_checkpointing", None):
        return str(model._mlcost_checkpointing)
    if hasattr(model, "gradient_checkpointing_enable"):
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(model, "config"):
            model.config.use_cache = False
        model._mlcost_checkpointing = "gradient_checkpointing_enable() (transformers)"
        return str(model._mlcost_checkpointing)
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    if not lists:
        raise SpecError(
            "activation checkpointing needs the model's blocks in an nn.ModuleList",
            hint="use a transformers model, or keep blocks in an nn.ModuleList",
        )
    blocks = max(lists, key=len)

    module_base: Any = torch.nn.Module

    class _Checkpointed(module_base):  # type: ignore[misc,valid-type]
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            return checkpoint(self.inner, *args, use_reentrant=False, **kwargs)

    for i in range(len(blocks)):
        blocks[i] = _Checkpointed(blocks[i])
    model._mlcost_checkpointing = f"torch.utils.checkpoint around {len(blocks)} blocks"
    return str(model._mlcost_checkpointing)


def make_optimizer(params: Any, impl: str, device: str, lr: float = 1e-4) -> tuple[Any, str]:
    """AdamW with the chosen implementation; ``fused`` falls back to the default where unsupported."""
    torch = require("torch", "mlcost measure", extra="measure")
    if impl == "foreach":
        return torch.optim.AdamW(params, lr=lr, foreach=True), "AdamW(foreach=True)"
    if impl == "fused":
        try:
            return torch.optim.AdamW(params, lr=lr, fused=True), "AdamW(fused=True)"
        except (RuntimeError, TypeError) as exc:
            return torch.optim.AdamW(params, lr=lr), f"AdamW (fused unsupported on {device}: {exc})"
    return torch.optim.AdamW(params, lr=lr, foreach=False), "AdamW(foreach=False)"


def prepare(
    model: Any, strategy: Strategy, *, precision: str, device: str, recompute: str = "none", lr: float = 1e-4
) -> Prepared:
    """Apply a strategy: checkpointing, DDP/FSDP wrap (needs an initialised process group), optimizer,
    autocast and torch.compile (last, so compile sees the wrapped model)."""
    torch = require("torch", "mlcost measure", extra="measure")
    notes: list[str] = []
    precision = strategy.precision or precision
    if precision not in ("fp32", "tf32", "bf16", "fp16"):
        raise SpecError(f"mlcost measure runs fp32, tf32, bf16 or fp16, got precision {precision!r}")
    base = model
    if strategy.checkpointing or recompute in ("selective", "full"):
        notes.append(enable_checkpointing(base))
    if precision == "tf32" and device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        notes.append("TF32 matmuls allowed")
    wrapped: Any = base
    if strategy.parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        if not torch.distributed.is_initialized():
            raise SpecError(
                "strategy 'ddp' needs torchrun",
                hint="torchrun --nproc_per_node N -m mlcost measure train ...",
            )
        ids = [torch.device(device).index] if device.startswith("cuda") else None
        wrapped = DDP(base, device_ids=ids)
        notes.append(f"DistributedDataParallel ({torch.distributed.get_backend()})")
    elif strategy.parallel == "fsdp":
        if not torch.distributed.is_initialized():
            raise SpecError(
                "strategy 'fsdp' needs torchrun",
                hint="torchrun --nproc_per_node N -m mlcost measure train ...",
            )
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        wrapped = FSDP(
            base, device_id=torch.device(device) if device.startswith("cuda") else None, use_orig_params=True
        )
        notes.append(f"FullyShardedDataParallel ({torch.distributed.get_backend()})")
    optimizer, opt_note = make_optimizer(wrapped.parameters(), strategy.optimizer_impl, device, lr=lr)
    notes.append(opt_note)
    dtype = autocast_dtype(precision)
    device_type = "cuda" if device.startswith("cuda") else "cpu"

    def _autocast() -> contextlib.AbstractContextManager[Any]:
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device_type, dtype=dtype)

    if dtype is not None:
        notes.append(f"autocast({device_type}, {precision})")
    scaler = None
    if precision == "fp16" and device_type == "cuda":
        scaler = torch.amp.GradScaler("cuda")
        notes.append("GradScaler")
    if strategy.compile:
        wrapped = torch.compile(wrapped)
        notes.append("torch.compile")
    return Prepared(
        model=wrapped,
        base_model=base,
        optimizer=optimizer,
        precision=precision,
        autocast=_autocast,
        scaler=scaler,
        notes=notes,
    )


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch intra-op threads (None leaves them)."""
    torch = require("torch", "mlcost measure", extra="measure")
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def in_torchrun() -> bool:
    """True when launched by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


# ---- does it pay? -----------------------------------------------------------------------------------

#: Throughput changes within this relative band are noise on a shared CPU (same-run ratios only).
NOISE_BAND = 0.05


@dataclass(frozen=True)
class Verdict:
    """Whether a strategy pays against the baseline on the hardware it ran on.

    Attributes:
        strategy: the strategy's name.
        speedup: tokens/s of the strategy / tokens/s of the baseline (>1 is faster), or None.
        memory_ratio: peak memory / baseline peak memory, or None.
        pays: True when it is faster beyond the noise band (compile: when its compile time is
            recovered within ``horizon_steps``), or saves memory at an acceptable cost.
        reason: one line a user can act on.
    """

    strategy: str
    speedup: float | None
    memory_ratio: float | None
    pays: bool
    reason: str

    @property
    def label(self) -> str:
        return "pays" if self.pays else "does not pay on this hardware"

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "label": self.label}


def judge(
    strategy: str | Strategy,
    metrics: dict[str, Any],
    baseline: dict[str, Any],
    *,
    status: str = "completed",
    device: str = "cpu",
    horizon_steps: int = 10_000,
    interval: Any = None,
) -> Verdict:
    """Compare a strategy's metrics with the baseline's (same model, data and machine).

    With ``interval`` (a :class:`~mlcost.measure.compare.SpeedupInterval`), "faster" and "slower" need the
    interval to exclude 1.0; otherwise the speed-up is read against the ±``NOISE_BAND`` band."""
    strat = parse_strategy(strategy)
    if status != "completed":
        return Verdict(strat.name, None, None, False, f"run {status}")
    tps, base_tps = metrics.get("tokens_per_s"), baseline.get("tokens_per_s")
    speedup = tps / base_tps if tps and base_tps else None
    mem, base_mem = metrics.get("peak_memory_bytes"), baseline.get("peak_memory_bytes")
    mem_ratio = mem / base_mem if mem and base_mem else None
    if strat.name == "baseline":
        return Verdict(strat.name, 1.0, 1.0, True, "reference")
    if speedup is None:
        return Verdict(strat.name, None, mem_ratio, False, "no throughput measured")
    if interval is not None:
        speedup = interval.speedup
        faster, slower = interval.verdict == "faster", interval.verdict == "slower"
        ci = f" (95% CI {interval.low:.2f}–{interval.high:.2f})"
        if interval.verdict == "no clear difference":
            return _judge_unclear(strat, speedup, mem_ratio, ci, device)
    else:
        faster = speedup >= 1 + NOISE_BAND
        slower = speedup <= 1 - NOISE_BAND
        ci = ""
    pace = (f"{speedup:.2f}× faster" if speedup >= 1 else f"{1 / speedup:.1f}× slower") + ci
    if strat.precision:
        ok, why = precision_support(strat.precision, device)
        if not ok and not faster:
            return Verdict(strat.name, speedup, mem_ratio, False, f"{why}: {pace}")
    if strat.compile and faster:
        compiled = _judge_compile(strat, speedup, mem_ratio, pace, metrics, baseline, horizon_steps)
        if compiled is not None:
            return compiled
    if faster:
        return Verdict(strat.name, speedup, mem_ratio, True, pace)
    saves_memory = mem_ratio is not None and mem_ratio <= 1 - NOISE_BAND
    if strat.checkpointing or strat.grad_accum:
        if saves_memory and mem_ratio is not None:
            return Verdict(
                strat.name,
                speedup,
                mem_ratio,
                True,
                f"pays when memory-bound: {(1 - mem_ratio) * 100:.0f}% less peak memory, {pace}",
            )
        note = "no memory saving measured" + (
            " (peak RSS is coarse on CPU)" if not device.startswith("cuda") else ""
        )
        return Verdict(strat.name, speedup, mem_ratio, False, f"{pace}; {note}")
    if strat.optimizer_impl == "foreach" and not device.startswith("cuda"):
        return Verdict(strat.name, speedup, mem_ratio, False, f"no multi-tensor kernels on CPU: {pace}")
    if slower:
        return Verdict(strat.name, speedup, mem_ratio, False, pace)
    return Verdict(
        strat.name, speedup, mem_ratio, False, f"no measurable gain ({pace}, within ±{NOISE_BAND:.0%})"
    )


def _judge_unclear(strat: Strategy, speedup: float, mem_ratio: float | None, ci: str, device: str) -> Verdict:
    """The interval includes 1.0: no speed verdict; memory may still pay for checkpointing/accumulation."""
    if (strat.checkpointing or strat.grad_accum) and mem_ratio is not None and mem_ratio <= 1 - NOISE_BAND:
        return Verdict(
            strat.name,
            speedup,
            mem_ratio,
            True,
            f"pays when memory-bound: {(1 - mem_ratio) * 100:.0f}% less peak memory; "
            f"no clear speed difference{ci}",
        )
    why = ""
    if strat.precision:
        ok, note = precision_support(strat.precision, device)
        why = "" if ok else f"{note}; "
    return Verdict(strat.name, speedup, mem_ratio, False, f"{why}no clear difference: {speedup:.2f}×{ci}")


def _judge_compile(
    strat: Strategy,
    speedup: float,
    mem_ratio: float | None,
    pace: str,
    metrics: dict[str, Any],
    baseline: dict[str, Any],
    horizon_steps: int,
) -> Verdict | None:
    """A faster compiled run pays only once its compile time is recovered within ``horizon_steps``."""
    compile_s = metrics.get("compile_time_s") or 0.0
    step, base_step = metrics.get("step_time_s"), baseline.get("step_time_s")
    tokens, base_tokens = metrics.get("tokens_per_step"), baseline.get("tokens_per_step")
    if not (step and base_step and tokens and base_tokens):
        return None
    saved_per_step = base_step * tokens / base_tokens - step
    breakeven = compile_s / saved_per_step if saved_per_step > 0 else float("inf")
    if breakeven > horizon_steps:
        why = f"{pace}, but compiling took {compile_s:.0f} s: pays only after ~{breakeven:.0f} steps"
        return Verdict(strat.name, speedup, mem_ratio, False, why)
    why = f"{pace}; compile time {compile_s:.0f} s recovered after ~{breakeven:.0f} steps"
    return Verdict(strat.name, speedup, mem_ratio, True, why)
