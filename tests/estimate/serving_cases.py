"""Published serving measurements (tests/estimate/data/serving_published.csv) as typed cases, shared by the
golden serving test and benchmarks/fit_engine_profiles.py.

Each case names one published figure (a metric of one run) with the run's full setup; ``predict`` answers it
through the public interface a user would call: ``estimate_serve`` for static batches (the closed form) and
the continuous-batching simulator for everything else, with the engine profile of the case's engine family.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "serving_published.csv"

#: Engine family whose profile predicts a case's engine. NIM runs TensorRT-LLM where an optimized profile
#: exists (docs/reference/serving_sources.md, "nim").
ENGINE_FAMILY: dict[str, str] = {"trtllm": "trtllm", "nim": "trtllm", "vllm": "vllm", "sglang": "sglang"}

#: Mean ShareGPT lengths as served by sglang.bench_serving (docs/reference/serving_sources.md, "sglang-h200").
SHAREGPT_MEAN_ISL = 224
SHAREGPT_MEAN_OSL = 192


@dataclass(frozen=True)
class Case:
    """One published figure and the setup of the run that produced it (units as in the CSV)."""

    case_id: str
    split: str  # fit | golden | excluded
    engine: str
    engine_version: str
    model: str
    device: str
    tp: int
    weight_precision: str
    kv_precision: str
    batching: str  # static | continuous
    load: str  # batch | concurrency | rate | offline
    load_value: float  # batch size, concurrency, req/s, or inf (offline)
    num_requests: int | None
    isl: int
    osl: int
    lengths: str  # fixed | uniform_1_max | pm15pct | sharegpt_mean
    metric: str  # output_tokens_per_s[_per_gpu] | ttft_ms | itl_ms | tpot_ms
    stat: str  # mean | median
    published: float
    unit: str
    source: str
    locator: str
    note: str

    @property
    def family(self) -> str:
        return ENGINE_FAMILY[self.engine]

    @property
    def profile_key(self) -> tuple[str, str]:
        """(engine family, device): the engine profile that predicts this case."""
        return (self.family, self.device)


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="") as fh:
        yield from csv.DictReader(line for line in fh if not line.startswith("#"))


def load_cases(path: Path = DATA) -> list[Case]:
    """Every row of the CSV, typed."""
    out = []
    for r in _rows(path):
        out.append(
            Case(
                case_id=r["case_id"],
                split=r["split"],
                engine=r["engine"],
                engine_version=r["engine_version"],
                model=r["model"],
                device=r["device"],
                tp=int(r["tp"]),
                weight_precision=r["weight_precision"],
                kv_precision=r["kv_precision"],
                batching=r["batching"],
                load=r["load"],
                load_value=float(r["load_value"]),
                num_requests=int(r["num_requests"]) if r["num_requests"] else None,
                isl=int(r["isl"]),
                osl=int(r["osl"]),
                lengths=r["lengths"],
                metric=r["metric"],
                stat=r["stat"],
                published=float(r["published"]),
                unit=r["unit"],
                source=r["source"],
                locator=r["locator"],
                note=r["note"],
            )
        )
    return out


def cases(split: str) -> list[Case]:
    return [c for c in load_cases() if c.split == split]


# ---- predicting a case through the public interface -------------------------------------------------

#: Engine settings per (engine, version) for the simulator, from the sources' launch commands and the
#: engines' documented defaults (docs/serving_validation.md lists them). Keys of EngineConfig.
ENGINE_SETTINGS: dict[tuple[str, str], dict[str, object]] = {
    # trtllm-bench throughput (perf-overview): max batch 2048, max_num_tokens 8192, KV fraction 0.90-0.95;
    # in-flight batching mixes context and generation requests in one iteration.
    # 32-token KV blocks (tokens_per_block).
    ("trtllm", "1.0 (PyTorch backend)"): {
        "max_num_seqs": 2048,
        "max_num_batched_tokens": 8192,
        "chunked_prefill": True,
        "gpu_memory_fraction": 0.95,
        "kv_block_size": 32,
    },
    # NIM 1.8.0 (TensorRT-LLM profile): batch limits not stated; only concurrency <= 50 is used.
    ("nim", "1.8.0"): {
        "max_num_seqs": 256,
        "max_num_batched_tokens": 8192,
        "chunked_prefill": True,
        "kv_block_size": 32,
    },
    # vLLM 0.6.0: V0 scheduler, chunked prefill off, --max_model_len 4096 (token budget = max_model_len),
    # gpu_memory_utilization 0.9 (benchmark_vllm_060/README.md).
    ("vllm", "0.6.0"): {
        "max_num_seqs": 256,
        "max_num_batched_tokens": 4096,
        "chunked_prefill": False,
        "gpu_memory_fraction": 0.9,
    },
    # vLLM 0.19.1: V1 scheduler, chunked prefill on, defaults.
    ("vllm", "0.19.1"): {"max_num_seqs": 256, "max_num_batched_tokens": 8192, "chunked_prefill": True},
    # SGLang: an iteration is either a prefill (extend) batch of up to chunked_prefill_size 8192 tokens or a
    # decode batch (mixed chunks are off by default) = the simulator's chunked-prefill-off loop; mem_frac
    # 0.88 at TP 1 and 0.85 at TP > 1 (benchmark_vllm_060/README.md); running requests limited by the KV pool
    # and the admission reserve (RESERVE_OUTPUT_FRAC).
    ("sglang", "0.3.0"): {"max_num_seqs": 4096, "max_num_batched_tokens": 8192, "chunked_prefill": False},
    ("sglang", "not stated"): {
        "max_num_seqs": 4096,
        "max_num_batched_tokens": 8192,
        "chunked_prefill": False,
    },
}

#: Simulated requests are capped here (offline runs of 30,000 requests reach their steady state well before;
#: the cap keeps the golden test fast). The cap is the same for fitting and testing. A closed loop whose source
#: does not state the request count (NIM: AIPerf measures a steady-state window) gets the cap, so that the
#: start-up burst (every client's first prompt at t = 0), which such tools leave out, weighs little.
MAX_SIMULATED_REQUESTS = 3000

#: Share of a request's output tokens the engine's admission reserves in the KV pool up front.
#: TensorRT-LLM: 1.0 (default capacity scheduler GUARANTEED_NO_EVICT reserves prompt + output; SchedulerConfig
#: in tensorrt_llm/llmapi/llm_args.py). SGLang: 0.7 (the scheduler reserves max_new_tokens × new_token_ratio,
#: SGLANG_INIT_NEW_TOKEN_RATIO = 0.7, and retracts if it runs out). vLLM reserves nothing (it preempts), as the
#: simulator does.
RESERVE_OUTPUT_FRAC: dict[str, float] = {"trtllm": 1.0, "sglang": 0.7}
SEED = 0


def mean_lengths(case: Case) -> tuple[float, float]:
    """Mean prompt and output tokens of the case's requests."""
    if case.lengths == "sharegpt_mean":
        return float(SHAREGPT_MEAN_ISL), float(SHAREGPT_MEAN_OSL)
    if case.lengths == "uniform_1_max":
        return case.isl / 2.0, case.osl / 2.0
    return float(case.isl), float(case.osl)


def engine_config(case: Case):  # type: ignore[no-untyped-def]
    """The simulator's engine settings for the case (:data:`ENGINE_SETTINGS`).

    The simulator admits a request when its prompt's KV blocks are free (vLLM's rule) and preempts when
    decodes run out of blocks. TensorRT-LLM and SGLang reserve KV for (part of) the output at admission
    (:data:`RESERVE_OUTPUT_FRAC`) and so almost never preempt; for them the running batch is capped at the
    number of requests whose reserve fits in the KV pool (mean lengths)."""
    from mlcost.catalog import get_catalog
    from mlcost.estimate.serve_sim import EngineConfig, kv_blocks
    from mlcost.estimate.serve_step import replica_coefficients

    settings = dict(ENGINE_SETTINGS[(case.engine, case.engine_version)])
    if case.engine == "sglang":
        settings["gpu_memory_fraction"] = 0.88 if case.tp == 1 else 0.85
    cfg = EngineConfig(**settings)  # type: ignore[arg-type]
    reserve = RESERVE_OUTPUT_FRAC.get(case.family)
    if reserve is None:
        return cfg
    cat = get_catalog()
    device = cat.device(case.device)
    prof = cat.efficiency(case.device)
    coeffs = replica_coefficients(
        cat.model(case.model),
        device,
        prof,
        cat.engine_profile(case.family, device),
        tp=case.tp,
        weight_precision=case.weight_precision,
        kv_precision=case.kv_precision,
    )
    pool_tokens = (
        kv_blocks(coeffs, device.memory_bytes, prof.framework_overhead_bytes, cfg) * cfg.kv_block_size
    )
    isl, osl = mean_lengths(case)
    cap = int(pool_tokens // (isl + reserve * osl))
    return EngineConfig(**{**settings, "max_num_seqs": max(1, min(cfg.max_num_seqs, cap))})  # type: ignore[arg-type]


def workload(case: Case):  # type: ignore[no-untyped-def]
    """The case's requests: arrivals (offline = all at once, a closed loop of clients, or Poisson) and
    lengths (module docstring of the CSV)."""
    import numpy as np

    from mlcost.estimate.serve_workload import Workload

    if case.load == "concurrency":
        conc = int(case.load_value)
        n = case.num_requests or MAX_SIMULATED_REQUESTS
    elif case.load == "offline":
        n = case.num_requests or 1000
        conc = None
    else:
        conc = None
        n = case.num_requests or 1000
    n = min(n, MAX_SIMULATED_REQUESTS)
    isl, osl = case.isl, case.osl
    if case.lengths == "sharegpt_mean":
        isl, osl = SHAREGPT_MEAN_ISL, SHAREGPT_MEAN_OSL
    if case.lengths == "pm15pct":
        rng = np.random.default_rng(SEED)
        p = rng.integers(int(0.85 * isl), int(1.15 * isl) + 1, size=n)
        o = rng.integers(int(0.85 * osl), int(1.15 * osl) + 1, size=n)
        return Workload(prompt_tokens=p, output_tokens=o, concurrency=conc or n)
    dist = "uniform" if case.lengths == "uniform_1_max" else "fixed"
    mean_p = (isl + 1) // 2 if dist == "uniform" else isl
    mean_o = (osl + 1) // 2 if dist == "uniform" else osl
    kw = {"seed": SEED, "prompt_dist": dist, "output_dist": dist}
    if case.load == "rate":
        return Workload.poisson(case.load_value, n, mean_p, mean_o, **kw)  # type: ignore[arg-type]
    return Workload.closed_loop(conc or n, n, mean_p, mean_o, **kw)  # type: ignore[arg-type]


def predict(case: Case, engine_profile) -> float:  # type: ignore[no-untyped-def]
    """The case's metric as ``mlcost`` predicts it (same unit as ``case.published``)."""
    from mlcost.catalog import get_catalog
    from mlcost.estimate import estimate_serve
    from mlcost.estimate.serve import estimate_serve_sim
    from mlcost.spec import Cluster, ServeJob

    model = get_catalog().model(case.model)
    cluster = Cluster(device=case.device, count=case.tp)
    if case.batching == "static":
        job = ServeJob(
            prompt_len=case.isl,
            output_len=case.osl,
            batch=int(case.load_value),
            tp=case.tp,
            weight_precision=case.weight_precision,  # type: ignore[arg-type]
            kv_precision=case.kv_precision,  # type: ignore[arg-type]
        )
        est = estimate_serve(model, job, cluster, engine_profile=engine_profile)
        if case.metric == "ttft_ms":
            return est.ttft_s * 1e3
        if case.metric == "output_tokens_per_s_per_gpu":
            return est.tokens_per_s / case.tp
        raise ValueError(f"{case.case_id}: no static prediction for {case.metric}")
    est = estimate_serve_sim(
        model,
        workload(case),
        cluster,
        tp=case.tp,
        weight_precision=case.weight_precision,
        kv_precision=case.kv_precision,
        config=engine_config(case),
        engine_profile=engine_profile,
    )
    sim = est.simulation
    assert sim is not None
    key = "p50" if case.stat == "median" else "mean"
    if case.metric == "output_tokens_per_s":
        return float(sim["output_tokens_per_s"])
    if case.metric == "output_tokens_per_s_per_gpu":
        return float(sim["output_tokens_per_s"]) / case.tp
    if case.metric == "ttft_ms":
        return float(sim["ttft_s"][key]) * 1e3
    if case.metric == "itl_ms":
        return float(sim["itl_s"][key]) * 1e3
    if case.metric == "tpot_ms":
        return float(sim["tpot_s"][key]) * 1e3
    raise ValueError(f"{case.case_id}: unknown metric {case.metric}")
