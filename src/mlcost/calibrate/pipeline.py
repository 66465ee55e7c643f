"""``mlcost calibrate`` as library functions: :func:`run_calibration` (measure, fit, save) and
:func:`ledger_report` (predicted vs measured for completed ledger runs). The CLI only renders."""

from __future__ import annotations

import dataclasses
import datetime
import platform
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlcost.calibrate.fit import (
    FitResult,
    compare,
    fit_profile,
    initial_profile,
    local_device,
    match_host,
)
from mlcost.calibrate.microbench import MicrobenchResult, run_microbenchmarks
from mlcost.calibrate.profile import Calibration, rescale_profile, save_calibration
from mlcost.calibrate.runs import (
    DEFAULT_FIT_CONFIGS,
    QUICK_FIT_CONFIGS,
    Measurement,
    RunConfig,
    measure_configs,
    merge_memory_probes,
    merge_probe_rates,
    with_fastest_steps,
)
from mlcost.catalog.host import HostCpu, detect_host, isa_name
from mlcost.catalog.protocol import CatalogLike
from mlcost.errors import MlcostError
from mlcost.spec.job import TrainJob
from mlcost.spec.model import ModelSpec

Progress = Callable[[str], None]


def provenance(host: HostCpu | None = None) -> dict[str, Any]:
    """Host, CPU (its identity under ``host_cpu``: model, ISA flags, logical CPUs), versions and date."""
    cpu = host if host is not None else detect_host()
    out: dict[str, Any] = {
        "host": socket.gethostname(),
        "cpu_model": cpu.model,
        "host_cpu": cpu.identity(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import torch

        out["torch"] = torch.__version__
        out["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover - calibrate needs torch anyway
        out["torch"] = None
    return out


def ledger_measurements(
    ledger_url: str | None, *, this_host_only: bool = True, limit: int = 500
) -> list[Measurement]:
    """Completed single-process fp32 training runs of a known model shape on a CPU, from the ledger.

    Memory is not used from ledger runs: the ledger stores absolute peak RSS, without the RSS before the
    model was built that the estimator's memory is compared with."""
    from mlcost.measure.ledger import Ledger

    host = socket.gethostname()
    out: list[Measurement] = []
    with Ledger(ledger_url) as ledger:
        for rec in ledger.list_runs(limit=limit, status="completed", kind="train"):
            m = measurement_from_record(rec)
            if m is None or (this_host_only and rec.host != host):
                continue
            out.append(m)
    return out


def measurement_from_record(rec: Any) -> Measurement | None:
    """A ledger RunRecord as a Measurement, or None if it is not comparable (GPU, several ranks, a
    strategy lever other than the baseline, no model shape or step time)."""
    cfg, met = rec.config or {}, rec.metrics or {}
    spec_d, shape = cfg.get("model_spec"), cfg.get("shape") or {}
    # The fastest step, as measure_configs and the benchmark fit (neighbours only slow steps down);
    # runs recorded before step_time_min_s existed fall back to the median.
    step = met.get("step_time_min_s") or met.get("step_time_s")
    if (
        not spec_d
        or not isinstance(step, (int, float))
        or step <= 0
        or rec.world_size != 1
        or str(rec.device).startswith("cuda")
        or (rec.strategy or "baseline") != "baseline"
    ):
        return None
    try:
        spec = ModelSpec.from_dict(spec_d)
        micro = int(shape.get("micro_batch", 1))
        global_batch = int(cfg.get("global_batch") or micro)
        seq = int(shape.get("seq_len", 128))
        job = TrainJob(
            tokens=float(global_batch * seq),
            seq_len=seq,
            global_batch=global_batch,
            micro_batch=micro,
            precision=cfg.get("precision") or shape.get("precision") or "fp32",
            recompute=shape.get("recompute", "none"),
            # The runner builds eager transformers modules: SDPA takes torch's fused CPU flash kernel
            # (the s×s scores are never stored) and element-wise ops are not fused (RunConfig.job).
            flash_attention=cfg.get("attn_implementation", "sdpa") == "sdpa",
            fused_elementwise=False,
        )
    except Exception:
        return None
    return Measurement(
        label=f"{rec.run_id[:8]} {rec.model}",
        spec=spec,
        job=job,
        step_time_s=float(step),
        peak_delta_bytes=None,
        source=f"ledger:{rec.run_id}",
    )


def run_calibration(
    *,
    quick: bool = False,
    runs: int | None = None,
    use_runs: bool = True,
    ledger_url: str | None = None,
    use_ledger: bool = True,
    configs: list[RunConfig] | None = None,
    progress: Progress | None = None,
    save: bool = True,
    microbench: MicrobenchResult | None = None,
    catalog: CatalogLike | None = None,
    directory: Path | str | None = None,
    host: HostCpu | None = None,
    serve: bool = False,
    measurements: list[Measurement] | None = None,
) -> tuple[Calibration, FitResult | None]:
    """Microbenchmarks → local device and first profile → fit on training runs (measured here and
    completed ledger runs of this host) → save into ``directory``. Returns the calibration and the fit
    (None without runs).

    ``microbench`` and ``measurements`` (runs measured earlier on this host, e.g. from a saved
    ``calibration.json``) are used instead of measuring again: the fit alone runs (re-scoring saved
    measurements after a change of the estimator).

    ``catalog`` must not contain an earlier calibration (the CLI passes
    ``mlcost.context.default_catalog(calibration=False)``; None = the built-in catalog), so calibrating
    twice starts from the same catalog row and prior: the result does not depend on the last run.

    ``serve=True`` also fits the ``hf`` serving engine on this host
    (:func:`mlcost.calibrate.serve.run_serve_calibration`: a calibration load on transformers' continuous
    batching, iteration costs through the fitted ``local`` device and profile)."""
    from mlcost.catalog import builtin_catalog

    if save and directory is None:
        raise MlcostError(
            "run_calibration(save=True) needs the directory to save into",
            hint="pass directory=mlcost.paths.profile_dir() (what `mlcost calibrate` does)",
        )
    say = progress or (lambda _m: None)
    cat = catalog if catalog is not None else builtin_catalog()
    cpu = host if host is not None else detect_host()
    mb = microbench or run_microbenchmarks(quick=quick, progress=say)
    match = match_host(cat, cpu)
    base_row = match.device if match is not None and not match.generic else None
    prior = cat.efficiency(base_row.id) if base_row is not None else cat.efficiency("default-cpu")
    result: FitResult | None = None
    measured: list[Measurement] = []
    if measurements is not None:
        measured = with_fastest_steps(list(measurements))
        mb.matmul_flops_per_s["float32"] = merge_probe_rates(mb.matmul_flops_per_s["float32"], measured)
        merge_memory_probes(mb, measured)
    elif use_runs:
        chosen = configs if configs is not None else list(DEFAULT_FIT_CONFIGS)
        if runs is not None:
            chosen = chosen[: max(0, runs)]
        elif quick:
            chosen = chosen[:QUICK_FIT_CONFIGS]
        if chosen:
            # Two interleaved rounds (one with --quick); the fit takes each configuration's fastest
            # step, the statistic benchmarks/calibration_accuracy.py validates.
            measured = measure_configs(
                chosen,
                steps=4 if quick else 6,
                rounds=1 if quick else 2,
                progress=lambda lab: say(f"run {lab}"),
            )
            measured = with_fastest_steps(measured)
            # Each run's reference GEMM probe is a measured 512² rate too (the best one joins the curve).
            mb.matmul_flops_per_s["float32"] = merge_probe_rates(mb.matmul_flops_per_s["float32"], measured)
            merge_memory_probes(mb, measured)
        if use_ledger:
            try:
                measured += ledger_measurements(ledger_url)
            except Exception as exc:  # an unreadable ledger must not lose the microbenchmarks
                say(f"ledger skipped: {exc}")
    # The local device and first profile, from the microbenchmarks (with the runs' probes, if any).
    base = match.device if match is not None else None
    if match is not None and match.generic:  # the generic row's figures other than the measured ones
        base = dataclasses.replace(
            match.device,
            name=f"{cpu.model or 'this CPU'} ({isa_name(cpu.isa)}, {cpu.logical_cpus} logical CPUs)",
        )
    device = local_device(mb, base)
    profile = initial_profile(mb, prior)
    if measured:
        say("fitting")
        result = fit_profile(measured, device, profile)
        profile = result.profile
    serve_cal = None
    if serve:
        from mlcost.calibrate.serve import run_serve_calibration

        serve_cal = run_serve_calibration(device, profile, cat.engine_profile("hf", device), progress=say)
    cal = Calibration(
        device=device,
        profile=profile,
        base_device=base_row.id if base_row is not None else None,
        base_profile=rescale_profile(profile, device, base_row) if base_row is not None else None,
        provenance={**provenance(cpu), "catalog_match": match.label if match is not None else None},
        microbench=mb.to_dict(),
        fit={
            **(result.to_dict() if result else {"rows": [], "time_mape": None}),
            "measurements": [m.to_dict() for m in measured],
        },
        engine=serve_cal.engine if serve_cal is not None else None,
        serve=serve_cal.to_dict() if serve_cal is not None else {},
    )
    if save:
        assert directory is not None
        save_calibration(cal, directory)
    return cal, result


def ledger_report(
    ledger_url: str | None,
    *,
    this_host_only: bool = False,
    calibration: Calibration | None = None,
    catalog: CatalogLike | None = None,
    host: HostCpu | None = None,
) -> dict[str, Any]:
    """Predicted (with ``calibration``, or else this host's catalog row: specific or generic by ISA) vs
    measured step time of the completed, comparable ledger runs."""
    if calibration is not None:
        device, profile, using = calibration.device, calibration.profile, calibration.source
    else:
        from mlcost.catalog import builtin_catalog

        cat = catalog if catalog is not None else builtin_catalog()
        match = match_host(cat, host)
        if match is None:
            raise MlcostError("no catalog row describes this CPU", hint="run mlcost calibrate")
        device = match.device
        profile = cat.efficiency(device.id)
        using = f"catalog profile {profile.device} for {match.label} (not calibrated: run mlcost calibrate)"
    ms = ledger_measurements(ledger_url, this_host_only=this_host_only)
    rows, mape, _ = compare(ms, device, profile) if ms else ([], None, None)
    for out_row, m in zip(rows, ms, strict=True):
        out_row["run_id"] = m.source.split(":", 1)[1]
        out_row["model"] = m.spec.name
        out_row["config"] = f"b{m.job.micro_batch}×s{m.job.seq_len} {m.job.precision}"
    return {"profile": using, "device": device.id, "runs": rows, "step_time_mape": mape}
