"""Simulator speed: 10^5 requests through the continuous-batching simulator (acceptance: under 10 s on the
2-core build machine). Prints requests/s and simulated iterations/s per load, plus the share of iterations
summed in closed form. The last case has an 80% prefix-cache hit whose full KV blocks are shared (held once)
by the running sequences. Run: ``python benchmarks/serve_sim_speed.py [--requests N] [--repeat R]``."""

from __future__ import annotations

import argparse
import platform
import time

from mlcost.catalog import builtin_catalog
from mlcost.estimate.serve_sim import EngineConfig, kv_blocks, simulate
from mlcost.estimate.serve_step import replica_coefficients
from mlcost.estimate.serve_workload import Workload


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    cat = builtin_catalog()
    model = cat.model("llama-3.1-8b")
    dev = cat.device("h100-sxm")
    prof = cat.efficiency(dev.id)
    c = replica_coefficients(
        model, dev, prof, cat.engine_profile("vllm", dev), tp=1, weight_precision="bf16", kv_precision="bf16"
    )
    print(f"host: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(
        f"workload: llama-3.1-8b on 1 x h100-sxm, vllm, {args.requests} requests, lognormal prompts (mean 1000),"
    )
    print("exponential outputs (mean 200); best and worst of the repeats, interleaved")
    cases = [
        ("chunked, 5 req/s (light)", EngineConfig(), 5.0, 0.0),
        ("chunked, 15 req/s (busy)", EngineConfig(), 15.0, 0.0),
        ("chunked, 25 req/s (near capacity)", EngineConfig(), 25.0, 0.0),
        ("no chunking, 15 req/s", EngineConfig(chunked_prefill=False), 15.0, 0.0),
        ("chunked, 40 req/s, 80% shared prefix", EngineConfig(), 40.0, 0.8),
    ]
    walls: dict[str, list[float]] = {name: [] for name, *_ in cases}
    last = {}
    for _ in range(args.repeat):
        for name, cfg, rate, share in cases:
            nb = kv_blocks(c, dev.memory_bytes, prof.framework_overhead_bytes, cfg)
            wl = Workload.poisson(
                rate,
                args.requests,
                1000,
                200,
                seed=1,
                prompt_dist="lognormal",
                output_dist="exponential",
                prefix_share=share,
            )
            t0 = time.perf_counter()
            r = simulate(c, wl, cfg, n_blocks=nb)
            walls[name].append(time.perf_counter() - t0)
            last[name] = r
    print(
        f"{'case':36s} {'wall s (min-max)':>18s} {'requests/s':>11s} {'iterations/s':>13s} {'closed-form':>11s}"
    )
    worst = 0.0
    for name, *_ in cases:
        w = walls[name]
        r = last[name]
        worst = max(worst, max(w))
        print(
            f"{name:36s} {min(w):8.2f}-{max(w):<9.2f} {r.requests / min(w):11,.0f} {r.iterations / min(w):13,.0f} "
            f"{1 - r.event_steps / r.iterations:10.0%}"
        )
    print(
        f"slowest run: {worst:.2f} s for {args.requests} requests (target < 10 s): {'PASS' if worst < 10 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
