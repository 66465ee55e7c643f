import numpy as np

from mlcost.compress.stats import metric_interval, paired_delta_interval, ratio_of_medians


def test_ratio_of_medians_interval_covers_the_true_ratio() -> None:
    rng = np.random.default_rng(1)
    drift = rng.uniform(1.0, 3.0, size=30)  # the shared machine slows both sides of a round alike
    base = 0.010 * drift * rng.lognormal(0, 0.05, 30)
    fast = 0.005 * drift * rng.lognormal(0, 0.05, 30)
    ci = ratio_of_medians(base, fast)
    assert ci.low < 2.0 < ci.high or abs(ci.value - 2.0) < 0.3
    assert ci.low > 1.5


def test_paired_delta_of_identical_models_is_exactly_zero() -> None:
    correct = (np.arange(50) % 3 == 0).astype(float)
    ci = paired_delta_interval(lambda i: correct[i].mean(), lambda i: correct[i].mean(), 50)
    assert ci.value == ci.low == ci.high == 0.0


def test_metric_interval_contains_the_point_estimate() -> None:
    x = np.linspace(0, 1, 101)
    ci = metric_interval(lambda i: float(x[i].mean()), 101)
    assert ci.low <= ci.value <= ci.high and ci.high - ci.low < 0.2
