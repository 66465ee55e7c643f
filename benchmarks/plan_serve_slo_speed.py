"""Wall time of issue #14's SLO planning example (acceptance: under 10 s on the 2-core build machine):

    mlcost plan serve --model llama-3.1-70b --rps 2 --prompt-tokens 3000 --output-tokens 300
        --ttft-p90-ms 1000 --itl-p90-ms 40

run as a subprocess (interpreter start and imports included) ``--repeat`` times; prints each wall time, the
range, the planner's own ``elapsed_s`` and the fleet it names. Run: ``python benchmarks/plan_serve_slo_speed.py``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

ARGV = [
    "plan", "serve", "--model", "llama-3.1-70b", "--rps", "2", "--prompt-tokens", "3000", "--output-tokens", "300",
    "--ttft-p90-ms", "1000", "--itl-p90-ms", "40", "--json",
]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    walls: list[float] = []
    d: dict = {}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "mlcost", *ARGV], capture_output=True, text=True, check=True
        )
        walls.append(time.perf_counter() - t0)
        d = json.loads(proc.stdout)
    p = d["plans"][0] if d["plans"] else d["closest"]
    print("mlcost " + " ".join(ARGV))
    print(
        f"wall s per run: {', '.join(f'{w:.2f}' for w in walls)} (min {min(walls):.2f}, max {max(walls):.2f})"
    )
    print(
        f"planner elapsed_s (last run): {d['elapsed_s']:.2f}; {d['candidates']} configurations, "
        f"{d['pruned_by_closed_form']} pruned by the closed form, {d['simulations']} simulations"
    )
    sim = p["simulated"]
    print(
        f"status {d['status']}: {p['replicas']} x ({p['tp']} x {p['device']}) {p['weight_precision']}, {p['engine']}, "
        f"chunked prefill {p['chunked_prefill']} ({p['max_num_batched_tokens']} tokens), ${p['cost_per_hour_usd']:.2f}/h; "
        f"binding {p['binding_slo']}"
    )
    for k in ("ttft_s", "itl_s", "e2e_s"):
        print(
            f"  {k}: p50 {sim[k]['p50'] * 1e3:.1f} ms, p90 {sim[k]['p90'] * 1e3:.1f} ms, p99 {sim[k]['p99'] * 1e3:.1f} ms"
        )
    print(f"slowest run {max(walls):.2f} s (target < 10 s): {'PASS' if max(walls) < 10 else 'FAIL'}")


if __name__ == "__main__":
    main()
