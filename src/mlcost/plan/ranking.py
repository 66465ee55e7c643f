"""Rank candidates: constraint filters, the objective score, distinct top plans.

Score: the objective's metric, or for ``mix`` Σ weight × metric / best feasible metric. Ties break on cost,
time, then enumeration order (fewer devices come first in it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlcost.errors import SpecError
from mlcost.plan.candidates import CandidateTable, DeviceEval

OBJECTIVES: tuple[str, ...] = ("cost", "time", "energy", "co2", "mix")
#: metric key of each single objective
OBJECTIVE_KEYS: dict[str, str] = {
    "cost": "cost_usd",
    "time": "total_time_s",
    "energy": "energy_kwh",
    "co2": "co2_kg",
}


def parse_weights(text: str | None) -> dict[str, float]:
    """``"cost=1,time=0.5"`` → {"cost": 1.0, "time": 0.5}; default cost=1, time=1."""
    if not text:
        return {"cost": 1.0, "time": 1.0}
    out: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in OBJECTIVE_KEYS:
            raise SpecError(
                f"cannot read weight {part.strip()!r}",
                hint=f"write --weights key=value,... with keys from {', '.join(OBJECTIVE_KEYS)}",
            )
        try:
            w = float(value)
        except ValueError:
            raise SpecError(f"weight {key} is not a number: {value!r}") from None
        if not math.isfinite(w) or w < 0:
            raise SpecError(f"weight {key} must be a non-negative number, got {value!r}")
        out[key] = w
    if not any(out.values()):
        raise SpecError("all --weights are zero", hint="give at least one positive weight")
    return out


def rank(
    c: CandidateTable, feas: np.ndarray, objective: str, w: dict[str, float], top: int | None = None
) -> np.ndarray:
    """Feasible candidate indices, best first (module docstring)."""
    if feas.size == 0:
        return feas
    mask = np.zeros(len(c), dtype=bool)
    mask[feas] = True
    if objective == "mix":
        score = np.zeros(len(c))
        for key, wk in w.items():
            if wk == 0:
                continue
            m = c.metric(OBJECTIVE_KEYS[key])
            mf = np.where(mask, m, np.nan)
            best = np.nanmin(mf) if np.any(~np.isnan(mf)) else np.nan
            score = score + wk * m / best
        score = np.where(mask, score, np.nan)
    else:
        score = np.where(mask, c.metric(OBJECTIVE_KEYS[objective]), np.nan)
    n_valid = int(np.count_nonzero(~np.isnan(score)))
    if top is not None and n_valid > top:
        # Only the best ``top`` are needed: keep every candidate scoring at most the top-th score (ties
        # included; NaN sorts last), then sort that small set exactly as a full sort would.
        threshold = np.partition(score, top - 1)[top - 1]
        sel = np.flatnonzero(score <= threshold)
    else:
        sel = np.flatnonzero(~np.isnan(score))
    cost = c.cost_usd[sel]
    cost_key = np.where(np.isnan(cost), np.inf, cost)
    order = np.lexsort((sel, c.time_s[sel], cost_key, score[sel]))
    return sel[order]


def main_key(evals: Sequence[DeviceEval], c: CandidateTable, i: int) -> tuple[Any, ...]:
    """The main choices of a plan; ZeRO stage, micro-batch, recomputation and virtual stages are tuned
    within each."""
    lay = evals[int(c.dev[i])].layouts
    j = int(c.lay[i])
    return (
        int(c.dev[i]),
        int(lay.count[j]),
        int(lay.tp[j]),
        int(lay.pp[j]),
        int(lay.precision[j]),
        int(c.row[i]),
    )


def distinct_top(
    c: CandidateTable,
    feas: np.ndarray,
    objective: str,
    w: dict[str, float],
    top: int,
    evals: Sequence[DeviceEval],
) -> list[int]:
    """The best ``top`` plans that differ in a main choice (device, count, TP, PP, precision, price row):
    for each such combination only its best ZeRO / micro-batch / recomputation setting is listed.
    Plan #1 is always the overall best candidate."""
    k = top * 64
    while True:
        order = rank(c, feas, objective, w, k)
        out: list[int] = []
        seen: set[tuple[Any, ...]] = set()
        for i in order:
            key = main_key(evals, c, int(i))
            if key in seen:
                continue
            seen.add(key)
            out.append(int(i))
            if len(out) == top:
                return out
        if k >= feas.size:
            return out
        k *= 4
