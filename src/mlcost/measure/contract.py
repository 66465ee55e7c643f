"""The JSON contract of ``mlcost measure train|serve --json`` (docs/json.md, docs/measure.md): one flat
object per run. Units are in the names; absent values are null."""

from __future__ import annotations

from typing import Any

#: Keys of a training run's summary.
SUMMARY_KEYS: tuple[str, ...] = (
    "step_time_s",
    "step_time_p90_s",
    "step_time_cv",
    "step_time_drift",
    "stable",
    "warnings",
    "tokens_per_s",
    "tokens_per_s_per_device",
    "tokens_per_step",
    "achieved_flops_per_s",
    "model_flops_per_step",
    "mfu",
    "mfu_peak_flops_per_s",
    "mfu_peak_source",
    "mfu_unavailable_reason",
    "peak_memory_bytes",
    "memory_source",
    "energy_j",
    "energy_source",
    "energy_detail",
    "cost_usd",
    "cost_source",
    "usd_per_million_tokens",
    "co2_kg",
    "co2_source",
    "compile_time_s",
    "steps_done",
    "micro_batches_done",
    "steps_measured",
    "loss_first",
    "loss_last",
    "param_count",
)

#: Keys of a serving run's summary (one request is one step).
SERVE_SUMMARY_KEYS: tuple[str, ...] = (
    "ttft_s",
    "ttft_p90_s",
    "time_per_output_token_s",
    "request_time_s",
    "request_time_p90_s",
    "step_time_cv",
    "stable",
    "warnings",
    "tokens_per_s",
    "peak_memory_bytes",
    "energy_j",
    "energy_source",
    "cost_usd",
    "usd_per_million_tokens",
    "co2_kg",
    "steps_done",
    # --engine hf (continuous batching under a request rate); null for the static engine
    "rps",
    "ttft_p99_s",
    "itl_p50_s",
    "itl_p90_s",
    "requests_per_s",
)


def run_summary(record: Any) -> dict[str, Any]:
    """One run as the flat JSON object of ``mlcost measure train|serve --json`` (JSON-safe)."""
    from mlcost.measure.record import json_safe

    keys = SERVE_SUMMARY_KEYS if record.kind == "serve" else SUMMARY_KEYS
    out: dict[str, Any] = {
        "run_id": record.run_id,
        "status": record.status,
        "kind": record.kind,
        "model": record.model,
        "strategy": record.strategy,
        "device": record.device,
        "world_size": record.world_size,
        "dry_run": bool(getattr(record, "dry_run", False) or record.config.get("dry_run", False)),
    }
    for key in keys:
        out[key] = record.metrics.get(key)
    if out.get("warnings") is None:
        out["warnings"] = []
    out["error"] = record.error
    out["predicted"] = dict(record.predicted)
    return json_safe(out)  # type: ignore[no-any-return]
