"""Time and peak memory of ``solve_allocation`` as the number of resources grows (issue #9 item 3).

For n = 10^2, 10^3, 10^4 resources (and 5,000 integer ones, the acceptance case) it builds a min-cost
problem with a performance floor, a budget, a total-unit cap and per-resource bounds, solves it, and prints
wall time and the peak of Python allocations during the solve (``tracemalloc``, which sees numpy and
scipy's Python-side arrays, not HiGHS's C++ heap) and the process's peak RSS (``ru_maxrss``, which does).
Each size runs in its own subprocess, so one size's peak RSS does not hide another's.

    python benchmarks/allocate_scale.py            # 10^2, 10^3, 10^4 integer and continuous + 5,000 integer
    python benchmarks/allocate_scale.py --quick    # 10^2 and 10^3 only

Memory should grow linearly: bytes per resource stay roughly constant from one size to the next.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tracemalloc


def make_problem(n: int, integer: bool, seed: int = 0):  # type: ignore[no-untyped-def]
    import numpy as np

    from mlcost.plan.allocate import AllocationProblem, Constraints, Resource

    rng = np.random.default_rng(seed)
    cost = rng.uniform(1.0, 10.0, n)
    perf = cost * rng.uniform(0.5, 1.5, n)  # performance roughly proportional to cost
    cap = rng.integers(5, 50, n)
    resources = tuple(
        Resource(
            name=f"r{i}",
            unit_cost=float(cost[i]),
            performance=float(perf[i]),
            integer=integer,
            min_units=1.0 if i % 10 == 0 else 0.0,
            max_units=float(cap[i]),
        )
        for i in range(n)
    )
    floor = 0.3 * float(perf @ cap)
    return AllocationProblem(
        resources=resources,
        constraints=Constraints(
            min_performance=floor, max_units=float(cap.sum()), max_cost=float(cost @ cap)
        ),
    )


def one(n: int, integer: bool, time_limit_s: float | None) -> dict[str, float | int | str]:
    import resource

    import scipy.optimize
    import scipy.sparse  # noqa: F401

    from mlcost.plan.allocate import solve_allocation

    problem = make_problem(n, integer)
    solve_allocation(make_problem(5, integer))  # warm up lazy imports inside scipy/HiGHS
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    result = solve_allocation(problem, time_limit_s=time_limit_s)
    wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    _, peak_py = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "n": n,
        "kind": "integer" if integer else "continuous",
        "status": result.status,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "skipped": result.step_changes_skipped,
        "peak_python_bytes": peak_py,
        "peak_rss_bytes": rss_kib * 1024,
        "binding": len(result.binding_constraints),
        "mip_gap": -1.0 if result.mip_gap is None else result.mip_gap,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--one", nargs=2, metavar=("N", "KIND"), help=argparse.SUPPRESS)
    ap.add_argument("--time-limit-s", type=float, default=None)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1] == "integer", args.time_limit_s)))
        return
    sizes = [100, 1000] if args.quick else [100, 1000, 10_000]
    cases = [(n, k) for n in sizes for k in ("continuous", "integer")]
    if not args.quick:
        cases.append((5000, "integer"))
    head = f"{'n':>7} {'kind':>10} {'status':>10} {'wall':>8} {'cpu':>8} {'py peak':>10} {'B/resource':>10}"
    print(f"{head} {'RSS peak':>10} {'binding':>8} {'not re-solved':>13}")
    for n, kind in cases:
        cmd = [sys.executable, __file__, "--one", str(n), kind]
        if args.time_limit_s is not None:
            cmd += ["--time-limit-s", str(args.time_limit_s)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r = json.loads(out)
        print(
            f"{r['n']:>7} {r['kind']:>10} {r['status']:>10} {r['wall_s']:>7.2f}s {r['cpu_s']:>7.2f}s "
            f"{r['peak_python_bytes'] / 2**20:>8.1f}Mi {r['peak_python_bytes'] / n:>10.0f} "
            f"{r['peak_rss_bytes'] / 2**20:>8.0f}Mi {r['binding']:>8} {r['skipped']:>13}"
        )
    print(
        "py peak: tracemalloc peak during the solve; RSS peak: the whole process (Python + numpy + scipy + HiGHS)"
    )
    print("cpu: CPU time of all the process's threads; wall well above cpu means the machine was shared")


if __name__ == "__main__":
    main()
