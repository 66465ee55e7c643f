"""all-MiniLM-L6-v2 on this CPU: every compression method against fp32, measured in one run.

Prints, per method, the throughput speed-up at the largest batch (interleaved rounds, 95% bootstrap interval
over rounds), the size cut, and the change of the downstream accuracy (logistic regression on the embeddings
of gensim's 200 labelled movie-review sentences, 5-fold CV; paired 95% bootstrap interval over sentences), plus
the embedding fidelity. Target: a variant at >= 1.5x throughput within 1 point of fp32's accuracy, or a verdict
that explains from the ISA and the measurement why none reaches it here.

    python benchmarks/compress_minilm.py [--rounds 10] [--batch-sizes 1,32] [--methods ...]
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
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--batch-sizes", default="1,32")
    ap.add_argument("--methods", default=None)
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

    print(header("compress: all-MiniLM-L6-v2, every method vs fp32"))
    bundle = load_example("minilm")
    task = example_task(bundle, "minilm")
    opts = Options(
        methods=parse_methods(args.methods) if args.methods else None,
        batch_sizes=[int(b) for b in args.batch_sizes.split(",")],
        rounds=args.rounds,
        max_quality_drop="1pt",
        ledger=False,
    )
    report = compress(bundle, task, opts)
    render(report)
    print()
    print(summary(report, speed_goal=1.5, drop_goal_pt=1.0))
    print(f"elapsed {report['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
