"""Check a measured run's options before torch is imported or a model is built, and write nothing when
they are wrong: shapes, counts, precisions, devices, strategies, data files and cost inputs. Each error is
a :class:`~mlcost.errors.SpecError` whose message names the CLI flag that sets the value (the Python API
uses the same names), e.g. ``--d-model must be a positive integer, got 0``.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from mlcost.errors import SpecError
from mlcost.measure.options import (
    ATTN_IMPLEMENTATIONS,
    PRECISIONS,
    RECOMPUTE,
    SERVE_ENGINES,
    SERVE_PRECISIONS,
    CostOptions,
    RunOptions,
    ServeOptions,
    TrainOptions,
    grad_accum_steps,
)

_DEVICE = re.compile(r"^(cpu|local|cuda|cuda:\d+)$")
#: What the callers may pass as ``device``.
DEVICE_NAMES = "cpu, cuda, cuda:N or local"


def positive_int(flag: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"{flag} must be a positive integer, got {value!r}", hint=f"give {flag} 1 or more")
    return value


def non_negative_int(flag: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(f"{flag} must be an integer >= 0, got {value!r}", hint=f"give {flag} 0 or more")
    return value


def finite_at_least(flag: str, value: float | None, low: float, *, strict: bool = False) -> None:
    if value is None:
        return
    bad = not isinstance(value, (int, float)) or not math.isfinite(value)
    bad = bad or (value <= low if strict else value < low)
    if bad:
        op = ">" if strict else ">="
        raise SpecError(f"{flag} must be a finite number {op} {low:g}, got {value!r}")


def choice(flag: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SpecError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")


def cuda_present() -> bool:
    """An NVIDIA driver is loaded (read from /proc and /dev; no torch import)."""
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")


def check_device(device: str) -> None:
    """``--device`` is a known name and, for CUDA, this machine has an NVIDIA driver."""
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise SpecError(f"--device must be {DEVICE_NAMES}, got {device!r}")
    if device.startswith("cuda") and not cuda_present():
        raise SpecError(
            f"--device {device}: this machine has no NVIDIA GPU driver",
            hint="use --device cpu (or --device local: CUDA when present, else the CPU)",
        )


def check_data(path: str | None) -> None:
    """``--data`` exists, is a readable, non-empty file."""
    if path is None:
        return
    p = Path(path)
    if not p.exists():
        raise SpecError(
            f"--data {path}: no such file", hint="give a text file, or omit --data for synthetic tokens"
        )
    if not p.is_file():
        raise SpecError(f"--data {path} is not a file", hint="give a text file (byte-level tokens)")
    if not os.access(p, os.R_OK):
        raise SpecError(f"--data {path} is not readable", hint="check the file's permissions")
    if p.stat().st_size == 0:
        raise SpecError(f"--data {path} is empty", hint="give a text file with some text in it")


def check_cost(cost: CostOptions) -> None:
    finite_at_least("--price-usd-per-h", cost.price_usd_per_device_h, 0.0)
    finite_at_least("--pue", cost.pue, 1.0)
    finite_at_least("--carbon-kg-per-kwh", cost.carbon_kg_per_kwh, 0.0)


def _check_common(opts: RunOptions) -> None:
    check_device(opts.device)
    non_negative_int("--warmup", opts.warmup)
    non_negative_int("--seed", opts.seed)
    positive_int("checkpoint_every", opts.checkpoint_every)
    choice("attn_implementation (--flash-attention)", opts.attn_implementation, ATTN_IMPLEMENTATIONS)
    check_cost(opts.cost)


def validate_train_options(opts: TrainOptions) -> None:
    """Every check ``measure train`` can make without torch (SpecError naming the flag)."""
    from mlcost.measure.strategies import parse_strategy

    _check_common(opts)
    shape = opts.shape
    positive_int("--micro-batch", shape.micro_batch)
    positive_int("--seq-len", shape.seq_len)
    if shape.global_batch is not None:
        positive_int("--global-batch", shape.global_batch)
    choice("--precision", shape.precision, PRECISIONS)
    choice("--recompute", shape.recompute, RECOMPUTE)
    positive_int("--steps", opts.steps)
    finite_at_least("lr", opts.lr, 0.0, strict=True)
    strat = parse_strategy(opts.strategy)
    world = 1 if opts.dry_run else _env_world_size()
    grad_accum_steps(shape, strat.grad_accum, world)  # --global-batch divisible by micro-batch × ranks
    if strat.parallel and world < 2 and not opts.dry_run:
        raise SpecError(
            f"--strategy {strat.name}: {strat.parallel!r} needs several processes",
            hint=f"launch with torchrun: python -m torch.distributed.run --nproc_per_node 2 -m mlcost measure "
            f"train ... --strategy {strat.name}",
        )
    check_data(opts.data)


def _env_world_size() -> int:
    text = os.environ.get("WORLD_SIZE", "1") or "1"
    try:
        value = int(text)
    except ValueError:
        raise SpecError(
            f"WORLD_SIZE must be a positive integer, got {text!r}", hint="unset it or launch with torchrun"
        ) from None
    if value < 1:
        raise SpecError(
            f"WORLD_SIZE must be a positive integer, got {text!r}", hint="unset it or launch with torchrun"
        )
    return value


def validate_serve_options(opts: ServeOptions) -> None:
    """Every check ``measure serve`` can make without torch (SpecError naming the flag)."""
    _check_common(opts)
    positive_int("--prompt-len", opts.shape.prompt_len)
    positive_int("--output-len", opts.shape.output_len)
    positive_int("--batch", opts.shape.batch)
    positive_int("--requests", opts.requests)
    choice("--precision", opts.shape.precision, SERVE_PRECISIONS)
    choice("--engine", opts.engine, SERVE_ENGINES)
    if opts.engine == "hf":
        if opts.rps is None:
            raise SpecError("--engine hf needs --rps", hint="give the arrival rate, e.g. --rps 2")
        finite_at_least("--rps", opts.rps, 0.0, strict=True)
        positive_int("--max-batch-tokens", opts.max_batch_tokens)
        positive_int("--max-seqs", opts.max_seqs)
    elif opts.rps is not None:
        raise SpecError(
            "--rps needs --engine hf", hint="a request rate drives the continuous-batching engine"
        )


def validate_overrides(
    *, layers: int | None, d_model: int | None, heads: int | None, vocab: int | None
) -> None:
    """The model-shape overrides: positive when given (0 never means "the preset's value"), and
    ``--heads`` divides ``--d-model`` when both are given."""
    for flag, value in (("--layers", layers), ("--d-model", d_model), ("--heads", heads), ("--vocab", vocab)):
        if value is not None:
            positive_int(flag, value)
    if d_model is not None and heads is not None and d_model % heads:
        raise SpecError(
            f"--heads {heads} does not divide --d-model {d_model}",
            hint="pick a --d-model that is a multiple of --heads",
        )


def check_fits(
    need_bytes: float, free_bytes: float | None, *, what: str, device: str, headroom: float
) -> None:
    """Refuse (before allocating) a run whose estimated footprint exceeds ``headroom`` × free memory."""
    if free_bytes is not None and need_bytes > headroom * free_bytes:
        raise SpecError(
            f"{what} needs ~{need_bytes / 1e9:.1f} GB, but {device} has {free_bytes / 1e9:.1f} GB free",
            hint="use a smaller preset or a config with fewer layers, e.g. --layers 2 --d-model 256 "
            "(also --heads, --vocab), or a smaller --micro-batch/--seq-len",
        )
