"""The open-loop load driver: workload generation and metrics on hand-made timings (no torch), and a real
continuous-batching run of transformers on a tiny model (slow) whose per-token timestamps must agree with
the engine's own iteration log."""

from __future__ import annotations

import pytest

from mlcost.errors import SpecError
from mlcost.measure.serve_load import (
    EngineSettings,
    IterationTiming,
    LoadResult,
    RequestTiming,
    littles_law,
    poisson_requests,
    quantile,
    summarize,
)
from tests.measure.test_runner_specs import TINY_LLAMA


def test_poisson_arrivals_are_seeded_and_have_the_rate() -> None:
    a = poisson_requests(4.0, 4000, prompt_len=8, output_len=4, seed=3)
    assert a == poisson_requests(4.0, 4000, prompt_len=8, output_len=4, seed=3)
    assert a != poisson_requests(4.0, 4000, prompt_len=8, output_len=4, seed=4)
    times = [r.arrival_s for r in a]
    assert times == sorted(times) and times[0] > 0
    assert len(times) / times[-1] == pytest.approx(4.0, rel=0.05)  # 4000 gaps: ±1.6% standard error


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_a_rate_that_is_not_positive_is_refused(rate: float) -> None:
    with pytest.raises(SpecError, match="--rps"):
        poisson_requests(rate, 3, prompt_len=8, output_len=4)


def _req(arrival: float, tokens: list[float], first_iter: float | None = None) -> RequestTiming:
    return RequestTiming(
        arrival_s=arrival,
        submit_s=arrival,
        token_times_s=tokens,
        prompt_len=8,
        output_len=len(tokens),
        first_iteration_s=first_iter,
    )


def test_summary_metrics_by_hand() -> None:
    reqs = [_req(0.0, [0.5, 0.6, 0.8]), _req(1.0, [1.2, 1.3, 1.4]), _req(2.0, [3.0, 3.5, 4.0])]
    s = summarize(reqs)
    assert s["requests"] == 3 and s["output_tokens"] == 9
    assert s["ttft_p50_s"] == pytest.approx(0.5)  # TTFTs 0.5, 0.2, 1.0
    assert s["ttft_p90_s"] == pytest.approx(0.5 + 0.8 * 0.5)  # linear interpolation between 0.5 and 1.0
    assert s["itl_p50_s"] == pytest.approx(0.15)  # gaps 0.1 0.2 0.1 0.1 0.5 0.5
    assert s["throughput_tokens_per_s"] == pytest.approx(9 / 4.0)  # last token − first arrival
    assert quantile([], 0.5) is None and summarize([])["requests"] == 0


def test_littles_law_from_the_two_records() -> None:
    # two requests in the engine over [0, 2]: one for 2 s, one for 1 s → L = 1.5 sequences on average
    its = [
        IterationTiming(start_s=0.0, end_s=1.0, seqs=2, decode_seqs=1, prefill_tokens=8, context_tokens=8),
        IterationTiming(start_s=1.0, end_s=2.0, seqs=1, decode_seqs=1, prefill_tokens=0, context_tokens=9),
    ]
    reqs = [_req(0.0, [1.0, 2.0], first_iter=0.0), _req(0.0, [1.0], first_iter=0.0)]
    res = LoadResult(requests=reqs, iterations=its, settings=EngineSettings())
    ll = littles_law(res)
    assert ll["mean_batch_seqs"] == pytest.approx(1.5)
    assert ll["arrival_rate_x_time_in_engine"] == pytest.approx(2 / 2.0 * 1.5)
    back = LoadResult.from_dict(res.to_dict())
    assert back.summary() == res.summary() and back.iterations == its


@pytest.mark.slow
def test_real_engine_records_every_token_inside_an_iteration() -> None:
    pytest.importorskip("transformers")
    from mlcost.measure.serve_load import HfEngine
    from mlcost.measure.torch_models import build_model

    module = build_model(TINY_LLAMA, seed=0)
    settings = EngineSettings(max_batch_tokens=64, max_seqs=4, page_size=16, num_blocks=64)
    work = poisson_requests(20.0, 8, prompt_len=12, output_len=6, seed=1)
    with HfEngine(module, settings, seed=0) as engine:
        engine.run(poisson_requests(50.0, 2, prompt_len=12, output_len=6, seed=9))  # warm-up
        res = engine.run(work, rate_per_s=20.0)
    assert len(res.requests) == 8 and res.info["engine"] == "hf"
    ends = sorted(i.end_s for i in res.iterations)
    for req, spec in zip(res.requests, work, strict=True):
        assert req.arrival_s == spec.arrival_s and req.submit_s >= req.arrival_s
        assert len(req.token_times_s) == spec.output_len  # no end-of-sequence token stops it early
        assert req.token_times_s == sorted(req.token_times_s)
        assert (
            req.first_iteration_s is not None and req.submit_s <= req.first_iteration_s < req.token_times_s[0]
        )
        # each token is stamped in the iteration that produced it: after its start, by its end
        for t in req.token_times_s:
            assert any(i.start_s < t <= i.end_s for i in res.iterations), t
    assert max(i.seqs for i in res.iterations) <= settings.max_seqs
    assert all(i.prefill_tokens + i.decode_seqs <= settings.max_batch_tokens for i in res.iterations)
    assert sum(i.prefill_tokens for i in res.iterations) == 8 * 12  # every prompt prefilled exactly once
    assert len(ends) >= 6  # at least output_len iterations
    ll = littles_law(res)
    assert ll["mean_batch_seqs"] == pytest.approx(ll["arrival_rate_x_time_in_engine"], rel=0.1)
    s = res.summary()
    assert s["requests"] == 8 and s["ttft_p50_s"] > 0 and s["itl_p50_s"] > 0
