"""Spot model: expected time, schedule with on-demand fallback, deadline always kept."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcost.plan.spot import SpotModel, spot_expected_time_s, spot_schedule


def test_expected_time_formula() -> None:
    m = SpotModel(interruptions_per_node_h=0.1, restart_overhead_s=600.0, checkpoint_interval_s=3600.0)
    # λ = 0.1 × 4 nodes per hour; each costs 600 + 1800 s
    assert float(spot_expected_time_s(36000.0, 4, m)) == pytest.approx(36000.0 * (1 + 0.4 / 3600 * 2400))
    assert float(spot_expected_time_s(100.0, 3, SpotModel(interruptions_per_node_h=0.0))) == 100.0


def test_schedule_cases() -> None:
    s = spot_schedule(10.0, 12.0, None, True)
    assert float(s.total_time_s) == 12.0 and not bool(s.uses_fallback)
    s = spot_schedule(10.0, 12.0, 15.0, True)  # spot finishes before the deadline
    assert float(s.total_time_s) == 12.0 and float(s.on_demand_time_s) == 0.0 and bool(s.feasible)
    s = spot_schedule(10.0, 20.0, 15.0, True)  # overruns: switch so that the deadline holds exactly
    assert bool(s.uses_fallback) and float(s.total_time_s) == pytest.approx(15.0)
    # progress on spot + on-demand part = whole job
    assert float(s.spot_time_s) / 20.0 + float(s.on_demand_time_s) / 10.0 == pytest.approx(1.0)
    assert not bool(spot_schedule(10.0, 20.0, 9.0, True).feasible)  # even on-demand is too slow
    assert not bool(spot_schedule(10.0, 12.0, 15.0, False).feasible)  # no fallback row


@settings(max_examples=100, deadline=None)
@given(T=st.floats(1.0, 1e6), slow=st.floats(1.0, 5.0), slack=st.floats(1.0, 10.0))
def test_deadline_always_kept(T: float, slow: float, slack: float) -> None:
    D = T * slack
    s = spot_schedule(np.array([T]), np.array([T * slow]), D, np.array([True]))
    assert s.feasible.all()
    assert float(s.total_time_s[0]) <= D * (1 + 1e-9)
    assert float(s.spot_time_s[0]) >= 0 and float(s.on_demand_time_s[0]) >= -1e-9 * T
