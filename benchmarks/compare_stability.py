"""Do two ``mlcost measure train --compare`` runs on the same (busy) machine agree?

Runs ``mlcost measure train --compare baseline,<strategy>`` twice in one go (each a fresh process, the
strategies interleaved ``--repeats`` times inside each), and prints each run's speed-up with its 95%
bootstrap interval, the verdict, the stability warnings, and whether the two intervals are consistent
(they overlap: neither excludes the other). PASS when they are consistent.

The default strategy is ``checkpointing`` (cheap): on a 2-vCPU machine ``torch.compile`` of even a
2-layer model takes minutes on its first step (150 s measured here under load), so
``--strategy compile`` is available but slow.

    python benchmarks/compare_stability.py [--strategy checkpointing] [--steps 12] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from _provenance import header

TINY = ["--model", "gpt2", "--layers", "2", "--d-model", "64", "--vocab", "512", "--seq-len", "32"]


def compare_once(strategy: str, steps: int, warmup: int, repeats: int, ledger: str) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "mlcost",
        "measure",
        "train",
        *TINY,
        "--micro-batch",
        "2",
        "--steps",
        str(steps),
        "--warmup",
        str(warmup),
        "--compare",
        f"baseline,{strategy}",
        "--repeats",
        str(repeats),
        "--ledger",
        ledger,
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    if proc.returncode != 0:
        raise SystemExit(f"measure failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--strategy", default="checkpointing")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    print(header(f"compare stability: baseline vs {args.strategy}, run twice"))
    print(
        f"# tiny GPT-2 (2 layers, d 64), micro-batch 2 × 32 tokens, {args.steps} steps, {args.repeats} repeats"
    )
    intervals = []
    with tempfile.TemporaryDirectory() as tmp:
        ledger = f"sqlite:///{tmp}/bench.db"
        for i in (1, 2):
            t0 = time.perf_counter()
            out = compare_once(args.strategy, args.steps, args.warmup, args.repeats, ledger)
            run = next(r for r in out["runs"] if r["strategy"] != "baseline")
            ci = run["speedup_interval"]
            intervals.append(ci)
            warnings = sum(len(r.get("warnings") or []) for r in out["runs"])
            print(
                f"run {i}: speed-up {ci['speedup']:.3f}× [95% CI {ci['low']:.3f}–{ci['high']:.3f}] "
                f"verdict {ci['verdict']!r}; {warnings} stability warnings; {time.perf_counter() - t0:.0f} s"
            )
            for r in out["runs"]:
                for w in r.get("warnings") or []:
                    print(f"    {r['strategy']}: {w}")
    a, b = intervals
    consistent = a["low"] <= b["high"] and b["low"] <= a["high"]
    verdicts_clash = {a["verdict"], b["verdict"]} == {"faster", "slower"}
    print(f"intervals overlap: {consistent}; opposite verdicts: {verdicts_clash}")
    ok = consistent and not verdicts_clash
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
