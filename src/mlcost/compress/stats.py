"""Intervals: percentile bootstrap over evaluation examples (quality) and over interleaved rounds (speed).

Why the bootstrap: accuracy, macro-F1, perplexity, neighbour agreement and ratios of medians have no simple
exact interval that covers all of them; resampling the evaluation examples (Efron & Tibshirani 1993) gives one
method for every metric. Deltas to the original are *paired*: the same resampled examples score both models,
so only the disagreement between them makes the interval wide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Bootstrap resamples and the interval's coverage.
N_BOOT = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile-bootstrap interval at :data:`LEVEL`."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def _ci(samples: np.ndarray, value: float) -> Interval:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return Interval(value, value, value)
    a = (1 - LEVEL) / 2
    lo, hi = np.quantile(finite, [a, 1 - a])
    return Interval(float(value), float(lo), float(hi))


def bootstrap_indices(n: int, *, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """``n_boot`` × ``n`` resampled example indices (fixed seed: every variant sees the same resamples)."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def metric_interval(
    fn: Callable[[np.ndarray], float], n: int, *, n_boot: int = N_BOOT, seed: int = 0
) -> Interval:
    """``fn(indices)`` on all examples and its bootstrap interval."""
    value = fn(np.arange(n))
    boots = np.array([fn(idx) for idx in bootstrap_indices(n, n_boot=n_boot, seed=seed)])
    return _ci(boots, value)


def paired_delta_interval(
    fn_variant: Callable[[np.ndarray], float],
    fn_original: Callable[[np.ndarray], float],
    n: int,
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> Interval:
    """variant − original on the same resampled examples."""
    value = fn_variant(np.arange(n)) - fn_original(np.arange(n))
    boots = np.array(
        [fn_variant(idx) - fn_original(idx) for idx in bootstrap_indices(n, n_boot=n_boot, seed=seed)]
    )
    return _ci(boots, value)


def ratio_of_medians(base_s: Any, variant_s: Any, *, n_boot: int = N_BOOT, seed: int = 0) -> Interval:
    """Speed-up = median(base time) / median(variant time), with rounds resampled in pairs.

    ``base_s`` and ``variant_s`` are per-round times measured in the same interleaved rounds, so resampling
    whole rounds keeps the machine's drift (other jobs on the shared CPU) common to both."""
    b, v = np.asarray(base_s, dtype=float), np.asarray(variant_s, dtype=float)
    value = float(np.median(b) / np.median(v))
    idx = bootstrap_indices(len(b), n_boot=n_boot, seed=seed)
    boots = np.median(b[idx], axis=1) / np.median(v[idx], axis=1)
    return _ci(boots, value)
