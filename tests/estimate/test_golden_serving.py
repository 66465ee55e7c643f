"""Golden test: published serving figures (tests/estimate/data/serving_published.csv, split == "golden")
predicted through the public interface with the fitted engine profiles of engines.csv.

Sources: docs/reference/serving_sources.md (TensorRT-LLM performance pages, SGLang benchmark READMEs and raw
results, the vLLM FP8 KV-cache blog, the NVIDIA NIM benchmarking page). Split rule, fixed before any fit:
every 70B-class Llama row is golden, every other model is fit (benchmarks/fit_engine_profiles.py fits
engines.csv on the fit rows only). Results table: docs/serving_validation.md.

Acceptance (issue #14): mean |error| <= 20% per metric, no continuous-batching case off by more than 2x, and
no golden case among any profile's ``fitted_on``.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from mlcost.catalog import get_catalog
from tests.estimate.serving_cases import Case, cases, load_cases, predict

MEAN_ABS_ERR_MAX = 0.20
CONTINUOUS_FACTOR_MAX = 2.0

#: Metric families the acceptance is stated for: output throughput (per replica or per GPU), TTFT, ITL, TPOT.
METRIC_FAMILY: dict[str, str] = {
    "output_tokens_per_s": "throughput",
    "output_tokens_per_s_per_gpu": "throughput",
    "ttft_ms": "ttft",
    "itl_ms": "itl",
    "tpot_ms": "tpot",
}


def _predict_all() -> list[tuple[Case, float]]:
    cat = get_catalog()
    out = []
    for c in cases("golden"):
        # The engines.csv row `mlcost estimate serve --engine <family>` uses on this device.
        out.append((c, predict(c, cat.engine_profile(c.family, c.device))))
    return out


@pytest.fixture(scope="module")
def results() -> list[tuple[Case, float]]:
    return _predict_all()


def table(rows: list[tuple[Case, float]]) -> str:
    lines = [f"{'case':46s} {'metric':28s} {'published':>11s} {'predicted':>11s} {'error':>7s}"]
    for c, p in rows:
        lines.append(
            f"{c.case_id:46s} {c.metric:28s} {c.published:11.2f} {p:11.2f} {p / c.published - 1:+7.1%}"
        )
    return "\n".join(lines)


def by_family(rows: list[tuple[Case, float]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for c, p in rows:
        out[METRIC_FAMILY[c.metric]].append(abs(p / c.published - 1))
    return out


def test_golden_set_covers_what_the_issue_asks() -> None:
    """>= 20 golden figures from >= 3 engines, static and continuous batching, TP 1 and TP > 1."""
    gold = cases("golden")
    assert len(gold) >= 20
    assert len({c.engine for c in gold}) >= 3
    assert {c.batching for c in gold} == {"static", "continuous"}
    assert any(c.tp == 1 for c in gold) and any(c.tp > 1 for c in gold)
    assert len({c.device for c in gold}) >= 3


@pytest.mark.parametrize(
    "family",
    [
        "throughput",
        "itl",
        "tpot",
        "ttft",
    ],
)
def test_mean_abs_error_per_metric(results: list[tuple[Case, float]], family: str) -> None:
    rows = [(c, p) for c, p in results if METRIC_FAMILY[c.metric] == family]
    assert rows, family
    errs = [abs(p / c.published - 1) for c, p in rows]
    mean = sum(errs) / len(errs)
    assert mean <= MEAN_ABS_ERR_MAX, f"{family}: mean |error| {mean:.1%} over {len(rows)} cases\n" + table(
        rows
    )


def test_no_continuous_case_off_by_more_than_2x(results: list[tuple[Case, float]]) -> None:
    bad = [
        (c, p)
        for c, p in results
        if c.batching == "continuous" and max(p / c.published, c.published / p) > CONTINUOUS_FACTOR_MAX
    ]
    assert not bad, "continuous-batching cases off by more than 2x:\n" + table(bad)


def test_no_profile_is_fitted_on_a_golden_case() -> None:
    all_cases = {c.case_id: c for c in load_cases()}
    golden = {cid for cid, c in all_cases.items() if c.split == "golden"}
    fitted = [r for r in get_catalog().engine_profiles() if r.fitted]
    assert fitted, "engines.csv has no fitted row"
    for row in fitted:
        ids = set(row.fitted_on.split(";"))
        assert not ids & golden, f"{row.engine}@{row.device} fitted on golden cases {sorted(ids & golden)}"
        unknown = ids - set(all_cases)
        assert not unknown, f"{row.engine}@{row.device}: fitted_on names unknown cases {sorted(unknown)}"
        assert all(all_cases[i].split == "fit" for i in ids)
