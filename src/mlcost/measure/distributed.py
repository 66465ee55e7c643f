"""torch.distributed under torchrun: process-group setup (gloo on CPU, NCCL on CUDA) and the reductions
the runner needs to report one run for all ranks.

Outside torchrun (``WORLD_SIZE`` unset or 1) everything is a no-op on a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mlcost.errors import SpecError, require
from mlcost.spec.validate import env_int


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job.

    Attributes:
        world_size: processes (devices) in the job.
        rank: this process's global rank.
        local_rank: rank on this node (the CUDA device index).
        backend: ``gloo``, ``nccl`` or None when not distributed.
        owns_group: this context initialised the process group (and destroys it).
    """

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    backend: str | None = None
    owns_group: bool = False

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


#: What torchrun sets besides WORLD_SIZE; a WORLD_SIZE > 1 without them was not started by torchrun.
TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def env_world() -> tuple[int, int, int]:
    """(world_size, rank, local_rank) from the torchrun environment, checked: whole numbers, WORLD_SIZE
    and LOCAL_WORLD_SIZE >= 1, 0 <= RANK < WORLD_SIZE, and the torchrun variables present when
    WORLD_SIZE > 1. Raises :class:`~mlcost.errors.SpecError` naming the variable."""
    world = env_int("WORLD_SIZE", os.environ.get("WORLD_SIZE"), 1, minimum=1)
    rank = env_int("RANK", os.environ.get("RANK"), 0, minimum=0)
    local = env_int("LOCAL_RANK", os.environ.get("LOCAL_RANK"), 0, minimum=0)
    local_world = env_int("LOCAL_WORLD_SIZE", os.environ.get("LOCAL_WORLD_SIZE"), 1, minimum=1)
    if world > 1:
        missing = [v for v in TORCHRUN_VARS if not os.environ.get(v)]
        if missing:
            raise SpecError(
                f"environment variable WORLD_SIZE={world} but {', '.join(missing)} unset: not started by torchrun",
                hint="launch with torchrun --nproc-per-node N mlcost measure ..., or unset WORLD_SIZE",
            )
    if rank >= world:
        raise SpecError(
            f"environment variable RANK={rank} must be below WORLD_SIZE={world}", hint="unset RANK"
        )
    if local_world > world:
        raise SpecError(
            f"environment variable LOCAL_WORLD_SIZE={local_world} is above WORLD_SIZE={world}",
            hint="unset LOCAL_WORLD_SIZE or fix it",
        )
    return world, rank, local


def init_distributed(device: str) -> DistContext:
    """Initialise the default process group when torchrun started several processes: NCCL for CUDA
    devices (binding this process to ``cuda:LOCAL_RANK``), gloo otherwise."""
    world, _rank, local = env_world()
    if world <= 1:
        return DistContext()
    torch = require("torch", "mlcost measure", extra="measure")
    dist = torch.distributed
    if dist.is_initialized():
        return DistContext(world, dist.get_rank(), local, dist.get_backend(), owns_group=False)
    backend = "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend)
    return DistContext(world, dist.get_rank(), local, backend, owns_group=True)


def device_for(device: str, ctx: DistContext) -> str:
    """The device this rank uses: ``cuda:LOCAL_RANK`` under torchrun with CUDA, else as given."""
    if device == "cuda" and ctx.is_distributed:
        return f"cuda:{ctx.local_rank}"
    return device


def all_reduce(value: float, op: str, ctx: DistContext, device: str = "cpu") -> float:
    """Sum or max of a number over ranks (identity when not distributed)."""
    if not ctx.is_distributed:
        return value
    torch = require("torch", "mlcost measure", extra="measure")
    dist = torch.distributed
    dev = device if ctx.backend == "nccl" else "cpu"
    t = torch.tensor([float(value)], dtype=torch.float64, device=dev)
    dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return float(t.item())


def all_reduce_list(values: list[float], op: str, ctx: DistContext, device: str = "cpu") -> list[float]:
    """Element-wise sum/max of equal-length lists over ranks (e.g. per-step times → slowest rank)."""
    if not ctx.is_distributed or not values:
        return list(values)
    torch = require("torch", "mlcost measure", extra="measure")
    dist = torch.distributed
    dev = device if ctx.backend == "nccl" else "cpu"
    t = torch.tensor(values, dtype=torch.float64, device=dev)
    dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return [float(x) for x in t.tolist()]


def broadcast_flag(flag: bool, ctx: DistContext, device: str = "cpu") -> bool:
    """True on every rank if it is true on any rank (used to stop all ranks together)."""
    return all_reduce(1.0 if flag else 0.0, "max", ctx, device) > 0


def barrier(ctx: DistContext) -> None:
    if ctx.is_distributed:
        torch = require("torch", "mlcost measure", extra="measure")
        torch.distributed.barrier()


def shutdown(ctx: DistContext) -> None:
    """Destroy the process group if this context created it."""
    if ctx.owns_group:
        torch = require("torch", "mlcost measure", extra="measure")
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
