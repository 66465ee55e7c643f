"""Distillation: a student keeping half of the teacher's layers (initialised from them), trained to match the
teacher; reports student vs teacher quality and speed, the distillation's cost (time, FLOPs, energy — estimated
and labelled so when no counter exists — and dollars at the given price) and the break-even traffic after which
the machine time it saves per request pays its training back.

    python benchmarks/compress_distill.py [--example minilm|tiny-gpt] [--layers 3] [--steps 100]
        [--price-usd-per-h 0.10]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from _compress_common import summary
from _provenance import header


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--example", default="minilm", choices=["minilm", "tiny-gpt"])
    ap.add_argument("--layers", type=int, default=None, help="student layers (default: half the teacher's)")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--price-usd-per-h", type=float, default=None)
    ap.add_argument(
        "--threads", type=int, default=None, help="torch (and ONNX Runtime) threads; default torch's"
    )
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from mlcost.cli.compress import render
    from mlcost.compress import Options, compress, example_task, load_example

    print(header(f"compress: distilling {args.example}"))
    bundle = load_example(args.example)
    task = example_task(bundle, args.example)
    method = f"distill:{args.layers}" if args.layers else "distill"
    opts = Options(
        methods=[method],
        batch_sizes=[1, 32],
        rounds=args.rounds,
        max_quality_drop="5%",
        distill_steps=args.steps,
        train_batch=args.batch,
        lr=1e-3 if args.example == "tiny-gpt" else 5e-5,
        price_usd_per_h=args.price_usd_per_h,
        ledger=False,
    )
    report = compress(bundle, task, opts)
    render(report)
    print()
    print(summary(report, speed_goal=1.5, drop_goal_pt=5.0))
    primary = report["task"]["primary_metric"]
    teacher = report["variants"][0]
    for r in report["variants"][1:]:
        if r["status"] != "ok":
            print(f"{r['name']}: {r['status']} ({r['reason']})")
            continue
        t = r["training"]
        q, tq = r["quality"][primary], teacher["quality"][primary]
        print(
            f"teacher {primary}: {tq['value']:.4g} [{tq['low']:.4g}, {tq['high']:.4g}]; "
            f"student ({r['recipe']['layers']} of the teacher's layers): {q['value']:.4g} [{q['low']:.4g}, {q['high']:.4g}]"
        )
        print(
            f"student speed-up: {r['speedup']['value']:.2f}x [{r['speedup']['low']:.2f}, {r['speedup']['high']:.2f}] "
            f"at batch {r['batch_size']}; size {r['size_ratio']:.2f}x of the teacher"
        )
        cost = f", ${t['cost_usd']:.5f}" if t["cost_usd"] is not None else " (no price given: $ not claimed)"
        print(
            f"distillation cost: {t['time_s']:.1f} s, {t['flops']:.3g} FLOPs, {t['energy_j']:.0f} J "
            f"[{t['energy_source']}]{cost}, {t['examples_seen']} sequences seen"
        )
        be = r.get("break_even_requests")
        if be:
            print(
                f"break-even traffic: {be:.3g} requests (the machine time saved per request pays back the training time)"
            )
        else:
            print("break-even traffic: never (the student is not cheaper to serve on this machine)")
    print(f"elapsed {report['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
