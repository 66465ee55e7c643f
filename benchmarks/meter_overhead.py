"""Overhead of the full CPU meter set on a realistic training step.

Runs a small MLP forward+backward+AdamW step (~10 ms on a 2-vCPU EPYC) in blocks, alternating blocks with
and without meters (timer start/stop each step, RSS sampler thread on, energy begin/end around the
block), in one process, and prints the overhead as a fraction of the step time (target < 1%).
Step time per block is the median of its steps (wall clock, perf_counter), so both arms are timed alike.

    python benchmarks/meter_overhead.py [--blocks 20] [--steps 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timezone

import torch

from mlcost.measure.meters import select_meters
from mlcost.measure.provenance import collect_provenance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=40, help="blocks per arm (alternating)")
    parser.add_argument("--steps", type=int, default=20, help="steps per block")
    args = parser.parse_args()

    prov = collect_provenance()
    print(
        f"# meter_overhead  {datetime.now(timezone.utc).isoformat(timespec='seconds')}  host {prov['hostname']}  "
        f"cpu {prov['cpu']['model']} ({prov['cores']['affinity']} usable)  torch {torch.__version__}  "
        f"threads {torch.get_num_threads()}  mlcost {prov['versions']['mlcost']} "
        f"git {(prov['git'] or {}).get('commit', '?')[:10]}"
    )

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(512, 2048), torch.nn.GELU(), torch.nn.Linear(2048, 512))
    opt = torch.optim.AdamW(model.parameters())
    x = torch.randn(64, 512)

    def step() -> None:
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(20):  # warm-up
        step()

    def block_plain() -> float:
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    meters = select_meters("cpu")
    print(f"# meters: {meters.timer.name}, {meters.energy.name}, {meters.memory.name}; notes: {meters.notes}")

    def block_metered() -> float:
        times = []
        meters.memory.reset()
        meters.energy.begin()
        for _ in range(args.steps):
            t0 = time.perf_counter()
            meters.timer.start()
            step()
            meters.timer.stop()
            times.append(time.perf_counter() - t0)
        meters.energy.end()
        meters.memory.read()
        return statistics.median(times)

    plain: list[float] = []
    metered: list[float] = []
    for i in range(args.blocks):
        first, second = (block_plain, block_metered) if i % 2 == 0 else (block_metered, block_plain)
        for fn in (first, second):
            (plain if fn is block_plain else metered).append(fn())
    meters.close()

    # Per-call cost of the timer itself, measured directly.
    n = 100_000
    t0 = time.perf_counter()
    for _ in range(n):
        meters.timer.start()
        meters.timer.stop()
    timer_call_s = (time.perf_counter() - t0) / n

    # Cost of one RSS sample (what the sampler thread does every interval_s).
    from mlcost.measure.meters import RssMemoryMeter

    rss = RssMemoryMeter(interval_s=None)
    t0 = time.perf_counter()
    for _ in range(10_000):
        rss._sample()
    sample_s = (time.perf_counter() - t0) / 10_000
    interval_s = getattr(meters.memory, "interval_s", None) or 0.005

    p, m = statistics.median(plain), statistics.median(metered)
    paired = statistics.median(mb / pb for mb, pb in zip(metered, plain, strict=True))
    print(f"step median without meters: {p * 1e3:.3f} ms  (blocks {args.blocks} x {args.steps} steps)")
    print(f"step median with meters:    {m * 1e3:.3f} ms")
    print(f"overhead (median of paired adjacent-block ratios): {(paired - 1) * 100:+.2f}% (target < 1%)")
    print(f"overhead (ratio of medians): {(m / p - 1) * 100:+.2f}%")
    print(
        f"RSS sample: {sample_s * 1e6:.1f} µs every {interval_s * 1e3:g} ms = {sample_s / interval_s * 100:.2f}% of one core"
    )
    print(f"timer start+stop: {timer_call_s * 1e6:.2f} µs/step = {timer_call_s / p * 100:.4f}% of step time")


if __name__ == "__main__":
    main()
