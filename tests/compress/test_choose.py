import pytest

from mlcost.compress.choose import choose, pareto_front, parse_targets, verdict
from mlcost.compress.errors import CompressError
from mlcost.errors import UnknownNameError

METRICS = {"accuracy": "fraction", "cosine_to_original": "ratio", "perplexity": "perplexity"}


def test_target_syntax_relative_points_absolute_and_per_metric() -> None:
    (rel,) = parse_targets("1%", primary="accuracy", metrics=METRICS)
    assert (
        rel.metric == "accuracy"
        and rel.mode == "relative"
        and rel.allowed(0.8, "fraction") == pytest.approx(0.008)
    )
    (pt,) = parse_targets("1pt", primary="accuracy", metrics=METRICS)
    assert pt.allowed(0.8, "fraction") == pytest.approx(0.01)
    a, b = parse_targets("accuracy=0.5pt, cosine_to_original=0.02", primary="accuracy", metrics=METRICS)
    assert (a.metric, a.allowed(0.9, "fraction")) == ("accuracy", pytest.approx(0.005))
    assert (b.metric, b.mode, b.allowed(1.0, "ratio")) == ("cosine_to_original", "absolute", 0.02)


@pytest.mark.parametrize("bad", ["one percent", "1%%", "=1%", "1 pt pt"])
def test_malformed_target_names_the_flag(bad: str) -> None:
    with pytest.raises(CompressError, match="--max-quality-drop"):
        parse_targets(bad, primary="accuracy", metrics=METRICS)


def test_unknown_metric_and_points_on_a_non_fraction_metric() -> None:
    with pytest.raises(UnknownNameError, match="accuracyy"):
        parse_targets("accuracyy=1pt", primary="accuracy", metrics=METRICS)
    with pytest.raises(CompressError, match="points apply to fraction metrics"):
        parse_targets("perplexity=1pt", primary="accuracy", metrics=METRICS)


def test_pareto_front_drops_dominated_points() -> None:
    pts = [("fp32", 10.0, 0.90), ("int8", 5.0, 0.89), ("bad", 6.0, 0.80), ("bf16", 5.0, 0.85)]
    assert pareto_front(pts) == ["fp32", "int8"]


def _row(name: str, speed: tuple[float, float, float], delta: float, *, method: str = "quantize") -> dict:
    q = {
        "value": 0.8 + delta,
        "low": 0.7,
        "high": 0.9,
        "delta": delta,
        "delta_low": delta - 0.01,
        "delta_high": delta + 0.01,
        "higher_is_better": True,
        "scale": "fraction",
    }
    return {
        "name": name,
        "method": method,
        "status": "ok",
        "reason": None,
        "batch_size": 32,
        "size_ratio": 0.3,
        "speedup": {"value": speed[0], "low": speed[1], "high": speed[2]},
        "quality": {"accuracy": q},
        "notes": [],
        "isa_note": "no VNNI",
        "cost": {"machine_h_per_million_requests": 1.0 / speed[0]},
    }


def test_no_recommendation_on_a_speed_up_the_interval_does_not_support() -> None:
    targets = parse_targets("1pt", primary="accuracy", metrics=METRICS)
    v = verdict(_row("int8", (1.3, 0.95, 1.6), 0.0), targets, "accuracy")
    assert not v.recommended and "includes 1×" in v.text and "no VNNI" in v.text
    v = verdict(_row("int8", (1.9, 1.7, 2.1), -0.003), targets, "accuracy")
    assert v.recommended and "; recommended" in v.text and "interval reaches beyond" in v.text


def test_a_target_no_variant_meets_names_the_closest() -> None:
    targets = parse_targets("0.1pt", primary="accuracy", metrics=METRICS)
    rows = [
        _row("fp32", (1.0, 1.0, 1.0), 0.0, method="original"),
        _row("int8", (2.0, 1.8, 2.2), -0.02),
        _row("prune", (1.5, 1.2, 1.8), -0.05),
    ]
    verdicts = {r["name"]: verdict(r, targets, "accuracy") for r in rows}
    decision = choose(rows, verdicts, "accuracy")
    assert decision["variant"] == "fp32" and not decision["met"] and decision["closest"] == "int8"
    assert "no variant meets" in decision["message"]


def test_a_few_percent_is_not_a_speed_up_worth_recommending() -> None:
    targets = parse_targets("1pt", primary="accuracy", metrics=METRICS)
    v = verdict(_row("unstructured", (1.04, 1.01, 1.06), 0.0), targets, "accuracy")
    assert not v.recommended and "no meaningful speed-up" in v.text
