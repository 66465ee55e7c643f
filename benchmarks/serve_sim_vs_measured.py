"""A real continuous-batching engine on this CPU vs the calibrated serving simulator, in one run.

What it does:

1. **Host**: CPU model and ISA flags, load average (again at the end).
2. **Calibrate what the simulator needs, here and now** (never fitted on a scored run):
   the GEMV weight-streaming bandwidth and the fp32 GEMM peak (``mlcost.calibrate.microbench``), then a
   separate calibration load on the engine (its own seed and a burst pattern) whose logged iterations fit
   the ``hf`` engine profile of this host (``mlcost.calibrate.serve.fit_engine_profile``: fixed cost per
   iteration, per sequence, prefill GEMM efficiency) through the simulator's own per-iteration cost.
3. **Measure**: transformers' continuous batching (engine ``hf``, ``mlcost.measure.serve_load``) serving a
   ~69 M-parameter fp32 Llama-style model with random weights (decode streams ~277 MB of weights per step)
   under open-loop Poisson loads at 3 request rates: 25%, 50% and 75% of the capacity the calibrated
   simulator predicts for this workload (so low / medium / near saturation on any machine).
4. **Simulate** the same workloads (same arrival times, same lengths, same engine limits) with the
   calibrated simulator and print, per rate, measured vs simulated TTFT p50/p90, inter-token latency p50
   and output throughput with their ratios and PASS/FAIL.

Acceptance (issue 14): TTFT p50/p90 and ITL p50 within 25%, throughput within 15%, at every rate. Exit
code 0 only when all hold.

    python benchmarks/serve_sim_vs_measured.py [--save raw.json] [--reuse raw.json] [--quick]

``--save`` keeps the raw measurements (every request's token times and every engine iteration);
``--reuse`` re-scores them without measuring (no torch). Seeded: the same machine gives the same workloads.
The machine may be shared: the load average before/after is printed; busy neighbours slow the engine
between calibration and measurement, which no simulator can know.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: The served model: Llama-style, fp32, random weights (values do not change timing).
MODEL = {
    "name": "cb-llama-69m",
    "n_layers": 8,
    "d_model": 768,
    "n_heads": 12,
    "d_ff": 2048,
    "vocab_size": 8192,
    "max_seq_len": 1024,
    "mlp": "swiglu",
    "norm": "rmsnorm",
    "position": "rope",
}
PROMPT_TOKENS = 64
OUTPUT_TOKENS = 32
#: Fractions of the simulated capacity the three scored rates run at.
LOAD_FRACTIONS = (0.25, 0.5, 0.75)
#: Each scored load lasts about this long (requests = rate × this, at least MIN_REQUESTS). Units: s.
LOAD_SECONDS = 40.0
MIN_REQUESTS = 40
SEED = 14
TOL_LATENCY = 0.25
TOL_THROUGHPUT = 0.15


def host_info() -> dict[str, Any]:
    from mlcost.catalog.host import detect_host

    cpu = detect_host().identity()
    return {"cpu": cpu, "logical_cpus": os.cpu_count()}


def spec() -> Any:
    from mlcost.spec import ModelSpec

    return ModelSpec(**MODEL)  # type: ignore[arg-type]


def measure(quick: bool) -> dict[str, Any]:
    """Microbenchmarks, model, engine; calibration load; three scored loads. Returns the raw record."""
    import torch

    from mlcost.calibrate.microbench import bench_gemv, bench_matmul
    from mlcost.calibrate.serve import calibration_requests
    from mlcost.measure.serve_load import EngineSettings, HfEngine, poisson_requests
    from mlcost.measure.torch_models import build_model

    raw: dict[str, Any] = {"host": host_info(), "load_before": os.getloadavg(), "quick": quick}
    t0 = time.perf_counter()
    gemv, gemv_bytes = bench_gemv(repeats=9)
    gemm = bench_matmul((256, 512, 1024), "float32", repeats=5)
    raw["microbench"] = {
        "gemv_bytes_per_s": gemv,
        "gemv_weight_bytes": gemv_bytes,
        "matmul_flops_per_s": gemm,
    }
    print(
        f"GEMV {gemv / 1e9:.1f} GB/s ({gemv_bytes / 2**20:.0f} MiB), fp32 GEMM best {max(gemm.values()) / 1e9:.1f} GFLOP/s"
    )
    settings = EngineSettings()
    module = build_model(spec(), seed=SEED)
    raw["settings"] = settings.to_dict()
    raw["torch_threads"] = torch.get_num_threads()
    with HfEngine(module, settings, seed=SEED) as engine:
        engine.run(poisson_requests(50.0, 8, prompt_len=PROMPT_TOKENS, output_len=OUTPUT_TOKENS, seed=99))
        cal = calibration_requests(
            prompt_len=PROMPT_TOKENS,
            output_len=OUTPUT_TOKENS,
            burst_gap_s=2.5,
            poisson_rate_per_s=3.0,
            poisson_requests=20 if quick else 40,
            seed=SEED + 1000,
        )
        res = engine.run(cal)
        raw["calibration"] = res.to_dict()
        print(f"calibration load: {len(cal)} requests, {len(res.iterations)} iterations, {res.seconds:.1f} s")
        raw["engine_warm_s"] = time.perf_counter() - t0
        raw["scored"] = []
        rates = scored_rates(raw)
        for k, rate in enumerate(rates):
            n = max(MIN_REQUESTS, round(rate * (LOAD_SECONDS / (2 if quick else 1))))
            work = poisson_requests(
                rate, n, prompt_len=PROMPT_TOKENS, output_len=OUTPUT_TOKENS, seed=SEED + k
            )
            r = engine.run(work, rate_per_s=rate)
            raw["scored"].append(r.to_dict())
            print(f"rate {rate:.2f}/s: {n} requests in {r.seconds:.1f} s")
    raw["load_after"] = os.getloadavg()
    raw["seconds"] = time.perf_counter() - t0
    return raw
