"""The digits CNN on this CPU: quantization, structured channel pruning (physically removed, with a short
recovery fine-tune) and unstructured magnitude pruning against fp32, measured in one run.

Expected shape of the result: channel pruning shows a real speed-up (the convolutions do less work), unstructured
pruning shows none (zeros in dense tensors), dynamic int8 touches only the Linear layers (convolutions stay fp32).

    python benchmarks/compress_digits.py [--rounds 12] [--batch-sizes 1,256]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from _compress_common import summary
from _provenance import header

METHODS = (
    "int8-dynamic,bf16,onnx-int8,prune-channels:0.5,prune-channels:0.75,unstructured:0.5,unstructured:0.9"
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--batch-sizes", default="1,256")
    ap.add_argument("--recover-steps", type=int, default=150)
    ap.add_argument(
        "--threads", type=int, default=None, help="torch (and ONNX Runtime) threads; default torch's"
    )
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from mlcost.cli.compress import render
    from mlcost.compress import Options, compress, example_task, load_example
    from mlcost.compress.recipes import parse_methods

    print(header("compress: digits CNN, every method vs fp32"))
    bundle = load_example("digits-cnn")
    task = example_task(bundle, "digits-cnn")
    opts = Options(
        methods=parse_methods(METHODS),
        batch_sizes=[int(b) for b in args.batch_sizes.split(",")],
        rounds=args.rounds,
        max_quality_drop="1pt",
        recover_steps=args.recover_steps,
        lr=1e-3,
        ledger=False,
    )
    report = compress(bundle, task, opts)
    render(report)
    print()
    print(summary(report, speed_goal=1.5, drop_goal_pt=1.0))
    rows = {r["name"]: r for r in report["variants"] if r["status"] == "ok"}
    for name in ("prune-channels-0.5", "prune-channels-0.75", "unstructured-0.5", "unstructured-0.9"):
        if name in rows:
            sp = rows[name]["speedup"]
            real = (
                "a real speed-up"
                if sp["low"] > 1.05
                else (
                    "slower" if sp["high"] < 1.0 else "no meaningful speed-up (interval starts below 1.05x)"
                )
            )
            print(f"{name}: {sp['value']:.2f}x [{sp['low']:.2f}, {sp['high']:.2f}] -> {real}")
    print(f"elapsed {report['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
