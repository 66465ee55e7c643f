"""Pareto fronts over two minimised objectives (e.g. time and cost), vectorised."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def pareto_front(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Indices of the points not dominated when minimising both ``x`` and ``y``, sorted by ``x``.

    A point dominates another if it is no worse in both and better in one. Of exact duplicates only the
    first (lowest index) is kept. NaN points are never on the front. O(n log n)."""
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    valid = np.flatnonzero(~(np.isnan(xa) | np.isnan(ya)))
    if valid.size == 0:
        return np.zeros(0, dtype=np.int64)
    # Pass 1 (stable sort by x only, fast): a point can be on the front only if its y is below every y
    # before it; this keeps a small superset of the front.
    order = valid[np.argsort(xa[valid], kind="stable")]
    ys = ya[order]
    best_before = np.concatenate(([np.inf], np.minimum.accumulate(ys)[:-1]))
    cand = order[ys < best_before]
    # Pass 2 (exact, on the few survivors): sort by x, then y, then index; keep strict y improvements.
    cand = cand[np.lexsort((cand, ya[cand], xa[cand]))]
    yc = ya[cand]
    best_before = np.concatenate(([np.inf], np.minimum.accumulate(yc)[:-1]))
    return cand[yc < best_before]


def is_dominated_brute(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """O(n²) reference: True where some other point dominates (tests use it against :func:`pareto_front`)."""
    xa = np.asarray(x, dtype=np.float64)[:, None]
    ya = np.asarray(y, dtype=np.float64)[:, None]
    no_worse = (xa >= xa.T) & (ya >= ya.T)
    better = (xa > xa.T) | (ya > ya.T)
    return np.any(no_worse & better, axis=1)
