"""Spot (preemptible) pricing: expected time and cost with interruptions, and the on-demand fallback
that keeps a deadline.

Notation (arrays broadcast): T = uninterrupted run time from the estimator (s), N = devices,
k = nodes = ceil(N / devices per node), r = interruptions per node-hour, R = restart overhead (s),
C = checkpoint interval (s), D = deadline (s), p_s / p_o = spot / on-demand price per device-hour.

* Interruptions arrive at λ = r·k / 3600 per second of wall time (any lost node stops a synchronous job).
  Each costs the restart R plus the work since the last checkpoint, C/2 on average. First order:

      T_spot = T · (1 + λ · (R + C/2))

* Fallback: progress is checkpointed, so at any time t the job can finish the remaining fraction on
  on-demand devices in (1 − t/T_spot)·T. The latest safe switch keeps t + (1 − t/T_spot)·T ≤ D:

      t_switch = (D − T) · T_spot / (T_spot − T)         (when T_spot > D ≥ T)

  Expected plan: spot until min(T_spot, t_switch), then on-demand for the rest. Expected cost =
  N·(p_s·t_spot + p_o·t_od)/3600. Worst case (spot makes no progress at all): spot until D − T, then the
  whole run on-demand: N·(p_s·(D − T) + p_o·T)/3600 — reported as ``fallback_worst_cost_usd``.
* Energy and CO2 scale with the time devices run (rework is recomputation at training power; restarts
  are counted at training power too, an overestimate). Checkpoint write time is not modelled.

Defaults are stated assumptions, not measurements (see :data:`DEFAULT_SPOT`); users set their own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mlcost.units import S_PER_H


@dataclass(frozen=True, kw_only=True)
class SpotModel:
    """Interruption model of spot capacity.

    Attributes:
        interruptions_per_node_h: preemptions per node-hour. Units: 1/h.
        restart_overhead_s: re-acquire capacity, start, load the checkpoint. Units: s.
        checkpoint_interval_s: time between checkpoints; half of it is lost per interruption. Units: s.
        source: where the values come from.
    """

    interruptions_per_node_h: float = 0.01
    restart_overhead_s: float = 600.0
    checkpoint_interval_s: float = 3600.0
    source: str = (
        "mlcost defaults (assumption, not measured): 0.01 interruptions per node-hour (an 8-GPU node about "
        "once in 4 days; AWS's Spot Instance Advisor lists most GPU instance types in its highest "
        "interruption bucket, >20% of instances per month, and spot GPU training systems (Bamboo, NSDI 2023; "
        "Oobleck, SOSP 2023) report much higher rates at scale), 10 min restart, hourly checkpoints"
    )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


DEFAULT_SPOT = SpotModel()


def spot_expected_time_s(time_s: ArrayLike, nodes: ArrayLike, model: SpotModel = DEFAULT_SPOT) -> np.ndarray:
    """T_spot = T·(1 + λ·(R + C/2)) with λ = r·nodes/3600 (module docstring). Units: s."""
    lam = model.interruptions_per_node_h * np.asarray(nodes, dtype=np.float64) / S_PER_H
    lost = model.restart_overhead_s + model.checkpoint_interval_s / 2.0
    return np.asarray(time_s, dtype=np.float64) * (1.0 + lam * lost)


@dataclass(frozen=True)
class SpotSchedule:
    """Expected spot schedule (arrays). Units: s; ``feasible`` is False where the deadline cannot be kept."""

    spot_time_s: np.ndarray
    on_demand_time_s: np.ndarray
    total_time_s: np.ndarray
    switch_at_s: np.ndarray  # NaN without a deadline
    uses_fallback: np.ndarray
    feasible: np.ndarray


def spot_schedule(
    time_s: ArrayLike, spot_time_s: ArrayLike, deadline_s: float | None, has_fallback: ArrayLike
) -> SpotSchedule:
    """Split the expected run between spot and on-demand so the deadline holds (module docstring)."""
    T = np.asarray(time_s, dtype=np.float64)
    Ts = np.asarray(spot_time_s, dtype=np.float64)
    fb = np.asarray(has_fallback, dtype=bool)
    if deadline_s is None:
        shape = np.broadcast(T, Ts, fb).shape
        nan = np.full(shape, np.nan)
        return SpotSchedule(
            spot_time_s=np.broadcast_to(Ts, shape).copy(),
            on_demand_time_s=np.zeros(shape),
            total_time_s=np.broadcast_to(Ts, shape).copy(),
            switch_at_s=nan,
            uses_fallback=np.zeros(shape, dtype=bool),
            feasible=np.ones(shape, dtype=bool),
        )
    D = float(deadline_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        switch = np.where(Ts > T, (D - T) * Ts / (Ts - T), np.inf)
    overrun = Ts > D
    t_spot = np.where(overrun, switch, Ts)
    t_od = np.where(overrun, T - t_spot * T / Ts, 0.0)
    feasible = (T <= D) & fb
    return SpotSchedule(
        spot_time_s=t_spot,
        on_demand_time_s=t_od,
        total_time_s=t_spot + t_od,
        switch_at_s=np.broadcast_to(np.asarray(D - T), t_spot.shape).copy(),
        uses_fallback=overrun,
        feasible=feasible,
    )
