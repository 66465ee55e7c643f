"""Published MoE step times against mlcost's prediction (tests/estimate/data/published_moe_runs.csv: two
``fit`` rows give the share of the all-to-all Megatron-Core's overlap hides, the rest are held out). Prints
the share, then one row per run: its split, the published step, the prediction with the row's
dispatcher and with the plain all-to-all dispatcher (one copy per (token, expert) pair), their errors, and
the exposed all-to-all time ("a2a s"); then the held-out mean |error|, with and without the known misses.

    python benchmarks/moe_published_runs.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.estimate.moe_published_runs import load, megatron_ep_overlap_share, predicted
from tests.estimate.test_golden_moe_runs import KNOWN_MISSES

from mlcost.estimate import estimate_train


def main() -> None:
    print(f"Megatron-Core all-to-all overlap share (fit pair): {megatron_ep_overlap_share():.4f}")
    plain = {r.id: r for r in load(moe_dispatcher="alltoall")}
    errs, kept = [], []
    print(
        f"{'run':36s} {'split':5s} {'metric':20s} {'published':>9s} {'predicted':>9s} {'err':>7s} {'a2a s':>6s} "
        f"{'GB':>5s} | {'plain':>9s} {'err':>7s}"
    )
    for run in load():
        est = estimate_train(run.model, run.job, run.cluster, framework=run.framework)
        p = plain[run.id]
        alt = estimate_train(p.model, p.job, p.cluster, framework=p.framework)
        got, got_plain = predicted(run, est.step_time_s), predicted(run, alt.step_time_s)
        err = got / run.published - 1.0
        if run.split == "test":
            errs.append(abs(err))
            if run.id not in KNOWN_MISSES:
                kept.append(abs(err))
        print(
            f"{run.id:36s} {run.split:5s} {run.metric:20s} {run.published:9.1f} {got:9.1f} {err:+7.1%} "
            f"{est.time_breakdown_s['ep_comm_s']:6.2f} {est.memory.total / 1e9:5.1f} | {got_plain:9.1f} "
            f"{got_plain / run.published - 1.0:+7.1%}"
        )
    print(
        f"held-out mean |error| (each row's own dispatcher): {sum(errs) / len(errs):.1%} over {len(errs)} runs"
    )
    print(
        f"without the known misses (tests/estimate/test_golden_moe_runs.py): {sum(kept) / len(kept):.1%} over {len(kept)}"
    )


if __name__ == "__main__":
    main()
