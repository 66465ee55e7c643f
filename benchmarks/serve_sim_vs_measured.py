"""A real continuous-batching engine on this CPU vs the calibrated serving simulator, in one run.

What it does:

1. **Host**: CPU model and ISA flags, load average (again at the end).
2. **Calibrate what the simulator needs, here and now** (never fitted on a scored run):
   the GEMV weight-streaming bandwidth and the fp32 GEMM peak (``mlcost.calibrate.microbench``), then a
   separate calibration load on the engine (bursts of 1–16 requests, then a Poisson stretch with its own
   seed: ``mlcost.calibrate.serve.calibrate_hf_engine``) whose logged iterations fit the ``hf`` engine
   profile of this host (fixed cost per iteration and per sequence, GEMM scale, decode bandwidth) through
   the simulator's own per-iteration cost (``mlcost.estimate.serve_step``).
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

from mlcost.calibrate.serve import CAL_OUTPUT_TOKENS as OUTPUT_TOKENS
from mlcost.calibrate.serve import CAL_PROMPT_TOKENS as PROMPT_TOKENS
from mlcost.calibrate.serve import CALIBRATION_MODEL

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
    """The served model: ``mlcost calibrate --serve``'s calibration model (~69 M parameters, fp32)."""
    return CALIBRATION_MODEL


def hardware(raw: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The ``local`` device, first profile and the hf engine's default row, from this run's
    microbenchmarks (``mlcost.calibrate``'s own functions). Returns (device, profile, base engine)."""
    from mlcost.calibrate.fit import initial_profile, local_device
    from mlcost.calibrate.microbench import MicrobenchResult
    from mlcost.catalog import builtin_catalog

    m = raw["microbench"]
    mb = MicrobenchResult.from_dict(
        {
            "device": "cpu",
            "threads": raw["torch_threads"],
            "matmul_flops_per_s": {"float32": m["matmul_flops_per_s"]},
            "copy_bytes_per_s": m["gemv_bytes_per_s"],
            "gemv_bytes_per_s": m["gemv_bytes_per_s"],
            "gemv_weight_bytes": m["gemv_weight_bytes"],
            "weight_stream_bytes_per_s": m.get("weight_stream_bytes_per_s") or {},
        }
    )
    cat = builtin_catalog()
    device = local_device(mb, None)
    profile = initial_profile(mb, cat.efficiency("default-cpu"))
    return device, profile, cat.engine_profile("hf", device)  # the (hf, cpu) row: the fit's start


def calibrated(raw: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """Device, profile, fitted hf engine and the fit, from the saved calibration loads (the same fit the
    measurement made: refitting saved loads gives the same numbers)."""
    from mlcost.calibrate.serve import fit_loads, fitted_engine
    from mlcost.measure.serve_load import LoadResult

    device, profile, base = hardware(raw)
    loads = [LoadResult.from_dict(d) for d in raw["calibration_loads"]]
    fit = fit_loads(loads, spec(), device, profile, base)
    return device, profile, fitted_engine(base, device, fit), fit


def fmt_params(p: dict[str, float]) -> str:
    return (
        f"iteration {p['iteration_overhead_s'] * 1e3:.2f} ms + {p['per_seq_overhead_s'] * 1e3:.2f} ms/seq, "
        f"GEMM scale {p['matmul_eff_scale']:.2f}, decode bandwidth {p['decode_mem_bw_eff']:.0%}"
    )


def measure(quick: bool) -> dict[str, Any]:
    """Microbenchmarks, model, engine; calibration load; three scored loads. Returns the raw record."""
    import torch

    from mlcost.calibrate.microbench import bench_gemv, bench_matmul, bench_weight_stream_rows
    from mlcost.calibrate.serve import calibrate_hf_engine
    from mlcost.measure.serve_load import EngineSettings, HfEngine, poisson_requests
    from mlcost.measure.torch_models import build_model

    raw: dict[str, Any] = {"host": host_info(), "load_before": os.getloadavg(), "quick": quick}
    t0 = time.perf_counter()
    gemv, gemv_bytes = bench_gemv(repeats=9)
    gemm = bench_matmul((256, 512, 1024), "float32", repeats=5)
    stream = bench_weight_stream_rows()
    raw["microbench"] = {
        "gemv_bytes_per_s": gemv,
        "gemv_weight_bytes": gemv_bytes,
        "matmul_flops_per_s": gemm,
        "weight_stream_bytes_per_s": stream,
    }
    raw["torch_threads"] = torch.get_num_threads()
    print(
        f"GEMV {gemv / 1e9:.1f} GB/s ({gemv_bytes / 2**20:.0f} MiB fp32), "
        f"fp32 GEMM best {max(gemm.values()) / 1e9:.1f} GFLOP/s; weight stream by rows "
        + ", ".join(f"{k}: {v / 1e9:.1f}" for k, v in stream.items())
        + " GB/s"
    )
    device, profile, base = hardware(raw)
    settings = EngineSettings()
    raw["settings"] = settings.to_dict()
    module = build_model(spec(), seed=SEED)
    with HfEngine(module, settings, seed=SEED) as engine:
        engine.run(poisson_requests(50.0, 8, prompt_len=PROMPT_TOKENS, output_len=OUTPUT_TOKENS, seed=99))
        cal = calibrate_hf_engine(
            engine,
            spec(),
            device,
            profile,
            base,
            prompt_len=PROMPT_TOKENS,
            output_len=OUTPUT_TOKENS,
            seed=SEED + 1000,
            poisson_requests_n=16 if quick else 24,
        )
        raw["calibration_loads"] = [r.to_dict() for r in cal.loads]
        raw["capacity_rps"] = cal.capacity_rps
        n_cal = sum(len(r.requests) for r in cal.loads)
        print(
            f"calibration load: {n_cal} requests, {cal.fit.iterations} iterations; engine {fmt_params(cal.fit.params)}; "
            f"simulated capacity {cal.capacity_rps:.2f} requests/s"
        )
        rates = [round(f * cal.capacity_rps, 3) for f in LOAD_FRACTIONS]
        raw["scored"] = []
        raw["probes"] = [probe(engine)]
        for k, rate in enumerate(rates):
            n = max(MIN_REQUESTS, round(rate * (LOAD_SECONDS / (2 if quick else 1))))
            work = poisson_requests(
                rate, n, prompt_len=PROMPT_TOKENS, output_len=OUTPUT_TOKENS, seed=SEED + k
            )
            r = engine.run(work, rate_per_s=rate)
            raw["scored"].append(r.to_dict())
            raw["probes"].append(probe(engine))
            print(
                f"scored load at {rate:.2f} requests/s: {n} requests in {r.seconds:.1f} s "
                f"(probe ITL before/after {raw['probes'][-2] * 1e3:.1f}/{raw['probes'][-1] * 1e3:.1f} ms)"
            )
    raw["load_after"] = os.getloadavg()
    raw["seconds"] = time.perf_counter() - t0
    return raw


def probe(engine: Any) -> float:
    """Machine speed now: the median inter-token latency of one request served alone (not scored). Units: s."""
    from mlcost.measure.serve_load import LoadRequest

    res = engine.run([LoadRequest(arrival_s=0.0, prompt_len=PROMPT_TOKENS, output_len=OUTPUT_TOKENS)])
    return float(res.summary()["itl_p50_s"])


def score(raw: dict[str, Any]) -> bool:
    from mlcost.measure.serve_load import EngineSettings, LoadRequest, LoadResult, load_metrics, simulate_load

    device, profile, engine, fit = calibrated(raw)
    settings = EngineSettings(**raw["settings"])
    m = raw["microbench"]
    print(
        f"calibration: GEMV {m['gemv_bytes_per_s'] / 1e9:.1f} GB/s, GEMM peak {device.peak_for('fp32') / 1e9:.1f} "
        f"GFLOP/s; hf engine: {fmt_params(fit.params)}"
    )
    print(
        f"  fit on {fit.iterations} calibration iterations: median |error| {fit.median_abs_rel:.1%}, "
        f"total time {fit.total_time_rel:+.1%}"
    )
    checks = (
        ("TTFT p50", "ttft_s", TOL_LATENCY),
        ("TTFT p90", "ttft_p90_s", TOL_LATENCY),
        ("ITL p50", "itl_p50_s", TOL_LATENCY),
        ("throughput", "tokens_per_s", TOL_THROUGHPUT),
    )
    ok = True
    print(f"\n{'rate':>8} {'metric':<11} {'measured':>11} {'simulated':>11} {'ratio':>6}  verdict")
    for d in raw["scored"]:
        res = LoadResult.from_dict(d)
        meas = load_metrics(res)
        reqs = [
            LoadRequest(arrival_s=r.arrival_s, prompt_len=r.prompt_len, output_len=r.output_len)
            for r in res.requests
        ]
        sim, _ = simulate_load(
            spec(), reqs, settings, device=device, profile=profile, engine=engine, rate_per_s=res.rate_per_s
        )
        for label, key, tol in checks:
            a, b = float(meas[key]), float(sim[key])
            ratio = b / a
            good = abs(ratio - 1.0) <= tol
            ok &= good
            if key == "tokens_per_s":
                shown = f"{a:>7.1f} t/s {b:>7.1f} t/s"
            else:
                shown = f"{a * 1e3:>8.1f} ms {b * 1e3:>8.1f} ms"
            rate = f"{res.rate_per_s:.2f}/s"
            print(f"{rate:>8} {label:<11} {shown} {ratio:>6.2f}  {'PASS' if good else 'FAIL'} (±{tol:.0%})")
        print(
            f"{'':>8} {meas['requests_measured']} requests; mean batch measured {meas.get('mean_batch_seqs', 0):.2f}"
            f" (Little: λW = {meas.get('arrival_rate_x_time_in_engine', 0):.2f}), simulated {sim['mean_batch_seqs']:.2f}"
        )
    return ok


def main() -> int:
    from _provenance import header

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--save", type=Path, help="write the raw measurements here (JSON)")
    ap.add_argument("--reuse", type=Path, help="score saved measurements (no torch runs)")
    ap.add_argument("--quick", action="store_true", help="half-length loads (development)")
    args = ap.parse_args()
    print(header("serving: real continuous batching (transformers, CPU) vs the calibrated simulator"))
    if args.reuse:
        raw = json.loads(args.reuse.read_text())
        print(f"re-scoring {args.reuse} (measured {raw.get('date', '?')})")
    else:
        raw = measure(args.quick)
        raw["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        if args.save:
            args.save.write_text(json.dumps(raw))
            print(f"raw measurements saved to {args.save}")
    cpu = raw["host"]["cpu"]
    print(
        f"host CPU: {cpu.get('cpu_model')} | ISA {cpu.get('isa')} | flags {' '.join(cpu.get('flags') or [])} | "
        f"{raw['host'].get('logical_cpus')} logical CPUs, torch threads {raw.get('torch_threads')}"
    )
    lb, la = raw["load_before"], raw["load_after"]
    print(
        f"load average before {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}, after {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}"
    )
    if raw.get("seconds"):
        print(f"measurement time {raw['seconds']:.0f} s")
    if raw.get("probes"):
        p = [x * 1e3 for x in raw["probes"]]
        print(
            f"machine speed while measuring: batch-1 ITL probes {', '.join(f'{x:.1f}' for x in p)} ms "
            f"(spread {max(p) / min(p) - 1:.0%}; a quiet machine keeps it within a few %)"
        )
    ok = score(raw)
    print(
        f"\n{'PASS' if ok else 'FAIL'}: TTFT p50/p90 and ITL p50 within {TOL_LATENCY:.0%}, throughput within {TOL_THROUGHPUT:.0%} at every rate"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
