"""Published MoE step times against mlcost's prediction (tests/estimate/data/published_moe_runs.csv; held
out, nothing fitted to them). Prints one row per run: the published step, the prediction with the row's
dispatcher and with the plain all-to-all dispatcher (one copy per (token, expert) pair), their errors, and
the exposed all-to-all time; then the mean |error|.

    python benchmarks/moe_published_runs.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlcost.estimate import estimate_train  # noqa: E402
from tests.estimate.moe_published_runs import load  # noqa: E402


def main() -> None:
    plain = {r.id: r for r in load(moe_dispatcher="alltoall")}
    errs = []
    print(f"{'run':38s} {'pub s':>6s} {'pred s':>7s} {'err':>7s} {'a2a s':>6s} | {'plain s':>7s} {'err':>7s}")
    for run in load():
        est = estimate_train(run.model, run.job, run.cluster, framework=run.framework)
        p = plain[run.id]
        alt = estimate_train(p.model, p.job, p.cluster, framework=p.framework)
        err = est.step_time_s / run.published_step_s - 1.0
        errs.append(abs(err))
        print(
            f"{run.id:38s} {run.published_step_s:6.1f} {est.step_time_s:7.2f} {err:+7.1%} "
            f"{est.time_breakdown_s['ep_comm_s']:6.2f} | {alt.step_time_s:7.2f} "
            f"{alt.step_time_s / run.published_step_s - 1.0:+7.1%}"
        )
    print(f"mean |error| (each row's own dispatcher): {sum(errs) / len(errs):.1%} over {len(errs)} runs")


if __name__ == "__main__":
    main()
