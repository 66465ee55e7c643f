"""Reproduce the shipped A100 efficiency profile (catalog/data/efficiency.toml, device a100-80gb) from
Megatron-LM Table 1 (Narayanan et al. 2021, arXiv 2104.04473; docs/reference/published_runs.md §A).

The ten weak-scaling runs (1.7B–1T parameters, 32–3072 A100-80GB, seq 2048, fp16, full recompute,
micro-batch 1, interleaved 1F1B) are predicted through ``estimate_train`` — the function users call — with a
candidate profile; five time parameters minimise the squared log-ratios of predicted to published TF/s/GPU
(``scipy.optimize.least_squares``, parameters in log space, bounded to physically plausible values: attention
at most 0.6 of peak, memory efficiency at most 0.8, links at most 0.8 (NVLink) / 0.9 (InfiniBand)). Several
starting points; the best fit wins. ``matmul_half_dim`` stays at the shipped 60 (see BOUNDS).

Prints the fitted and shipped parameters with their relative differences (PASS when each is within 1%), and
each row's Table 1 error with the fitted and with the shipped profile.

    python benchmarks/fit_a100_profile.py
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import header

from mlcost.catalog import EfficiencyProfile, builtin_catalog
from mlcost.estimate import estimate_train
from mlcost.spec import Cluster

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.estimate.test_golden_megatron import ROWS, table1_job  # Table 1 rows and step: defined once

#: Fitted parameters with (lower, upper) bounds. ``matmul_half_dim`` is not fitted: Table 1's smallest GEMM
#: dimension is 768 (hidden/TP), where d/(d + half_dim) hardly moves, so the data cannot identify it (a free fit
#: drives it to any bound and trades it against matmul_eff_max); it stays at the shipped 60.
BOUNDS: dict[str, tuple[float, float]] = {
    "matmul_eff_max": (0.3, 1.0),
    "attention_eff": (0.05, 0.6),
    "mem_bw_eff": (0.05, 0.8),
    "intra_comm_eff": (0.05, 0.8),
    "inter_comm_eff": (0.05, 0.9),
}
STARTS = (
    {"matmul_eff_max": 0.6, "attention_eff": 0.3, "mem_bw_eff": 0.5, "intra_comm_eff": 0.5, "inter_comm_eff": 0.5},
    {"matmul_eff_max": 0.9, "attention_eff": 0.5, "mem_bw_eff": 0.7, "intra_comm_eff": 0.7, "inter_comm_eff": 0.8},
    {"matmul_eff_max": 0.5, "attention_eff": 0.1, "mem_bw_eff": 0.2, "intra_comm_eff": 0.3, "inter_comm_eff": 0.3},
)  # fmt: skip


def predict_all(profile: EfficiencyProfile) -> np.ndarray:
    """Predicted TF/s/GPU of each Table 1 row with ``profile``."""
    cat = builtin_catalog()
    out = []
    for name, tp, pp, gpus, batch, _ in ROWS:
        model = cat.model(name)
        job = table1_job(model.n_layers, tp, pp, batch)
        est = estimate_train(
            model, job, Cluster(device="a100-80gb", count=gpus), catalog=cat, profile=profile
        )
        out.append(est.tflops_per_device)
    return np.array(out)


def fit(shipped: EfficiencyProfile) -> EfficiencyProfile:
    names = list(BOUNDS)
    lo = np.log([BOUNDS[n][0] for n in names])
    hi = np.log([BOUNDS[n][1] for n in names])
    published = np.array([r[-1] for r in ROWS], dtype=float)

    def residuals(x: np.ndarray) -> np.ndarray:
        prof = shipped.replace(**dict(zip(names, np.exp(x).tolist(), strict=True)))
        return np.log(predict_all(prof) / published)

    best = None
    for start in STARTS:
        x0 = np.log([start[n] for n in names])
        res = least_squares(residuals, x0, bounds=(lo, hi), x_scale=1.0, diff_step=1e-4)
        if best is None or res.cost < best.cost:
            best = res
    assert best is not None
    return shipped.replace(**dict(zip(names, np.exp(best.x).tolist(), strict=True)))


def table(label: str, predicted: np.ndarray) -> None:
    print(f"\n{label}")
    print(f"{'run':22s} {'published':>9s} {'predicted':>9s} {'error':>7s}")
    for (name, *_rest, published), p in zip(ROWS, predicted, strict=True):
        print(f"{name:22s} {published:9.0f} {p:9.1f} {100 * (p / published - 1):+6.1f}%")
    err = np.abs(predicted / np.array([r[-1] for r in ROWS]) - 1)
    print(f"max |error| {100 * err.max():.1f}%, mean |error| {100 * err.mean():.1f}%")


def main() -> int:
    print(header("fit_a100_profile"))
    shipped = builtin_catalog().efficiency("a100-80gb")
    fitted = fit(shipped)
    print(f"\n{'parameter':16s} {'fitted':>8s} {'shipped':>8s} {'difference':>10s}")
    ok = True
    for name in BOUNDS:
        f, s = getattr(fitted, name), getattr(shipped, name)
        diff = abs(f / s - 1)
        ok &= diff <= 0.01
        at = " (at its bound)" if math.isclose(f, BOUNDS[name][0]) or math.isclose(f, BOUNDS[name][1]) else ""
        print(f"{name:16s} {f:8.4g} {s:8.4g} {100 * diff:9.2f}%{at}")
    table("Table 1 with the fitted profile:", predict_all(fitted))
    table("Table 1 with the shipped profile (efficiency.toml):", predict_all(shipped))
    print(f"\n{'PASS' if ok else 'FAIL'}: every fitted parameter within 1% of the shipped profile")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
