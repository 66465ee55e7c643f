"""Speed-up intervals and verdicts of `measure train --compare`."""

from __future__ import annotations

import random

import pytest

from mlcost.measure.compare import speedup_interval
from mlcost.measure.strategies import judge


def _noisy(mean: float, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [mean * rng.uniform(0.8, 1.25) for _ in range(n)]


def test_clear_speedup_is_faster():
    ci = speedup_interval(_noisy(0.5, 20, 1), 100, _noisy(1.0, 20, 2), 100)
    assert ci.verdict == "faster" and 1.0 < ci.low <= ci.speedup <= ci.high
    assert ci.speedup == pytest.approx(2.0, rel=0.2)
    slow = speedup_interval(_noisy(1.0, 20, 2), 100, _noisy(0.5, 20, 1), 100)
    assert slow.verdict == "slower" and slow.high < 1.0


def test_same_distribution_is_no_clear_difference():
    ci = speedup_interval(_noisy(1.0, 10, 3), 100, _noisy(1.0, 10, 4), 100)
    assert ci.low < 1.0 < ci.high and ci.verdict == "no clear difference"


def test_tokens_per_step_scale_the_speedup():
    ci = speedup_interval([1.0, 1.0, 1.0], 200, [1.0, 1.0, 1.0], 100)
    assert ci.speedup == pytest.approx(2.0) and ci.verdict == "faster"


def test_judge_gives_no_speed_verdict_inside_the_interval():
    base = {"tokens_per_s": 100.0, "peak_memory_bytes": 100}
    metrics = {"tokens_per_s": 130.0, "peak_memory_bytes": 100}  # 1.3× by the point estimate
    ci = speedup_interval(_noisy(1.0, 4, 5), 100, _noisy(1.0, 4, 6), 100)
    v = judge("fused", metrics, base, interval=ci)
    assert not v.pays and "no clear difference" in v.reason and "95% CI" in v.reason
    faster = speedup_interval(_noisy(0.5, 20, 1), 100, _noisy(1.0, 20, 2), 100)
    assert judge("fused", metrics, base, interval=faster).pays
