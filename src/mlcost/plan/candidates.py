"""Candidates: per device, the fitting layouts (one kernel call) crossed with the device's price rows.

:class:`CandidateTable` holds one entry per (device, layout, price row) as parallel arrays; cost, energy and
CO2 are the kernel's device-hours and energy scaled by price, PUE and carbon (the kernel is linear in them),
spot rows through :mod:`mlcost.plan.spot` (expected time with interruptions, on-demand fallback).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from mlcost.estimate.kernel import train_kernel
from mlcost.plan.prices import PriceRows
from mlcost.plan.space import DeviceHardware, Layouts, build_train_inputs, enumerate_layouts
from mlcost.plan.spot import SpotModel, spot_expected_time_s, spot_schedule
from mlcost.spec.model import ModelSpec
from mlcost.units import S_PER_H


@dataclass
class DeviceEval:
    """One device's fitting layouts, their kernel outputs and its price rows.

    ``best_memory`` is the smallest per-device memory need (bytes) and its layout when nothing fits."""

    hw: DeviceHardware
    layouts: Layouts
    kernel: dict[str, np.ndarray]
    rows: PriceRows
    n_layouts: int
    best_memory: tuple[float, str] | None


@dataclass(frozen=True)
class CandidateTable:
    """All candidates as parallel arrays (one entry per device × fitting layout × price row).

    Attributes:
        dev / lay / row: indices into the device evaluations, their layouts and their price rows.
        time_s: wall time (expected, for spot). Units: s.
        cost_usd / energy_kwh / co2_kg: NaN cost when unpriced.
        deadline_ok: the plan meets the deadline (spot: with its fallback).
        available: the price row can supply the plan's devices (single marketplace offers are small).
        switch_s / spot_time_s / on_demand_time_s: spot schedule (NaN for on-demand rows). Units: s.
        fallback: the on-demand row a spot row falls back to (-1 for none).
        worst_cost_usd: spot cost if the fallback is needed at the latest switch time (NaN otherwise).
    """

    dev: np.ndarray
    lay: np.ndarray
    row: np.ndarray
    time_s: np.ndarray
    cost_usd: np.ndarray
    energy_kwh: np.ndarray
    co2_kg: np.ndarray
    deadline_ok: np.ndarray
    available: np.ndarray
    switch_s: np.ndarray
    spot_time_s: np.ndarray
    on_demand_time_s: np.ndarray
    fallback: np.ndarray
    worst_cost_usd: np.ndarray

    def __len__(self) -> int:
        return int(self.time_s.size)

    def metric(self, key: str) -> np.ndarray:
        """The column of an objective key (``cost_usd``, ``total_time_s``, ``energy_kwh``, ``co2_kg``)."""
        return self.time_s if key == "total_time_s" else getattr(self, key)


_INT_COLUMNS = ("dev", "lay", "row", "fallback")
#: Columns every candidate fills (the others stay NaN / -1 for on-demand rows).
_ALWAYS = ("dev", "lay", "row", "time_s", "cost_usd", "energy_kwh", "co2_kg")
#: Kernel outputs the planner keeps for the fitting layouts.
KERNEL_KEYS = (
    "total_time_s",
    "device_hours",
    "energy_kwh",
    "fits",
    "grad_accum_steps",
    "step_time_s",
    "tokens_per_s",
    "mfu",
    "memory_total_bytes",
)


def layout_text(lay: Layouts, i: int) -> str:
    v = int(lay.virtual_stages[i])
    return (
        f"TP{int(lay.tp[i])} PP{int(lay.pp[i])}" + (f"×v{v}" if v > 1 else "") + f" DP{int(lay.dp[i])} "
        f"ZeRO-{int(lay.zero[i])} mb{int(lay.micro_batch[i])} recompute "
        f"{('none', 'selective', 'full')[int(lay.recompute[i])]} {lay.precisions[int(lay.precision[i])]}"
    )


def evaluate_device(
    model: ModelSpec,
    hw: DeviceHardware,
    *,
    counts: Sequence[int],
    search: Any,
    tokens: float,
    seq_len: int,
    global_batch: int,
    precisions: Sequence[str],
) -> tuple[Layouts, dict[str, np.ndarray]]:
    """All valid layouts of one device and the kernel's outputs for them (one vectorised call)."""
    lay = enumerate_layouts(
        model,
        counts=counts,
        devices_per_node=hw.devices_per_node,
        global_batch=global_batch,
        precisions=precisions,
        tps=search.tps,
        pps=search.pps,
        zeros=search.zeros,
        micro_batches=search.micro_batches,
        recomputes=search.recomputes,
        virtual_stages=search.virtual_stages,
    )
    if len(lay) == 0:
        return lay, {}
    x = build_train_inputs(
        model,
        lay,
        hw,
        tokens=tokens,
        seq_len=seq_len,
        global_batch=global_batch,
        optimizer=search.optimizer,
        sequence_parallel=search.sequence_parallel,
        flash_attention=search.flash_attention,
        overlap_grad_reduce=search.overlap_grad_reduce,
        goodput=search.goodput,
    )
    return lay, train_kernel(model, x)


def fitting(hw: DeviceHardware, lay: Layouts, r: dict[str, np.ndarray], rows: PriceRows) -> DeviceEval:
    """Keep the layouts that fit in memory (or remember the smallest need when none does)."""
    if len(lay) == 0:
        return DeviceEval(hw, lay, {}, rows, 0, None)
    idx = np.flatnonzero(r["fits"])
    best_mem = None
    if idx.size == 0:
        i = int(np.argmin(r["memory_total_bytes"]))
        best_mem = (float(r["memory_total_bytes"][i]), f"{int(lay.count[i])} devices, {layout_text(lay, i)}")
    return DeviceEval(
        hw, lay.take(idx), {k: np.asarray(v)[idx] for k, v in r.items()}, rows, len(lay), best_mem
    )


def expand(evals: Sequence[DeviceEval], deadline_s: float | None, spot_model: SpotModel) -> CandidateTable:
    """Cross every device's fitting layouts with its price rows (module docstring)."""
    sizes = [len(ev.layouts) * len(ev.rows) for ev in evals]
    total = int(sum(sizes))
    c: dict[str, np.ndarray] = {}
    for f in fields(CandidateTable):
        if f.name in _ALWAYS:
            c[f.name] = np.empty(total, dtype=np.int64 if f.name in _INT_COLUMNS else np.float64)
        elif f.name in _INT_COLUMNS:
            c[f.name] = np.full(total, -1, dtype=np.int64)
        elif f.name in ("deadline_ok", "available"):
            c[f.name] = np.ones(total, dtype=bool)
        else:
            c[f.name] = np.full(total, np.nan)
    start = 0
    for di, (ev, size) in enumerate(zip(evals, sizes, strict=True)):
        if size == 0:
            continue
        n, nr = len(ev.layouts), len(ev.rows)
        sl = slice(start, start + size)
        start += size
        k, rows = ev.kernel, ev.rows
        T = k["total_time_s"][:, None]
        dh1 = k["device_hours"][:, None]  # price = 1
        e1 = k["energy_kwh"][:, None]  # pue = 1
        price = rows.usd_per_device_h[None, :]
        pue = rows.pue[None, :]
        carb = rows.carbon_kg_per_kwh[None, :]
        is_spot = np.array([p == "spot" for p in rows.pricing])[None, :]
        c["dev"][sl] = di
        c["lay"][sl] = np.repeat(np.arange(n), nr)
        c["row"][sl] = np.tile(np.arange(nr), n)
        if np.isfinite(rows.max_count).any():
            c["available"][sl] = (ev.layouts.count[:, None] <= rows.max_count[None, :]).ravel()
        if not is_spot.any():
            c["time_s"][sl] = np.repeat(k["total_time_s"], nr)
            c["cost_usd"][sl] = (dh1 * price).ravel()
            c["energy_kwh"][sl] = (e1 * pue).ravel()
            c["co2_kg"][sl] = (e1 * (pue * carb)).ravel()
            if deadline_s is not None:
                c["deadline_ok"][sl] = np.repeat(k["total_time_s"] <= deadline_s, nr)
            continue
        out = _expand_spot(ev, T, dh1, e1, price, pue, carb, is_spot, deadline_s, spot_model)
        for key, value in out.items():
            c[key][sl] = np.broadcast_to(value, (n, nr)).ravel()
    return CandidateTable(**c)


def pareto_candidates(c: CandidateTable, mask: np.ndarray) -> np.ndarray:
    """Indices (within ``mask``) that can be on the (time, cost) front: per layout only its cheapest
    on-demand row (on-demand rows of one layout share its time), plus every spot row. O(n), no sort."""
    idx = np.flatnonzero(mask & ~np.isnan(c.cost_usd))
    if idx.size == 0:
        return idx
    spot = ~np.isnan(c.spot_time_s[idx])
    group_key = c.dev[idx] * (int(c.lay.max()) + 1) + c.lay[idx]
    starts = np.flatnonzero(np.concatenate(([True], group_key[1:] != group_key[:-1])))
    cost = np.where(spot, np.inf, c.cost_usd[idx])
    group_min = np.minimum.reduceat(cost, starts)
    group_of = np.repeat(np.arange(starts.size), np.diff(np.append(starts, idx.size)))
    keep = spot | (cost <= group_min[group_of])
    return idx[keep]


def _expand_spot(
    ev: DeviceEval,
    T: np.ndarray,
    dh1: np.ndarray,
    e1: np.ndarray,
    price: np.ndarray,
    pue: np.ndarray,
    carb: np.ndarray,
    is_spot: np.ndarray,
    deadline_s: float | None,
    spot_model: SpotModel,
) -> dict[str, np.ndarray]:
    rows = ev.rows
    fb = rows.fallback
    fb_safe = np.maximum(fb, 0)
    od_price = np.where(fb >= 0, rows.usd_per_device_h[fb_safe], np.nan)[None, :]
    od_pue = np.where(fb >= 0, rows.pue[fb_safe], 1.0)[None, :]
    od_carb = np.where(fb >= 0, rows.carbon_kg_per_kwh[fb_safe], 0.0)[None, :]
    nodes = np.ceil(ev.layouts.count / ev.hw.devices_per_node)[:, None]
    Ts = spot_expected_time_s(T, nodes, spot_model)
    sched = spot_schedule(T, Ts, deadline_s, (fb >= 0)[None, :])
    devices_n = ev.layouts.count[:, None].astype(np.float64)
    cost = np.where(
        is_spot,
        devices_n * (price * sched.spot_time_s + od_price * sched.on_demand_time_s) / S_PER_H,
        dh1 * price,
    )
    # spot energy: the kernel's energy per second of run, over the seconds spent on each kind of row
    e_rate = e1 / T
    energy = np.where(is_spot, e_rate * (sched.spot_time_s * pue + sched.on_demand_time_s * od_pue), e1 * pue)
    co2 = np.where(
        is_spot,
        e_rate * (sched.spot_time_s * pue * carb + sched.on_demand_time_s * od_pue * od_carb),
        e1 * pue * carb,
    )
    ttime = np.where(is_spot, sched.total_time_s, T)
    dl_ok = (
        np.ones_like(ttime, dtype=bool)
        if deadline_s is None
        else np.where(is_spot, sched.feasible, deadline_s >= T)
    )
    worst = np.where(
        is_spot & (deadline_s is not None),
        devices_n * (price * np.maximum(sched.switch_at_s, 0.0) + od_price * T) / S_PER_H,
        np.nan,
    )
    return {
        "time_s": ttime,
        "cost_usd": cost,
        "energy_kwh": energy,
        "co2_kg": co2,
        "deadline_ok": dl_ok,
        "switch_s": np.where(is_spot, sched.switch_at_s, np.nan),
        "spot_time_s": np.where(is_spot, sched.spot_time_s, np.nan),
        "on_demand_time_s": np.where(is_spot, sched.on_demand_time_s, np.nan),
        "fallback": np.where(is_spot, fb[None, :], -1),
        "worst_cost_usd": worst,
    }
