"""Fit ONE efficiency profile per (device, framework family) to the FIT runs of that family in
tests/estimate/data/published_runs.csv and print the TOML rows plus the error on every run (fit and held
out). The golden test tests/estimate/test_golden_published_runs.py checks the held-out ("test") runs.

Usage: python benchmarks/fit_framework_profiles.py

Fitted per (device, family), bounded to physically plausible values, starting from the device's base
profile in efficiency.toml: matmul_eff_max, matmul_half_dim, attention_eff, and for the nemo family (NeMo
with Transformer Engine's TP-communication overlap) also extra.tp_comm_overlap, the share of TP
communication hidden behind GEMMs (communication efficiencies and DP overlap stay at the base profile's
values: the fit runs cannot identify them).
Objective: mean squared log error of tokens/s per device over the family's fit runs on that device
(scipy.optimize.minimize, Powell, bounded). Every other field comes from the base profile.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.estimate.published_runs import Run, cluster, load_runs

from mlcost.catalog import get_catalog
from mlcost.estimate import estimate_train

PARAMS = ("matmul_eff_max", "matmul_half_dim", "attention_eff")
BOUNDS = ((0.4, 0.9), (10.0, 400.0), (0.2, 0.7))
#: Parameters kept in the profile's ``extra`` table, fitted for some families only.
EXTRA_PARAMS: dict[str, dict[str, tuple[float, float]]] = {"nemo": {"tp_comm_overlap": (0.0, 1.0)}}


def predicted(profile, run: Run) -> float:  # type: ignore[no-untyped-def]
    prof = profile.replace(device=profile.device.split("/")[0])
    est = estimate_train(run.model, run.job, cluster(run), profile=prof)
    return est.tokens_per_s / run.gpus


#: Devices with the same chip share one fit (A100 40GB and 80GB: same SMs and clocks, hardware.md); each
#: still gets its own row.
SAME_CHIP: dict[str, tuple[str, ...]] = {
    "a100-40gb": ("a100-40gb", "a100-80gb"),
    "a100-80gb": ("a100-40gb", "a100-80gb"),
}


def fit(device: str, family: str, runs: list[Run]):  # type: ignore[no-untyped-def]
    base = get_catalog().efficiency(device)
    if family == "fsdp":
        # FSDP/NCCL rings of a node-spanning group use every adapter of the node: 8 per DGX A100/H100 node.
        base = base.replace(extra={**base.extra, "ring_rails": 8.0})
    chip = SAME_CHIP.get(device, (device,))
    fit_runs = [r for r in runs if r.device in chip and r.family == family and r.split == "fit"]
    extra = EXTRA_PARAMS.get(family, {})

    def make(x: np.ndarray):  # type: ignore[no-untyped-def]
        vals = [float(v) for v in x]
        main = dict(zip(PARAMS, vals[: len(PARAMS)], strict=True))
        ext = {**base.extra, **dict(zip(extra, vals[len(PARAMS) :], strict=True))}
        return base.replace(**main, extra=ext)

    def loss(x: np.ndarray) -> float:
        prof = make(x)
        return float(
            np.mean([math.log(predicted(prof, r) / r.published_tokens_per_s_per_gpu) ** 2 for r in fit_runs])
        )

    x0 = np.array([getattr(base, p) for p in PARAMS] + [float(base.extra.get(k, 0.5)) for k in extra])
    bounds = BOUNDS + tuple(extra.values())
    res = minimize(loss, x0, method="Powell", bounds=bounds, options={"xtol": 1e-3, "ftol": 1e-6})
    fitted = make(np.round(res.x, 3))
    values = {p: getattr(fitted, p) for p in PARAMS}
    prof = fitted.replace(
        device=f"{device}/{family}",
        **values,
        source=f"fitted by benchmarks/fit_framework_profiles.py to {len(fit_runs)} {family} runs: "
        + ", ".join(r.id for r in fit_runs),
    )
    return prof, fit_runs


def main() -> None:
    runs = load_runs()
    pairs = sorted({(r.device, r.family) for r in runs if r.split == "fit"})
    for device, family in pairs:
        prof, fit_runs = fit(device, family, runs)
        print(f"\n[[profile]]  # {device} / {family}: {len(fit_runs)} fit runs")
        print(f'device = "{prof.device}"')
        for p in PARAMS:
            print(f"{p} = {getattr(prof, p)}")
        if prof.extra:
            print("extra = { " + ", ".join(f"{k} = {v}" for k, v in prof.extra.items()) + " }")
        print(f'source = "{prof.source}"')
        print(f"{'split':5s} {'run':16s} {'published':>10s} {'predicted':>10s} {'error':>7s}")
        for r in runs:
            if r.device == device and r.family == family:
                got = predicted(prof, r)
                pub = r.published_tokens_per_s_per_gpu
                print(f"{r.split:5s} {r.id:16s} {pub:10.0f} {got:10.0f} {got / pub - 1:+7.1%}")


if __name__ == "__main__":
    main()
