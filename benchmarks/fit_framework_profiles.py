"""Fit ONE efficiency profile per (device, framework family) to the FIT runs of that family in
tests/estimate/data/published_runs.csv and print the TOML rows plus the error on every run (fit and held
out). The golden test tests/estimate/test_golden_published_runs.py checks the held-out ("test") runs.

Usage: python benchmarks/fit_framework_profiles.py [--write]
  --write  also replace the "<device>/<family>" rows of src/mlcost/catalog/data/efficiency.toml with the
           fitted ones (in place, comments kept; a new pair goes before the default-gpu row). Rerun it
           after a change to the estimator and read the diff.

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
import re
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
#: Memory terms of a framework family (profile ``extra``; mlcost.estimate.memory), fitted ONCE per family to
#: the peak memory of its FIT rows (published_runs.csv rows with peak_memory_gib; all devices of the
#: family share them), bounded: (low, high).
MEMORY_PARAMS: dict[str, dict[str, tuple[float, float]]] = {
    "torchtitan": {"selective_activation_scale": (0.2, 1.0), "recompute_transient": (1.0, 3.0)},
}
#: Memory terms read from a family's source, not fitted: torchtitan's loss (train.py loss_fn at 9dec370)
#: keeps the bf16 logits, their fp32 copy (.float()) and cross_entropy's fp32 log-softmax: 2 + 4 + 4 bytes.
#: MaxText (AI-Hypercomputer/maxtext@76bd53b0f) computes fp32 logits through the tied embedding
#: (layers/models.py: Embed attend_dtype=jnp.float32); its loss's custom VJP (max_utils.py
#: cross_entropy_with_logits) reads one fp32 [b, s, V] residual in backward (exp_shifted: the logits are
#: read for their dtype only, log-softmax only by the targets' cotangent, which nothing uses): 4 bytes;
#: and XLA frees those buffers before the scanned layers' backward (one HLO program, buffer liveness), so
#: a step peaks at the larger phase (logits_in_layer_backward 0). docs/estimate.md, "Recompute policies".
#: NeMo/Megatron-Core run fp8 through Transformer Engine, whose Linear and GroupedLinear keep the quantized
#: fp8 input for the weight gradient (fp8_quantized_saved_inputs 1; mlcost.estimate.memory
#: FP8_SAVED_INPUT_BYTES); torchtitan's torchao Float8Linear keeps the bf16 input (the default, 0).
MEMORY_FIXED: dict[str, dict[str, float]] = {
    "nemo": {"fp8_quantized_saved_inputs": 1.0},
    "torchtitan": {"logit_bytes": 10.0},
    "maxtext": {"logit_bytes": 4.0, "logits_in_layer_backward": 0.0},
}


def predicted_memory(profile, run: Run) -> float:  # type: ignore[no-untyped-def]
    prof = profile.replace(device=profile.device.split("/")[0])
    return float(estimate_train(run.model, run.job, cluster(run), profile=prof).memory.total)


def fit_memory(family: str, mem_runs: list[Run]) -> tuple[dict[str, float], float | None]:
    """The family's memory terms and the largest |error| on its held-out peaks (None without any)."""
    params = MEMORY_PARAMS.get(family, {})
    fixed = MEMORY_FIXED.get(family, {})
    fit_runs = [r for r in mem_runs if r.family == family and r.split == "fit"]

    def profile_for(run: Run, values: dict[str, float]):  # type: ignore[no-untyped-def]
        base = get_catalog().efficiency(run.device)
        return base.replace(extra={**base.extra, **fixed, **values})

    def loss(x: np.ndarray) -> float:
        values = dict(zip(params, (float(v) for v in x), strict=True))
        return float(
            np.mean(
                [
                    math.log(predicted_memory(profile_for(r, values), r) / r.published_peak_memory_bytes) ** 2  # type: ignore[operator]
                    for r in fit_runs
                ]
            )
        )

    values: dict[str, float] = {}
    if params and fit_runs:
        x0 = np.array([(lo + hi) / 2 for lo, hi in params.values()])
        res = minimize(loss, x0, method="Powell", bounds=tuple(params.values()), options={"xtol": 1e-3})
        values = {k: round(float(v), 3) for k, v in zip(params, res.x, strict=True)}
    errors = []
    for r in mem_runs:
        if r.family != family:
            continue
        got = predicted_memory(profile_for(r, values), r)
        pub = float(r.published_peak_memory_bytes)  # type: ignore[arg-type]
        errors.append((r.split, abs(got / pub - 1)))
        print(
            f"memory {r.split:4s} {r.id:24s} published {pub / 2**30:6.1f} GiB predicted {got / 2**30:6.1f} GiB {got / pub - 1:+6.1%}"
        )
    held = [e for split, e in errors if split == "test"]
    return {**fixed, **values}, (round(max(held) + 0.005, 2) if held else None)


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
    "h100-sxm": ("h100-sxm", "h100-96gb"),
    "h100-96gb": ("h100-sxm", "h100-96gb"),
}


def fit(device: str, family: str, runs: list[Run], memory_terms: dict[str, float] | None = None):  # type: ignore[no-untyped-def]
    base = get_catalog().efficiency(device)
    if memory_terms:
        base = base.replace(extra={**base.extra, **memory_terms})
    if family in ("fsdp", "torchtitan"):
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


def toml_row(prof) -> str:  # type: ignore[no-untyped-def]
    """The profile as an efficiency.toml [[profile]] row (every field)."""
    lines = ["[[profile]]", f'device = "{prof.device}"']
    for name in (*PARAMS, "mem_bw_eff", "intra_comm_eff", "inter_comm_eff", "dp_overlap", "power_frac"):
        lines.append(f"{name} = {getattr(prof, name)}")
    lines.append(f"framework_overhead_bytes = {prof.framework_overhead_bytes:g}")
    for name in ("step_overhead_s", "layer_overhead_s", "activation_overhead_frac"):
        if getattr(prof, name):
            lines.append(f"{name} = {getattr(prof, name)}")
    lines.append("error_band_rel = 0.15")
    if prof.extra:
        lines.append("extra = { " + ", ".join(f"{k} = {v}" for k, v in sorted(prof.extra.items())) + " }")
    lines.append(f'source = "{prof.source} (tests/estimate/data/published_runs.csv)"')
    lines.append('date = "2026-12-01"')
    return "\n".join(lines)


EFFICIENCY_TOML = (
    Path(__file__).resolve().parents[1] / "src" / "mlcost" / "catalog" / "data" / "efficiency.toml"
)


def write_rows(rows: dict[str, str], path: Path = EFFICIENCY_TOML) -> None:
    """Replace each fitted row of ``path`` in place (keyed by device); insert new ones before default-gpu."""
    text = path.read_text()
    for device, row in rows.items():
        block = re.compile(
            r'\[\[profile\]\]\ndevice = "' + re.escape(device) + r'"\n.*?\ndate = "[^"]*"\n', re.S
        )
        if block.search(text):
            text = block.sub(lambda _m, row=row: row + "\n", text, count=1)
        else:
            anchor = '[[profile]]\ndevice = "default-gpu"'
            text = text.replace(anchor, row + "\n\n" + anchor, 1)
    path.write_text(text)


def main() -> None:
    write = "--write" in sys.argv[1:]
    rows: dict[str, str] = {}
    runs = load_runs()
    mem_runs = [r for r in runs if r.published_peak_memory_bytes is not None]
    memory: dict[str, tuple[dict[str, float], float | None]] = {}
    for family in sorted({r.family for r in runs}):
        print(f"\n# memory terms of the {family} family")
        memory[family] = fit_memory(family, mem_runs)
        terms, band = memory[family]
        print(f"# {family}: {terms}, largest held-out peak-memory error {band}")
    # Every device a family has published runs on gets a row (fitted with the runs of its chip).
    pairs = sorted({(r.device, r.family) for r in runs})
    errors: list[tuple[Run, float]] = []
    for device, family in pairs:
        terms, band = memory[family]
        extra = {**terms, **({"memory_error_rel": band} if band is not None else {})}
        prof, fit_runs = fit(device, family, runs, extra)
        print(f"\n# {device} / {family}: {len(fit_runs)} fit runs")
        rows[prof.device] = toml_row(prof)
        print(rows[prof.device])
        print(f"{'split':5s} {'run':16s} {'published':>10s} {'predicted':>10s} {'error':>7s}")
        for r in runs:
            if r.device == device and r.family == family:
                got = predicted(prof, r)
                pub = r.published_tokens_per_s_per_gpu
                print(f"{r.split:5s} {r.id:16s} {pub:10.0f} {got:10.0f} {got / pub - 1:+7.1%}")
                errors.append((r, got / pub - 1))
    summary(errors)
    if write:
        write_rows(rows)
        print(f"\nwrote {len(rows)} rows to {EFFICIENCY_TOML}")


def summary(errors: list[tuple[Run, float]]) -> None:
    """Held-out (and fit) tokens/s errors per family and per device, as the golden test computes them."""
    print("\n# tokens/s per device, held-out runs (split = test) unless marked fit")
    groups: dict[str, list[float]] = {}
    for r, e in errors:
        groups.setdefault(f"{r.split} all", []).append(e)
        if r.split == "test":
            groups.setdefault(f"family {r.family}", []).append(e)
            groups.setdefault(f"device {r.device}", []).append(e)
    for name in sorted(groups):
        es = groups[name]
        mean_abs = sum(abs(e) for e in es) / len(es)
        signed = sum(es) / len(es)
        print(
            f"{name:28s} n={len(es):3d} mean|err| {mean_abs:6.1%} signed {signed:+6.1%} max|err| {max(map(abs, es)):6.1%}"
        )


if __name__ == "__main__":
    main()
