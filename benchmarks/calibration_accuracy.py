"""Held-out accuracy of ``mlcost calibrate`` + ``mlcost estimate train --device local`` on this machine.

What it does (one run, one machine):

1. **calibrates** through the public path, :func:`mlcost.calibrate.pipeline.run_calibration` — what
   ``mlcost calibrate`` runs (microbenchmarks, its default grid of short fp32 AdamW runs in 2 interleaved
   rounds, the fit, ``profile.toml`` + ``calibration.json`` saved) — into a temporary
   ``MLCOST_PROFILE_DIR`` (no ledger runs: the result must not depend on what this machine ran before);
2. **measures a held-out grid** the calibration never saw (``HELD_OUT``): other widths (192, 320, 448,
   768 — the calibration grid has 128–512 in steps of 128), other depths (1, 7, 9 — it has 2–6), other
   vocabularies (5,000–50,257 — it has 2,048 and 16,384), other batch × sequence shapes (it has
   1–8 × 64–512 in powers of two); GPT-2 and Llama style; each run in a fresh forked process by the
   runner's step loop and meters (:func:`mlcost.calibrate.runs.measure_configs`), ``--rounds``
   interleaved rounds: step time = the fastest step over all rounds (neighbours only slow steps down),
   peak memory = the process's peak resident set size (RSS, the kernel watermark; what
   ``mlcost measure train`` reports as ``peak_memory_bytes``), median over rounds;
3. **predicts** each held-out configuration with the CLI, ``python -m mlcost estimate train --model
   <config.json> --device local --precision fp32 --zero 0 --eager-elementwise --json`` (the runner's
   eager ``transformers`` model and SDPA attention), reading the calibration from ``MLCOST_PROFILE_DIR``
   as every ``mlcost`` command does;
4. prints per configuration measured vs predicted step time and peak memory, the step-time MAPE and the
   mean |error| of the peak memory, the host's CPU model and ISA flags, the load average before and after.

Acceptance (issue 9): held-out step time ≤ 10 % MAPE and peak memory ≤ 20 % mean |error|. Exit 0 only
when both hold (1 otherwise).

    python benchmarks/calibration_accuracy.py [--save runs.json] [--reuse runs.json]

``--save`` keeps the microbenchmarks and every measurement (calibration and held-out); ``--reuse`` fits
and scores saved measurements again without running torch (after a change to the estimator or the fit).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: family, layers, d_model, seq_len, micro_batch, vocab — disjoint from DEFAULT_FIT_CONFIGS in width,
#: depth, vocabulary and batch × sequence shape (checked in main()).
HELD_OUT: list[tuple[str, int, int, int, int, int]] = [
    ("gpt2", 7, 192, 96, 6, 5000),
    ("llama", 9, 320, 160, 2, 32000),
    ("gpt2", 1, 768, 96, 2, 50257),
    ("llama", 7, 448, 320, 1, 5000),
    ("gpt2", 9, 320, 384, 1, 12000),
    ("llama", 1, 768, 112, 2, 32000),
    ("gpt2", 7, 448, 80, 5, 8000),
    ("llama", 7, 192, 448, 1, 50257),
]

MAX_TIME_MAPE = 0.10
MAX_MEMORY_MEAN_ERR = 0.20
MiB = 2**20


def _disjoint(held: list, fit: list) -> None:
    """Refuse a held-out grid that shares a width, depth, vocabulary or batch × sequence shape."""
    for name, key in (
        ("width", lambda c: c.d_model),
        ("depth", lambda c: c.n_layers),
        ("vocabulary", lambda c: c.vocab_size),
        ("batch x sequence", lambda c: (c.micro_batch, c.seq_len)),
    ):
        shared = {key(c) for c in held} & {key(c) for c in fit}
        if shared:
            raise SystemExit(f"held-out grid shares {name} {sorted(shared)} with the calibration grid")


def _pooled(files: list[dict]) -> dict:
    """Several saved sessions as one: each configuration's rounds pooled (step_time_min_s = the fastest
    step of all, memory and the median step = medians over all rounds), the GEMM size curve the best rate
    per size; the rest from the first file."""
    out = dict(files[0])
    curve = out["microbench"]["matmul_flops_per_s"]["float32"]
    for f in files[1:]:
        for n, rate in f["microbench"]["matmul_flops_per_s"]["float32"].items():
            curve[n] = max(curve.get(n, 0.0), rate)
    for key in ("calibration_measurements", "held_out_measurements"):
        by_label: dict[str, dict] = {}
        for f in files:
            for m in f[key]:
                if m["label"] in by_label:
                    by_label[m["label"]]["per_round"] += m["per_round"]
                else:
                    by_label[m["label"]] = {**m, "per_round": list(m["per_round"])}
        for m in by_label.values():
            rs = m["per_round"]
            m["step_time_min_s"] = min(r["step_time_min_s"] for r in rs)
            m["step_time_s"] = statistics.median(r["step_time_s"] for r in rs)
            m["peak_delta_bytes"] = statistics.median(r["peak_delta_bytes"] for r in rs)
            m["probe_flops_per_s"] = statistics.median(r["probe_flops_per_s"] for r in rs)
        out[key] = list(by_label.values())
    return out


def _estimate_cli(cfg, profile_dir: str, workdir: Path) -> dict:
    """``mlcost estimate train --device local --json`` for one configuration (a subprocess: the CLI)."""
    from mlcost.measure.torch_models import hf_config_for

    path = workdir / f"{cfg.label.replace(' ', '_')}.json"
    path.write_text(json.dumps(hf_config_for(cfg.spec()).to_dict()))
    b, s = cfg.micro_batch, cfg.seq_len
    cmd = [
        sys.executable,
        "-m",
        "mlcost",
        "estimate",
        "train",
        "--model",
        str(path),
        "--device",
        "local",
        "--gpus",
        "1",
        "--precision",
        "fp32",
        "--optimizer",
        "adamw",
        "--zero",
        "0",
        "--micro-batch",
        str(b),
        "--global-batch",
        str(b),
        "--seq-len",
        str(s),
        "--eager-elementwise",
        "--flash-attention",
        "--tokens",
        str(b * s),
        "--json",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCOST_")}
    env["MLCOST_PROFILE_DIR"] = profile_dir
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"mlcost estimate failed for {cfg.label}: {out.stderr.strip()}")
    if "calibrat" not in out.stdout:
        raise SystemExit(f"mlcost estimate did not use the calibration for {cfg.label}")
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--save", help="write microbenchmarks and all measurements to this JSON file")
    ap.add_argument(
        "--reuse",
        action="append",
        help="fit and score the measurements saved in this JSON file (no torch runs); given several times, "
        "the files' rounds are pooled (fastest step over all of them, median memory)",
    )
    ap.add_argument("--steps", type=int, default=5, help="measured steps per held-out run (after 2 warm-up)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds over the held-out grid")
    args = ap.parse_args()

    from mlcost.calibrate.fit import fit_problems
    from mlcost.calibrate.microbench import MicrobenchResult
    from mlcost.calibrate.pipeline import run_calibration
    from mlcost.calibrate.runs import (
        DEFAULT_FIT_CONFIGS,
        Measurement,
        RunConfig,
        measure_configs,
        with_fastest_steps,
    )
    from mlcost.catalog import builtin_catalog
    from mlcost.catalog.host import detect_host

    held = [
        RunConfig(family=f, n_layers=L, d_model=d, seq_len=s, micro_batch=b, vocab_size=v)
        for f, L, d, s, b, v in HELD_OUT
    ]
    _disjoint(held, list(DEFAULT_FIT_CONFIGS))
    host = detect_host()
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    profile_dir = tempfile.mkdtemp(prefix="mlcost-cal-bench-")
    say = lambda m: print(f"  {m}", file=sys.stderr, flush=True)  # noqa: E731
    if args.reuse:
        saved = _pooled([json.loads(Path(f).read_text()) for f in args.reuse])
        mb = MicrobenchResult.from_dict(saved["microbench"])
        cal_ms = [Measurement.from_dict(m) for m in saved["calibration_measurements"]]
        by_label = {m["label"]: Measurement.from_dict(m) for m in saved["held_out_measurements"]}
        held_ms = [by_label[c.label] for c in held]
        cal, fit = run_calibration(
            use_ledger=False,
            catalog=builtin_catalog(),
            directory=profile_dir,
            microbench=mb,
            measurements=cal_ms,
            host=host,
        )
        calibrated_at = saved.get("measured", {})
    else:
        print("calibrating (mlcost calibrate's default runs) ...", file=sys.stderr, flush=True)
        cal, fit = run_calibration(
            use_ledger=False, catalog=builtin_catalog(), directory=profile_dir, progress=say, host=host
        )
        cal_ms = [Measurement.from_dict(m) for m in cal.fit["measurements"]]
        print(f"measuring {len(held)} held-out configurations x {args.rounds} rounds ...", file=sys.stderr)
        held_ms = measure_configs(held, steps=args.steps, warmup=2, rounds=args.rounds, progress=say)
        calibrated_at = {"load_before": load_before, "load_after": os.getloadavg()}
        if args.save:
            Path(args.save).write_text(
                json.dumps(
                    {
                        "microbench": cal.microbench,
                        "calibration_measurements": [m.to_dict() for m in cal_ms],
                        "held_out_measurements": [m.to_dict() for m in held_ms],
                        "provenance": cal.provenance,
                        "measured": calibrated_at,
                    },
                    indent=1,
                )
            )
    assert fit is not None
    held_ms = with_fastest_steps(held_ms)  # the statistic calibrate fits: neighbours only slow steps down
    p = cal.profile
    prov = cal.provenance
    print(
        f"# calibration accuracy — {prov.get('host')}, torch {prov.get('torch')}, "
        f"{prov.get('torch_threads')} threads, {prov.get('date')}"
    )
    print(f"# CPU: {host.model} ({host.vendor}, {host.logical_cpus} logical CPUs); ISA {host.isa}")
    print(f"# CPU flags: {' '.join(sorted(host.identity().get('flags', [])))}")
    touch = p.extra.get("first_touch_bytes_per_s")
    print(
        f"# local peak fp32 {cal.device.peak_flops_per_s['fp32'] / 1e9:.1f} GFLOP/s, copy bandwidth "
        f"{cal.device.mem_bw_bytes_per_s / 1e9:.1f} GB/s, first touch of fresh pages "
        + (f"{touch / 1e9:.2f} GB/s" if touch else "not measured")
    )
    print(
        f"# fit on {len(cal_ms)} calibration runs: matmul_eff_max {p.matmul_eff_max:.3f}, matmul_half_dim "
        f"{p.matmul_half_dim:.0f}, attention_eff {p.attention_eff:.3f}, mem_bw_eff {p.mem_bw_eff:.3f}, "
        f"layer_overhead {p.layer_overhead_s * 1e3:.2f} ms, step_overhead {p.step_overhead_s * 1e3:.2f} ms, "
        f"framework_overhead {p.framework_overhead_bytes / MiB:.0f} MiB, activation_overhead_frac "
        f"{p.activation_overhead_frac:.2f}; fit-set step-time MAPE {100 * fit.time_mape:.1f}%"
        + (f", memory {100 * fit.memory_mean_abs_rel:.1f}%" if fit.memory_mean_abs_rel is not None else "")
    )
    problems = fit_problems(fit)
    if problems:
        print(f"# fit warnings (mlcost calibrate would ask for --force): {'; '.join(problems)}")
    runtime = statistics.median(m.baseline_rss_bytes or 0.0 for m in cal_ms)
    print(
        f"# peak memory = peak RSS of the run's process; of it, {runtime / MiB:.0f} MiB (median) was resident "
        "before the model was built (torch runtime); 'job' columns leave that out on both sides"
    )
    workdir = Path(tempfile.mkdtemp(prefix="mlcost-cal-bench-cfg-"))
    print(
        f"{'config':30} {'meas ms':>8} {'pred ms':>8} {'err':>7} {'meas MiB':>9} {'pred MiB':>9} {'err':>7}"
        f" {'job err':>8}  largest predicted time terms (ms)"
    )
    t_err: list[float] = []
    m_err: list[float] = []
    job_err: list[float] = []
    for c, m in zip(held, held_ms, strict=True):
        est = _estimate_cli(c, profile_dir, workdir)
        pred_t = float(est["step_time_s"])
        pred_m = float(est["memory_per_device_bytes"]["total"])
        meas_m = float(m.peak_delta_bytes or 0.0) + float(m.baseline_rss_bytes or 0.0)
        et = pred_t / m.step_time_s - 1.0
        em = pred_m / meas_m - 1.0
        ej = (pred_m - runtime) / float(m.peak_delta_bytes or 1.0) - 1.0
        t_err.append(abs(et))
        m_err.append(abs(em))
        job_err.append(abs(ej))
        terms = sorted(((v, k) for k, v in est["time_breakdown_s"].items() if v and v > 0), reverse=True)[:3]
        desc = ", ".join(f"{k} {v * 1e3:.0f}" for v, k in terms)
        print(
            f"{c.label:30} {m.step_time_s * 1e3:8.1f} {pred_t * 1e3:8.1f} {100 * et:+6.1f}% "
            f"{meas_m / MiB:9.1f} {pred_m / MiB:9.1f} {100 * em:+6.1f}% {100 * ej:+7.1f}%  {desc}"
        )
    mape = sum(t_err) / len(t_err)
    mem = sum(m_err) / len(m_err)
    print(
        f"held-out step-time MAPE (fastest step over {args.rounds if not args.reuse else 'the saved'} rounds): "
        f"{100 * mape:.1f}% over {len(t_err)} configurations (target <= {100 * MAX_TIME_MAPE:.0f}%)"
    )
    print(
        f"held-out peak-memory error: mean |err| {100 * mem:.1f}%, max {100 * max(m_err):.1f}% "
        f"(target mean <= {100 * MAX_MEMORY_MEAN_ERR:.0f}%); job only (peak RSS - RSS before the build): "
        f"mean {100 * sum(job_err) / len(job_err):.1f}%, max {100 * max(job_err):.1f}%"
    )
    load_after = os.getloadavg()
    if args.reuse:
        lb, la = calibrated_at.get("load_before"), calibrated_at.get("load_after")
        if lb and la:
            print(f"# load average while measuring: before {lb[0]:.2f}, after {la[0]:.2f}")
    print(
        f"# load average before {load_before[0]:.2f}, after {load_after[0]:.2f} on {os.cpu_count()} CPUs; "
        f"wall {time.perf_counter() - t0:.0f} s"
        + (f"; measurements reused from {', '.join(args.reuse)}" if args.reuse else "")
    )
    ok = mape <= MAX_TIME_MAPE and mem <= MAX_MEMORY_MEAN_ERR
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
