"""pareto_front against the O(n²) definition."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcost.plan.pareto import is_dominated_brute, pareto_front


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=60))
def test_front_matches_definition(points: list[tuple[int, int]]) -> None:
    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    front = pareto_front(x, y)
    dominated = is_dominated_brute(x, y)
    # every front point is undominated, and every undominated point is on the front or duplicates one
    assert not dominated[front].any()
    front_pts = {(x[i], y[i]) for i in front}
    assert len(front_pts) == len(front)  # duplicates kept once
    for i in np.flatnonzero(~dominated):
        assert (x[i], y[i]) in front_pts
    assert list(x[front]) == sorted(x[front])


def test_nan_and_empty() -> None:
    assert pareto_front([], []).size == 0
    assert list(pareto_front([1.0, np.nan, 0.5], [1.0, 0.0, 2.0])) == [2, 0]
