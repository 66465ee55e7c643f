"""Planner speed: candidates evaluated per second (in process) and the wall time of a full-catalog
training plan as a subprocess, Python start-up included.

Targets (issues): >= 100,000 candidates/s on 2 cores; `mlcost plan train --model llama-3.1-8b --tokens 1e12`
under 3 s wall; a whole-catalog plan (every region of the imported SkyPilot prices) under 1 s of planning time.
``--baseline-src DIR`` also measures another checkout's ``src`` (e.g. /work/main/src) in a subprocess, in turns
with this one, and prints both and their ratio. A candidate is one (device, count, TP, PP, ZeRO, micro-batch, recompute, precision, price
row) configuration; the kernel runs once per layout and price rows scale it (the cost is linear in price).

Run: python benchmarks/plan_speed.py [--repeats 5] [--baseline-src /work/main/src]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


def measure(repeats: int) -> dict[str, float]:
    """In-process planning time of the full-catalog llama-3.1-8b plan (median over ``repeats``)."""
    from mlcost.catalog import get_catalog
    from mlcost.plan.train import plan_train

    cat = get_catalog()
    model = cat.model("llama-3.1-8b")
    plan_train(model, 1e12, catalog=cat)  # warm caches (efficiency profiles)
    rates, layout_rates, times = [], [], []
    res = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = plan_train(model, 1e12, catalog=cat)
        dt = time.perf_counter() - t0
        times.append(dt)
        rates.append(res.candidates_evaluated / dt)
        layout_rates.append(res.layouts_evaluated / dt)
    assert res is not None
    return {
        "candidates": res.candidates_evaluated,
        "layouts": res.layouts_evaluated,
        "feasible": res.feasible_plans,
        "price_rows": len(cat.prices()),
        "time_median_s": statistics.median(times),
        "time_min_s": min(times),
        "candidates_per_s": statistics.median(rates),
        "layouts_per_s": statistics.median(layout_rates),
    }


def _baseline(src: str, repeats: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run(
        [sys.executable, __file__, "--measure-only", "--repeats", str(repeats)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _show(label: str, m: dict[str, float]) -> None:
    print(
        f"{label}: {m['price_rows']:,.0f} price rows; {m['candidates']:,.0f} candidates "
        f"({m['layouts']:,.0f} kernel layouts), {m['feasible']:,.0f} feasible; plan time median "
        f"{m['time_median_s']:.3f} s (min {m['time_min_s']:.3f} s); candidates/s {m['candidates_per_s']:,.0f}; "
        f"kernel layouts/s {m['layouts_per_s']:,.0f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline-src", default=None, help="another checkout's src/ to compare against")
    ap.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure_only:
        print(json.dumps(measure(args.repeats)))
        return

    import numpy as np

    print(
        f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; python {platform.python_version()}, "
        f"numpy {np.__version__}; {time.strftime('%Y-%m-%d')}"
    )
    rounds = 3 if args.baseline_src else 1
    after, before = [], []
    for _ in range(rounds):  # in turns, so a noisy neighbour touches both
        after.append(_baseline(str(Path(__file__).resolve().parents[1] / "src"), args.repeats))
        if args.baseline_src:
            before.append(_baseline(args.baseline_src, args.repeats))
    for i, m in enumerate(after):
        _show(f"this tree, round {i + 1}", m)
    med = statistics.median(m["time_median_s"] for m in after)
    rate = statistics.median(m["candidates_per_s"] for m in after)
    print(f"whole-catalog plan time: median {med:.3f} s (target < 1 s: {1.0 / med:.2f}x headroom)")
    print(f"candidates/s: median {rate:,.0f} (target >= 100,000: {rate / 1e5:.2f}x)")
    if before:
        for i, m in enumerate(before):
            _show(f"baseline {args.baseline_src}, round {i + 1}", m)
        b_rate = statistics.median(m["candidates_per_s"] for m in before)
        b_time = statistics.median(m["time_median_s"] for m in before)
        print(
            f"before -> after: candidates/s {b_rate:,.0f} -> {rate:,.0f} ({rate / b_rate:.2f}x); plan time "
            f"{b_time:.3f} s -> {med:.3f} s ({med / b_time:.2f}x); price rows {before[0]['price_rows']:,.0f} -> "
            f"{after[0]['price_rows']:,.0f}"
        )

    cmd = [sys.executable, "-m", "mlcost", "plan", "train", "--model", "llama-3.1-8b", "--tokens", "1e12"]
    import resource

    walls, cpus = [], []
    for _ in range(args.repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = time.perf_counter() - t0
    print(
        f"`mlcost plan train --model llama-3.1-8b --tokens 1e12` wall: median {statistics.median(walls):.2f} s "
        f"(min {min(walls):.2f} s; bare python start-up {bare:.2f} s); target < 3 s: "
        f"{3.0 / statistics.median(walls):.2f}x headroom"
    )
    print(
        f"  its CPU time (user+sys): median {statistics.median(cpus):.2f} s; load average "
        f"{os.getloadavg()[0]:.1f} — wall well above CPU time means other processes share the cores"
    )


if __name__ == "__main__":
    main()
