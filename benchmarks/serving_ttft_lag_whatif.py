"""What-if for a proposed engine parameter, NOT in the model: a first-token lag of k decode iterations
(SGLang's overlap scheduler and detokeniser deliver a token an iteration or two after the forward pass that made
it; docs/serving_validation.md). Adds k × the request's TPOT to the simulated median TTFT of SGLang cases, fits k
per (sglang, device) on the FIT rows' TTFT by least squares on log error (engine-level k for a device without fit
rows), and prints the golden TTFT mean |error| with and without it. The fitted engines.csv rows are unchanged,
so this understates what a joint fit would do.

Usage: python benchmarks/serving_ttft_lag_whatif.py
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.estimate.serving_cases import Case, cases, predict

from mlcost.catalog import get_catalog


def ttft_and_tpot(c: Case) -> tuple[float, float]:
    """Simulated median TTFT and median TPOT (ms) of the case's run."""
    prof = get_catalog().engine_profile(c.family, c.device)
    ttft = predict(c, prof)
    tpot = predict(Case(**{**c.__dict__, "metric": "tpot_ms", "stat": "median"}), prof)
    return ttft, tpot


def fit_k(rows: list[tuple[Case, float, float]]) -> float:
    def loss(k: float) -> float:
        return float(np.mean([math.log((t + k * p) / c.published) ** 2 for c, t, p in rows]))

    return float(minimize_scalar(loss, bounds=(0.0, 5.0), method="bounded").x)


def main() -> None:
    fit = [(c, *ttft_and_tpot(c)) for c in cases("fit") if c.engine == "sglang" and c.metric == "ttft_ms"]
    k_engine = fit_k(fit)
    k_dev = {d: fit_k([r for r in fit if r[0].device == d]) for d in {r[0].device for r in fit}}
    print(
        f"k (decode iterations of lag) fitted on SGLang fit TTFT rows: engine-level {k_engine:.2f}, "
        + ", ".join(f"{d} {k:.2f}" for d, k in sorted(k_dev.items()))
    )
    errs_now, errs_lag = [], []
    for c in cases("golden"):
        if c.metric != "ttft_ms":
            continue
        if c.engine != "sglang":
            e = abs(predict(c, get_catalog().engine_profile(c.family, c.device)) / c.published - 1)
            errs_now.append(e)
            errs_lag.append(e)
            continue
        t, p = ttft_and_tpot(c)
        k = k_dev.get(c.device, k_engine)
        errs_now.append(abs(t / c.published - 1))
        errs_lag.append(abs((t + k * p) / c.published - 1))
        print(
            f"  {c.case_id:34s} published {c.published:7.2f}  now {t:7.2f} ({t / c.published - 1:+.0%})  with lag {t + k * p:7.2f} ({(t + k * p) / c.published - 1:+.0%})"
        )
    print(
        f"golden TTFT mean |error|: now {np.mean(errs_now):.1%}, with the lag {np.mean(errs_lag):.1%} ({len(errs_now)} figures)"
    )


if __name__ == "__main__":
    main()
