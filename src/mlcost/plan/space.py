"""The planner's search space: candidate layouts built as numpy index arrays, and the
:class:`~mlcost.estimate.TrainInputs` for all of one device's layouts at once.

No formula lives here: the arrays go to :func:`mlcost.estimate.train_kernel`, the same function
``estimate_train`` calls. The layout rules are those of :func:`mlcost.estimate.validate_layout`, applied
vectorised:

* devices % (TP·PP) == 0 (DP = devices / (TP·PP));
* heads % TP == 0; KV heads % TP == 0 or TP % KV heads == 0;
* layers % (PP·V) == 0 with V virtual stages (interleaved 1F1B chunks per rank, Narayanan et al. 2021);
  V > 1 only with PP > 1 and with the micro-batches per step a multiple of PP (Megatron-LM's interleaved
  schedule needs it);
* global batch % (micro-batch · DP) == 0;
* TP within a node (TP ≤ devices per node), ZeRO > 0 only with DP > 1 (otherwise it is ZeRO-0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlcost.catalog.schema import Device, EfficiencyProfile
from mlcost.estimate.flops import RECOMPUTE_CODES
from mlcost.estimate.kernel import OPTIMIZER_TRAFFIC_BYTES, TrainInputs
from mlcost.estimate.train import hardware_fields, precision_fields
from mlcost.spec.model import ModelSpec

#: Default candidate values of the discrete choices.
DEFAULT_TP: tuple[int, ...] = (1, 2, 4, 8)
DEFAULT_ZERO: tuple[int, ...] = (0, 1, 2, 3)
DEFAULT_MICRO_BATCH: tuple[int, ...] = (1, 2, 4, 8)
DEFAULT_RECOMPUTE: tuple[str, ...] = ("none", "selective", "full")
DEFAULT_VIRTUAL_STAGES: tuple[int, ...] = (1, 2, 4)
RECOMPUTE_NAMES: tuple[str, ...] = tuple(RECOMPUTE_CODES)


def device_counts(max_devices: int, devices_per_node: int) -> list[int]:
    """Powers of two and 1.5× powers of two up to ``max_devices``; from one node up, only whole nodes."""
    out: set[int] = set()
    k = 1
    while k <= max_devices:
        for c in (k, (3 * k) // 2):
            if 1 <= c <= max_devices and (c < devices_per_node or c % devices_per_node == 0):
                out.add(c)
        k *= 2
    return sorted(out)


def pipeline_degrees(n_layers: int, max_pp: int | None = None) -> list[int]:
    """Powers of two (1, 2, 4, ...) that divide the number of layers."""
    out, p = [], 1
    while p <= n_layers and (max_pp is None or p <= max_pp):
        if n_layers % p == 0:
            out.append(p)
        p *= 2
    return out


def default_global_batch(model_params: float, seq_len: int) -> int:
    """Sequences per step giving ~4M tokens (≥ 7B parameters) or ~1M tokens (smaller models), a power of
    two: the rule of :func:`mlcost.plan.defaults.rule_global_batch` (kept here for callers of this module)."""
    from mlcost.plan.defaults import rule_global_batch

    return rule_global_batch(model_params, seq_len)


@dataclass(frozen=True)
class Layouts:
    """Valid layouts of one device (parallel arrays, one entry per layout)."""

    count: np.ndarray
    tp: np.ndarray
    pp: np.ndarray
    dp: np.ndarray
    zero: np.ndarray
    micro_batch: np.ndarray
    recompute: np.ndarray  # codes of RECOMPUTE_CODES
    precision: np.ndarray  # index into ``precisions``
    precisions: tuple[str, ...]
    virtual_stages: np.ndarray  # interleaved 1F1B model chunks per pipeline rank (1 = plain 1F1B)

    def __len__(self) -> int:
        return int(self.count.shape[0])

    def take(self, idx: np.ndarray) -> Layouts:
        return Layouts(
            count=self.count[idx],
            tp=self.tp[idx],
            pp=self.pp[idx],
            dp=self.dp[idx],
            zero=self.zero[idx],
            micro_batch=self.micro_batch[idx],
            recompute=self.recompute[idx],
            precision=self.precision[idx],
            precisions=self.precisions,
            virtual_stages=self.virtual_stages[idx],
        )


def enumerate_layouts(
    model: ModelSpec,
    *,
    counts: Sequence[int],
    devices_per_node: int,
    global_batch: int,
    precisions: Sequence[str],
    tps: Sequence[int] = DEFAULT_TP,
    pps: Sequence[int] | None = None,
    zeros: Sequence[int] = DEFAULT_ZERO,
    micro_batches: Sequence[int] = DEFAULT_MICRO_BATCH,
    recomputes: Sequence[str] = DEFAULT_RECOMPUTE,
    virtual_stages: Sequence[int] = (1,),
) -> Layouts:
    """Cartesian product of the choices, filtered to valid layouts (module docstring), vectorised.
    ``virtual_stages`` defaults to plain 1F1B; the planner passes ``DEFAULT_VIRTUAL_STAGES``."""
    pps = pipeline_degrees(model.n_layers) if pps is None else list(pps)
    axes = [
        np.asarray(counts, dtype=np.int64),
        np.asarray(tps, dtype=np.int64),
        np.asarray(pps, dtype=np.int64),
        np.asarray(zeros, dtype=np.int64),
        np.asarray(micro_batches, dtype=np.int64),
        np.asarray([RECOMPUTE_CODES[r] for r in recomputes], dtype=np.int64),
        np.arange(len(precisions), dtype=np.int64),
    ]
    vs = np.asarray(virtual_stages, dtype=np.int64)
    if any(a.size == 0 for a in axes) or vs.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Layouts(empty, empty, empty, empty, empty, empty, empty, empty, tuple(precisions), empty)
    # The (count, TP, PP) rules first, on the small product of those three axes.
    cg, tg, pg = (g.ravel() for g in np.meshgrid(axes[0], axes[1], axes[2], indexing="ij"))
    tpp = tg * pg
    ok3 = (cg % tpp == 0) & (tg <= devices_per_node) & (model.n_heads % tg == 0)
    ok3 &= (model.kv_heads % tg == 0) | (tg % model.kv_heads == 0)
    ok3 &= model.n_layers % pg == 0
    i3 = np.flatnonzero(ok3)
    n_rest = axes[3].size * axes[4].size * axes[5].size * axes[6].size
    base = np.repeat(i3, n_rest)
    zg, bg, rg, prg = (np.tile(g.ravel(), i3.size) for g in np.meshgrid(*axes[3:], indexing="ij"))
    c, t, p = cg[base], tg[base], pg[base]
    dp = c // (t * p)
    ok = global_batch % (bg * dp) == 0
    ok &= (zg == 0) | (dp > 1)
    idx = np.flatnonzero(ok)
    c, t, p, dp, z, b, rc, pr = c[idx], t[idx], p[idx], dp[idx], zg[idx], bg[idx], rg[idx], prg[idx]
    v = np.ones_like(c)
    # Interleaving (V > 1) only with PP > 1, V·PP dividing the layers and the micro-batches a multiple of PP.
    parts = [np.arange(c.size)]
    vparts = [v]
    n_micro = global_batch // (b * dp)
    for vv in vs[vs > 1]:
        j = np.flatnonzero((p > 1) & (model.n_layers % (p * vv) == 0) & (n_micro % p == 0))
        parts.append(j)
        vparts.append(np.full(j.size, vv, dtype=np.int64))
    if 1 not in set(vs.tolist()):
        parts, vparts = parts[1:], vparts[1:]
    sel = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    vsel = np.concatenate(vparts) if vparts else np.zeros(0, dtype=np.int64)
    return Layouts(
        count=c[sel],
        tp=t[sel],
        pp=p[sel],
        dp=dp[sel],
        zero=z[sel],
        micro_batch=b[sel],
        recompute=rc[sel],
        precision=pr[sel],
        precisions=tuple(precisions),
        virtual_stages=vsel,
    )


@dataclass(frozen=True)
class DeviceHardware:
    """Per-device facts the kernel needs (catalog row, profile, node), for every layout of that device."""

    device: Device
    profile: EfficiencyProfile
    devices_per_node: int
    intra_bw_bytes_per_s: float
    inter_bw_bytes_per_s: float


def train_precisions(device: Device, wanted: Sequence[str]) -> list[str]:
    """The wanted training precisions this device has units for (fp8 only with fp8 units); bf16 becomes
    fp16 (mixed precision with loss scaling) on devices without bf16 units (V100, T4)."""
    out: list[str] = []
    for p in wanted:
        if device.peak_for(p) is None and p == "bf16" and device.peak_for("fp16") is not None:
            p = "fp16"
        if device.peak_for(p) is not None and p not in out:
            out.append(p)
    return out


def build_train_inputs(
    model: ModelSpec,
    layouts: Layouts,
    hw: DeviceHardware,
    *,
    tokens: float,
    seq_len: int,
    global_batch: int,
    optimizer: str,
    sequence_parallel: bool | None,
    flash_attention: bool,
    overlap_grad_reduce: bool = True,
    goodput: float = 1.0,
) -> TrainInputs:
    """:class:`TrainInputs` for all ``layouts`` of one device, in the same way
    :func:`mlcost.estimate.build_inputs` fills them for one job.

    Price, PUE and carbon are 1 here: cost, energy and CO2 are linear in them and the planner scales the
    kernel's outputs per price row. ``sequence_parallel=None`` means "on whenever TP > 1"."""
    per = [precision_fields(p, optimizer, hw.device, hw.profile) for p in layouts.precisions]
    pi = layouts.precision
    by_precision = {k: np.array([d[k] for d in per], dtype=np.float64)[pi] for k in per[0]}
    sp: Any = layouts.tp > 1 if sequence_parallel is None else sequence_parallel
    return TrainInputs(
        tp=layouts.tp,
        pp=layouts.pp,
        dp=layouts.dp,
        micro_batch=layouts.micro_batch,
        global_batch=global_batch,
        seq_len=seq_len,
        virtual_stages=layouts.virtual_stages,
        zero=layouts.zero,
        recompute=layouts.recompute,
        sequence_parallel=sp,
        flash_attention=flash_attention,
        overlap_grad_reduce=overlap_grad_reduce,
        fused_elementwise=True,
        goodput=goodput,
        tokens=tokens,
        optimizer_traffic_bytes=OPTIMIZER_TRAFFIC_BYTES[optimizer],
        **by_precision,
        price_usd_per_device_h=1.0,
        pue=1.0,
        carbon_kg_per_kwh=1.0,
        **hardware_fields(hw),
    )
