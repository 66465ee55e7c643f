"""``compress()``: build the variants of a model, score their quality, time them interleaved, price them and
choose. The result is a plain dict (the ``mlcost compress --json`` contract, docs/json.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcost.compress import bench, choose, price, recipes
from mlcost.compress.errors import CompressError
from mlcost.compress.hardware import detect_isa
from mlcost.compress.models import ModelBundle
from mlcost.compress.tasks import Task


@dataclass
class Options:
    """How to compress and measure (defaults are what ``mlcost compress`` uses).

    Attributes:
        methods: method specs (see :mod:`mlcost.compress.recipes`); None = the defaults for the model family.
        batch_sizes: batch sizes to time; cost uses the largest (throughput) one.
        rounds: interleaved timing rounds.
        max_quality_drop: the target (see :mod:`mlcost.compress.choose`).
        price_usd_per_h: this machine's price; None = catalog or machine-hours only.
        devices: target devices priced through the estimator (catalog ids).
        force: run bf16/fp16 even without units for them.
        recover_steps: recovery fine-tune steps after structured pruning (0 = none).
        distill_steps: training steps of a distilled student.
        n_boot: bootstrap resamples for the intervals.
        ledger: write one record per variant to the ledger.
        ledger_url: the ledger location (None = MLCOST_LEDGER or the default).
        save_dir: save every built variant there (one sub-directory each).
        catalog: the catalog for prices and target devices (the CLI passes its default; None = built-in).
    """

    methods: list[str] | None = None
    batch_sizes: list[int] = field(default_factory=lambda: [1, 32])
    rounds: int = 12
    max_quality_drop: str = "1%"
    price_usd_per_h: float | None = None
    devices: list[str] = field(default_factory=list)
    force: bool = False
    recover_steps: int = 0
    distill_steps: int = 200
    train_batch: int = 32
    lr: float = 5e-5
    n_boot: int = 1000
    ledger: bool = True
    ledger_url: str | None = None
    save_dir: str | None = None
    seed: int = 0
    catalog: Any = None


def _isa_note(variant_precision: str, isa: Any) -> str | None:
    if variant_precision == "int8":
        return f"{isa.int8_note()} ({isa.model})"
    if variant_precision in ("bf16", "fp16"):
        missing = isa.unit_for(variant_precision)
        return missing or f"{variant_precision} units present ({isa.model})"
    return None


def compress(bundle: ModelBundle, task: Task, options: Options | None = None) -> dict[str, Any]:
    """Build, measure, price and choose; returns the report dict."""
    import torch

    from mlcost.measure.record import utc_now_iso

    opts = options or Options()
    if not opts.batch_sizes or any(b < 1 for b in opts.batch_sizes):
        raise CompressError("--batch-sizes must be positive integers, e.g. 1,32")
    if opts.rounds < 3:
        raise CompressError("--rounds must be at least 3 (the speed-up interval resamples rounds)")
    started = utc_now_iso()
    t0 = time.perf_counter()
    isa = detect_isa()
    mprice = price.machine_price(opts.price_usd_per_h, catalog=opts.catalog)
    methods = opts.methods or recipes.default_methods(bundle)
    # Parse the target before any expensive work, so a bad target fails fast.
    scales = {m.name: m.scale for m in task.metrics}
    targets = choose.parse_targets(opts.max_quality_drop, primary=task.primary, metrics=scales)
    ctx = recipes.BuildContext(
        isa=isa,
        task=task,
        force=opts.force,
        recover_steps=opts.recover_steps,
        distill_steps=opts.distill_steps,
        train_batch=opts.train_batch,
        lr=opts.lr,
        price_usd_per_h=mprice.usd_per_h,
    )
    variants = [recipes.original(bundle)] + [recipes.build(bundle, m, ctx) for m in methods]
    ok = [v for v in variants if v.status == "ok"]

    # Quality: the original's outputs are the reference of every paired delta.
    quality: dict[str, dict[str, Any]] = {}
    ref = task.collect(bundle, ok[0].predict)  # type: ignore[arg-type]
    for v in list(ok):
        try:
            out = ref if v is ok[0] else task.collect(bundle, v.predict)  # type: ignore[arg-type]
            quality[v.name] = {k: r.to_dict() for k, r in task.evaluate(out, ref, n_boot=opts.n_boot).items()}
        except CompressError:
            raise
        except Exception as exc:  # a variant that builds but cannot run (exporter edge cases)
            v.status, v.reason = "failed", f"{type(exc).__name__}: {exc}"
            ok.remove(v)

    inputs = {b: task.bench_batch(b) for b in sorted(set(opts.batch_sizes))}
    speeds = bench.measure_speed(ok, inputs, rounds=opts.rounds, seed=opts.seed)
    largest = max(inputs)
    base_size = bench.serialized_size_bytes(ok[0])

    rows: list[dict[str, Any]] = []
    seq_len = int(inputs[largest]["input_ids"].shape[1]) if "input_ids" in inputs[largest] else 0
    for v in variants:
        row: dict[str, Any] = {
            "name": v.name,
            "method": v.method,
            "status": v.status,
            "reason": v.reason,
            "recipe": v.recipe,
            "precision": v.precision,
            "notes": v.notes,
            "isa_note": _isa_note(v.precision, isa),
            "build_time_s": v.build_time_s,
            "training": v.training.to_dict() if v.training else None,
        }
        if v.status == "ok":
            sp = speeds[v.name]
            size = bench.serialized_size_bytes(v)
            mem, mem_how = bench.peak_memory_bytes(v, inputs[largest])
            row.update(
                {
                    "batch_size": largest,
                    "speeds": {str(b): s.to_dict() for b, s in sp.items()},
                    "speedup": sp[largest].speedup.to_dict(),
                    "throughput_per_s": sp[largest].throughput_per_s,
                    "size_bytes": size,
                    "size_ratio": size / base_size,
                    "peak_memory_bytes": mem,
                    "peak_memory_method": mem_how,
                    "quality": quality[v.name],
                    "cost": price.local_cost(sp[largest].throughput_per_s, mprice),
                    "targets": [
                        price.target_cost(
                            bundle.hf_config,
                            v.shape,
                            v.precision,
                            device=d,
                            seq_len=max(seq_len, 1),
                            batch=largest,
                            name=f"{bundle.name}:{v.name}",
                            catalog=opts.catalog,
                        )
                        for d in opts.devices
                    ],
                }
            )
        rows.append(row)

    primary = task.primary
    verdicts = {r["name"]: choose.verdict(r, targets, primary) for r in rows}
    for r in rows:
        r["verdict"] = verdicts[r["name"]].to_dict()
    decision = choose.choose(rows, verdicts, primary)
    ok_rows = [r for r in rows if r["status"] == "ok"]
    sign = 1.0 if ok_rows[0]["quality"][primary]["higher_is_better"] else -1.0
    front = choose.pareto_front(
        [
            (r["name"], r["cost"]["machine_h_per_million_requests"], sign * r["quality"][primary]["value"])
            for r in ok_rows
        ]
    )
    # Distilled students: break-even traffic after which the training time is paid back.
    base_h = ok_rows[0]["cost"]["machine_h_per_million_requests"]
    for r in ok_rows:
        if r["training"]:
            r["break_even_requests"] = price.break_even_requests(
                r["training"]["time_s"], base_h, r["cost"]["machine_h_per_million_requests"]
            )
    report: dict[str, Any] = {
        "model": {"name": bundle.name, "kind": bundle.kind, "family": bundle.family, "source": bundle.source},
        "task": task.describe(),
        "hardware": {**isa.to_dict(), "threads": torch.get_num_threads()},
        "batch_sizes": sorted(inputs),
        "rounds": opts.rounds,
        "started_at": started,
        "price": mprice.to_dict(),
        "targets": [t.to_dict() for t in targets],
        "variants": rows,
        "pareto_front": front,
        "choice": decision,
        "elapsed_s": time.perf_counter() - t0,
        "ledger_run_ids": [],
    }
    if opts.save_dir:
        saved = {}
        for v in variants:
            if v.status == "ok" and v.method != "original":
                saved[v.name] = str(recipes.save_variant(v, Path(opts.save_dir) / v.name))
        report["saved"] = saved
    if opts.ledger:
        from mlcost.compress.records import build_records, write_records

        report["ledger_run_ids"] = write_records(build_records(report), opts.ledger_url)
    return report
