"""Distillation and short fine-tunes: a smaller student (fewer layers, initialised from the teacher's
layers) trained to match the teacher, and the recovery fine-tune after structured pruning.

Losses by kind of model: encoders match the teacher's sentence embeddings (1 − cosine, as in the
sentence-transformers distillation recipe, Reimers & Gurevych 2020); classifiers and language models use
Hinton et al.'s (2015) KL divergence at temperature T (× T²) mixed with cross-entropy on the labels / next
tokens. The training loop's time is measured, its FLOPs counted with ``torch.utils.flop_counter`` on one step
(× steps), its energy read from RAPL when readable or else estimated (and labelled so), and its dollars are
time × the machine's price: together the price of the variant.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

from mlcost.compress.errors import CompressError
from mlcost.compress.models import ModelBundle
from mlcost.compress.variants import TrainingCost

TEMPERATURE = 2.0
ALPHA = 0.5


def layer_list(bundle: ModelBundle, module: Any) -> tuple[Any, str, str]:
    """(the module holding the block list, the list's attribute name, the config key of its length)."""
    if bundle.family == "bert":
        base = getattr(module, "bert", None) or getattr(module, "roberta", None) or module
        return base.encoder, "layer", "num_hidden_layers"
    if bundle.family == "gpt2":
        return module.transformer, "h", "n_layer"
    raise CompressError(
        f"distillation by dropping layers needs a BERT-like or GPT-2 model, not {bundle.family}",
        hint="give a student module through the Python API",
    )


def keep_every_other(n_layers: int, keep: int) -> list[int]:
    """``keep`` layer indices spread evenly over ``n_layers`` (always the first and the last)."""
    if keep >= n_layers:
        return list(range(n_layers))
    if keep == 1:
        return [n_layers - 1]
    return sorted({round(i * (n_layers - 1) / (keep - 1)) for i in range(keep)})


def student_from_teacher(bundle: ModelBundle, layers: list[int], module: Any = None) -> Any:
    """A copy of the teacher keeping only blocks ``layers`` (their weights are the initialisation)."""
    import torch

    student = copy.deepcopy(module if module is not None else bundle.module)
    holder, attr, key = layer_list(bundle, student)
    blocks = getattr(holder, attr)
    setattr(holder, attr, torch.nn.ModuleList([blocks[i] for i in layers]))
    setattr(student.config, key, len(layers))
    for new_idx, block in enumerate(getattr(holder, attr)):  # keep cache indices consistent
        for sub in block.modules():
            if hasattr(sub, "layer_idx"):
                sub.layer_idx = new_idx
    return student.eval()


def _loss(bundle: ModelBundle, student: Any, teacher: Any, batch: dict[str, Any]) -> Any:
    import torch
    import torch.nn.functional as F

    out = bundle.forward(student, batch)
    with torch.no_grad():
        ref = bundle.forward(teacher, batch) if teacher is not None else None
    if bundle.kind == "encoder":
        assert ref is not None
        return (1 - F.cosine_similarity(out, ref, dim=-1)).mean()
    if bundle.kind == "classifier":
        loss = F.cross_entropy(out, batch["labels"]) if "labels" in batch else out.new_zeros(())
        if ref is None:
            return loss
        kd = F.kl_div(
            F.log_softmax(out / TEMPERATURE, -1),
            F.log_softmax(ref / TEMPERATURE, -1),
            log_target=True,
            reduction="batchmean",
        )
        return ALPHA * kd * TEMPERATURE**2 + (1 - ALPHA) * loss
    ids = batch["input_ids"]
    v = out.shape[-1]
    loss = F.cross_entropy(out[:, :-1].reshape(-1, v), ids[:, 1:].reshape(-1))
    if ref is None:
        return loss
    kd = F.kl_div(
        F.log_softmax(out / TEMPERATURE, -1).reshape(-1, v),
        F.log_softmax(ref / TEMPERATURE, -1).reshape(-1, v),
        log_target=True,
        reduction="batchmean",
    )
    return ALPHA * kd * TEMPERATURE**2 + (1 - ALPHA) * loss


def _energy_meter() -> Any:
    """RAPL when readable, else the CPU power estimate (the one call into measure.meters)."""
    from mlcost.measure.meters import select_meters

    return select_meters("cpu").energy


def train(
    bundle: ModelBundle,
    student: Any,
    teacher: Any,
    batches: Iterator[dict[str, Any]] | None,
    *,
    steps: int,
    lr: float,
    price_usd_per_h: float | None,
    seed: int = 0,
) -> TrainingCost:
    """Train ``student`` in place on ``batches`` (with ``teacher`` as the target when given); returns what the
    loop cost."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    if batches is None:
        raise CompressError(
            f"the task has no training data for {bundle.name}",
            hint="distillation and recovery fine-tunes need the example's training split",
        )
    torch.manual_seed(seed)
    student.train()
    opt = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    meter = _energy_meter()
    flops_per_step = 0.0
    seen = 0
    meter.begin()
    start = time.perf_counter()
    for step, batch in enumerate(batches):
        if step >= steps:
            break
        if step == 0:
            with FlopCounterMode(display=False) as counter:
                loss = _loss(bundle, student, teacher, batch)
                loss.backward()
            flops_per_step = float(counter.get_total_flops())
        else:
            loss = _loss(bundle, student, teacher, batch)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        seen += len(next(iter(batch.values())))
    elapsed = time.perf_counter() - start
    reading = meter.end()
    student.eval()
    source = str(reading.source)
    if source == "estimated":
        source = f"estimated ({reading.detail})"
    return TrainingCost(
        time_s=elapsed,
        flops=flops_per_step * steps,
        energy_j=float(reading.energy_j),
        energy_source=source,
        cost_usd=None if price_usd_per_h is None else elapsed / 3600 * price_usd_per_h,
        examples_seen=seen,
    )


def loss_name(kind: str) -> str:
    if kind == "encoder":
        return "1 - cosine(student embedding, teacher embedding)"
    return f"{ALPHA} * KL(teacher || student) at T={TEMPERATURE} * T^2 + {1 - ALPHA} * cross-entropy"
