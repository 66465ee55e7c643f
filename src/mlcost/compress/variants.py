"""A variant: the original model after one compression recipe, with its status and how to call it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "not run", "failed"]


@dataclass
class TrainingCost:
    """What producing a variant cost (distillation, recovery fine-tune), measured on this machine.

    Attributes:
        time_s: wall time of the training loop. Units: s.
        flops: FLOPs of the training steps, counted by torch's FlopCounterMode on one step × steps.
        energy_j: energy of the loop. Units: J. ``energy_source`` says how it was obtained.
        energy_source: ``rapl`` when a counter was read, else ``estimated (...)`` with the assumption.
        cost_usd: ``time_s`` × the machine's price, None when no price is known.
        examples_seen: training examples (or sequences) processed.
    """

    time_s: float
    flops: float
    energy_j: float
    energy_source: str
    cost_usd: float | None
    examples_seen: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Variant:
    """One compressed (or the original) model.

    Attributes:
        name: short id, e.g. ``int8-dynamic-per-channel``.
        method: ``original``, ``quantize``, ``prune`` or ``distill``.
        recipe: everything needed to rebuild it from the original (saved next to its weights).
        module: the torch module (None for an ONNX Runtime session).
        predict: batch -> float32 tensor/array of what the task scores.
        precision: weight precision for pricing on a target device (fp32, bf16, fp16, int8).
        shape: the transformer shape after structural cuts (layers, heads, d_ff), for the estimator.
        status: ``ok``, ``not run`` (with ``reason``: the hardware cannot run it, or it does not apply) or
            ``failed`` (with the error).
        training: the cost of producing it, when it needed training.
        notes: facts the verdict should mention (sparsity, which layers stay fp32, ...).
    """

    name: str
    method: str
    recipe: dict[str, Any]
    module: Any = None
    predict: Callable[[dict[str, Any]], Any] | None = None
    precision: str = "fp32"
    shape: dict[str, int] | None = None
    status: Status = "ok"
    reason: str | None = None
    training: TrainingCost | None = None
    notes: list[str] = field(default_factory=list)
    build_time_s: float = 0.0
    artifacts: dict[str, Any] = field(default_factory=dict)


def not_run(name: str, method: str, reason: str, recipe: dict[str, Any] | None = None) -> Variant:
    return Variant(
        name=name, method=method, recipe=recipe or {"method": name}, status="not run", reason=reason
    )
