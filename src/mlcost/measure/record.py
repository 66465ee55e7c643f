"""The record of one measured run, as stored in the ledger."""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, get_args

RunKind = Literal["train", "serve"]
RunStatus = Literal["running", "completed", "failed", "oom", "diverged", "interrupted"]

RUN_KINDS: tuple[str, ...] = get_args(RunKind)
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
#: Statuses a run can finish with.
FINAL_STATUSES: tuple[str, ...] = tuple(s for s in RUN_STATUSES if s != "running")

#: Metric names (free-form dict, but these keys mean these things). Units are in the names.
METRIC_NAMES: tuple[str, ...] = (
    "step_time_s",  # median step time
    "step_time_p90_s",
    "tokens_per_s",
    "tokens_per_s_per_device",
    "samples_per_s",
    "achieved_flops_per_s",
    "mfu",  # achieved / peak FLOP/s, 0..1
    "mfu_peak_source",  # where the peak came from (catalog row, calibrated profile, ...)
    "peak_memory_bytes",
    "energy_j",
    "energy_source",  # nvml | rapl | estimated | replay
    "energy_detail",
    "cost_usd",
    "co2_kg",
    "steps_done",
    "loss_last",
    "compile_time_s",
)


def utc_now_iso() -> str:
    """Current UTC time as ISO 8601 with microseconds, e.g. '2025-01-31T12:00:00.123456+00:00'."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def new_run_id() -> str:
    return uuid.uuid4().hex


def json_safe(value: Any) -> Any:
    """Convert to plain JSON types: numpy scalars/arrays → Python, tuples → lists, paths → str,
    dataclasses → dicts, NaN/inf → None (JSON has no NaN; the status says when a loss diverged)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe(dataclasses.asdict(value))
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return json_safe(item())
        except (TypeError, ValueError):
            pass
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return json_safe(tolist())
    return str(value)


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One training or serving run.

    Attributes:
        run_id: 32 hex digits (uuid4); commands accept any unique prefix.
        kind: ``train`` or ``serve``.
        status: one of :data:`RUN_STATUSES`.
        started_at / finished_at: ISO 8601 UTC; ``finished_at`` is None while running.
        model: model name (preset or HF id).
        config: the full job and strategy configuration (JSON-safe).
        strategy: short label of the strategy (e.g. ``bf16+compile``).
        device: ``cpu``, ``cuda``, a catalog device id, ...
        world_size: number of processes/devices.
        metrics: measured results, keys from :data:`METRIC_NAMES` (units in the names).
        predicted: the estimator's predictions for the same run, same keys (may be empty).
        provenance: :func:`mlcost.measure.provenance.collect_provenance` output.
        error: error message for failed/oom/diverged runs.
        host / pid: where the run's process lives; used to detect runs whose process died.
        heartbeat_at: last time the run wrote to the ledger (ISO UTC).
        dry_run: the run replayed recorded meter readings (``--dry-run``): no model ran, its figures are
            not measurements; listings hide it unless asked (``mlcost runs --all``).
    """

    run_id: str = field(default_factory=new_run_id)
    kind: RunKind = "train"
    status: RunStatus = "running"
    started_at: str = field(default_factory=utc_now_iso)
    finished_at: str | None = None
    model: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    strategy: str = ""
    device: str = "cpu"
    world_size: int = 1
    metrics: dict[str, Any] = field(default_factory=dict)
    predicted: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    host: str | None = field(default_factory=socket.gethostname)
    pid: int | None = field(default_factory=os.getpid)
    heartbeat_at: str | None = None
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.kind not in RUN_KINDS:
            raise ValueError(f"kind must be one of {RUN_KINDS}, not {self.kind!r}")
        if self.status not in RUN_STATUSES:
            raise ValueError(f"status must be one of {RUN_STATUSES}, not {self.status!r}")
        if self.world_size < 1:
            raise ValueError(f"world_size must be >= 1, not {self.world_size}")

    def replace(self, **changes: Any) -> RunRecord:
        return dataclasses.replace(self, **changes)

    @property
    def duration_s(self) -> float | None:
        """Wall time from start to finish (Units: s), or None while running."""
        if self.finished_at is None:
            return None
        return (
            datetime.fromisoformat(self.finished_at) - datetime.fromisoformat(self.started_at)
        ).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict (``json.dumps`` works on it)."""
        return {f.name: json_safe(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Inverse of :meth:`to_dict`; unknown keys are ignored (records from newer versions load)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        for key in ("config", "metrics", "predicted", "provenance"):
            if kwargs.get(key) is None:
                kwargs[key] = {}
        kwargs["dry_run"] = bool(kwargs.get("dry_run") or False)
        return cls(**kwargs)
