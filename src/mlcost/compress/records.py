"""Ledger records: one ``serve`` run record per measured variant, written only after every variant has been
measured, so an error midway leaves nothing half-written in the ledger."""

from __future__ import annotations

from typing import Any


def build_records(report: dict[str, Any]) -> list[Any]:
    """One :class:`~mlcost.measure.record.RunRecord` per measured variant of a report dict."""
    from mlcost.measure.record import RunRecord, utc_now_iso

    now = utc_now_iso()
    records = []
    for row in report["variants"]:
        if row["status"] != "ok":
            continue
        speeds = row["speeds"]
        largest = speeds[str(row["batch_size"])]
        metrics: dict[str, Any] = {
            "samples_per_s": largest["throughput_per_s"],
            "latency_p50_s": largest["latency_p50_s"],
            "latency_p95_s": largest["latency_p95_s"],
            "peak_memory_bytes": row["peak_memory_bytes"],
            "serialized_bytes": row["size_bytes"],
            "speedup": row["speedup"],
            "quality": row["quality"],
            "machine_h_per_million_requests": row["cost"]["machine_h_per_million_requests"],
            "usd_per_million_requests": row["cost"]["usd_per_million_requests"],
        }
        if row.get("training"):
            t = row["training"]
            metrics.update(
                {
                    "train_time_s": t["time_s"],
                    "train_flops": t["flops"],
                    "energy_j": t["energy_j"],
                    "energy_source": t["energy_source"],
                    "cost_usd": t["cost_usd"],
                }
            )
        records.append(
            RunRecord(
                kind="serve",
                status="completed",
                started_at=report["started_at"],
                finished_at=now,
                model=report["model"]["name"],
                strategy=f"compress:{row['name']}",
                device="cpu",
                config={
                    "recipe": row["recipe"],
                    "task": report["task"],
                    "batch_sizes": report["batch_sizes"],
                    "rounds": report["rounds"],
                    "precision": row["precision"],
                },
                metrics=metrics,
                provenance={"cpu": report["hardware"], "source": report["model"]["source"]},
            )
        )
    return records


def write_records(records: list[Any], url: str | None = None) -> list[str]:
    """Insert finished records into the ledger (the one call into mlcost.measure.ledger)."""
    from mlcost.measure.ledger import Ledger

    ids = []
    with Ledger(url, persistent=True) as ledger:
        for rec in records:
            ledger.start_run(rec)
            ledger.finish_run(rec.run_id, "completed", rec.metrics)
            ids.append(rec.run_id)
    return ids
