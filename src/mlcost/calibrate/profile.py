"""Save and load a calibrated device profile.

``mlcost calibrate`` writes two files into a directory its caller chooses (the CLI passes
:func:`mlcost.paths.profile_dir`: ``$MLCOST_PROFILE_DIR`` or the user data dir):

* ``profile.toml`` — a catalog override file (the same format as ``$MLCOST_CATALOG`` files) with a
  ``[[device]]`` row ``local`` (a copy of this machine's catalog row with the measured peaks and
  bandwidth), a ``[[profile]]`` for ``local`` and one for that catalog row's id (efficiencies rescaled
  from the measured to the catalog peaks), and with ``--serve`` an ``[[engine]]`` row ``hf`` / ``local``
  (transformers' continuous batching fitted on this host). :func:`mlcost.context.default_catalog` applies it on the host it
  was measured on, before any user override, so ``--device local`` and the catalog device both use the fit.
* ``calibration.json`` — provenance: host, the CPU's identity (``provenance["host_cpu"]``: model, ISA flags,
  logical CPUs), torch version, date, the raw microbenchmarks, the measured runs and the fit's residuals.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcost.catalog.schema import PEAK_COLUMNS, Device, EfficiencyProfile, EngineProfile

PROFILE_TOML = "profile.toml"
CALIBRATION_JSON = "calibration.json"


@dataclass(kw_only=True)
class Calibration:
    """A calibration of one machine.

    Attributes:
        device: the ``local`` device row (measured peaks, bandwidths). Units as in :class:`Device`.
        profile: the fitted efficiency profile of ``local``.
        base_device: the catalog row this machine matched (e.g. ``cpu-epyc-2vcpu``), or None.
        base_profile: the fit rescaled to ``base_device``'s catalog peaks, or None.
        provenance: host, CPU, versions, date.
        microbench: raw microbenchmark figures (:meth:`MicrobenchResult.to_dict`).
        fit: parameters, residuals and the measurements used (see :mod:`mlcost.calibrate.fit`).
        engine: the ``hf`` serving engine fitted on this host (``mlcost calibrate --serve``), or None.
        serve: that fit's summary (:meth:`mlcost.calibrate.serve.ServeCalibration.to_dict`), or empty.
    """

    device: Device
    profile: EfficiencyProfile
    base_device: str | None = None
    base_profile: EfficiencyProfile | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    microbench: dict[str, Any] = field(default_factory=dict)
    fit: dict[str, Any] = field(default_factory=dict)
    engine: EngineProfile | None = None
    serve: dict[str, Any] = field(default_factory=dict)

    @property
    def date(self) -> str:
        return self.profile.date

    @property
    def peak_flops_per_s(self) -> dict[str, float]:
        """Measured peaks per precision (what the runner's MFU uses on this CPU). Units: FLOP/s."""
        return dict(self.device.peak_flops_per_s)

    @property
    def source(self) -> str:
        """``calibrated (mlcost calibrate, <date>)``: the label MFU figures carry."""
        return f"calibrated (mlcost calibrate, {self.date})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device.to_dict(),
            "profile": self.profile.to_dict(),
            "base_device": self.base_device,
            "base_profile": self.base_profile.to_dict() if self.base_profile else None,
            "provenance": self.provenance,
            "microbench": self.microbench,
            "fit": self.fit,
            "engine": self.engine.to_dict() if self.engine else None,
            "serve": self.serve,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        base = data.get("base_profile")
        return cls(
            device=Device(**data["device"]),
            profile=EfficiencyProfile(**data["profile"]),
            base_device=data.get("base_device"),
            base_profile=EfficiencyProfile(**base) if base else None,
            provenance=dict(data.get("provenance") or {}),
            microbench=dict(data.get("microbench") or {}),
            fit=dict(data.get("fit") or {}),
            engine=EngineProfile(**data["engine"]) if data.get("engine") else None,
            serve=dict(data.get("serve") or {}),
        )


# ---- TOML (written by hand: flat tables of strings and numbers need no extra dependency) ------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def device_table(device: Device) -> dict[str, Any]:
    """A Device as a ``[[device]]`` override table (the human units of devices.csv)."""
    row: dict[str, Any] = {"id": device.id, "name": device.name, "vendor": device.vendor, "kind": device.kind}
    for prec, col in PEAK_COLUMNS.items():
        if prec in device.peak_flops_per_s:
            row[col] = device.peak_flops_per_s[prec] / 1e12
    row.update(
        memory_gb=device.memory_bytes / 1e9,
        mem_bw_tb_per_s=device.mem_bw_bytes_per_s / 1e12,
        tdp_w=device.tdp_w,
        devices_per_node=device.devices_per_node,
        intra_node_gb_per_s=device.intra_node_bw_bytes_per_s / 1e9,
        inter_node_gb_per_s=device.inter_node_bw_bytes_per_s / 1e9,
        source=device.source,
        date=device.date,
    )
    if device.idle_w is not None:
        row["idle_w"] = device.idle_w
    return row


def _table(section: str, items: dict[str, Any]) -> str:
    lines = [f"[[{section}]]"] + [f"{k} = {_toml_value(v)}" for k, v in items.items() if v is not None]
    return "\n".join(lines) + "\n"


def render_toml(cal: Calibration) -> str:
    """The ``profile.toml`` catalog override for a calibration."""
    parts = [
        "# Written by `mlcost calibrate`; provenance in calibration.json next to this file.\n"
        "# A catalog override file: [[device]] local and the fitted [[profile]] rows.\n",
        _table("device", device_table(cal.device)),
        _table("profile", cal.profile.to_dict()),
    ]
    if cal.base_profile is not None:
        parts.append(_table("profile", cal.base_profile.to_dict()))
    if cal.engine is not None:
        parts.append(_table("engine", cal.engine.to_dict()))
    return "\n".join(parts)


def save_calibration(cal: Calibration, directory: Path | str) -> Path:
    """Write ``profile.toml`` and ``calibration.json`` into ``directory``; returns it. (The default catalog
    of :mod:`mlcost.context` notices the new file by its modification time.)"""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / (PROFILE_TOML + ".tmp")
    tmp.write_text(render_toml(cal))
    tmp.replace(d / PROFILE_TOML)
    tmpj = d / (CALIBRATION_JSON + ".tmp")
    tmpj.write_text(json.dumps(cal.to_dict(), indent=1, default=str))
    tmpj.replace(d / CALIBRATION_JSON)
    return d


def load_calibration(directory: Path | str) -> Calibration | None:
    """The calibration saved in ``directory``, or None when there is none. (Whether it was measured on
    this host is for the caller to check: :func:`mlcost.context.local_calibration`.)"""
    path = Path(directory) / CALIBRATION_JSON
    if not path.is_file():
        return None
    return Calibration.from_dict(json.loads(path.read_text()))


def load_local_profile(directory: Path | str) -> Calibration | None:
    """The calibration saved in ``directory`` for MFU: ``.peak_flops_per_s`` (dict, FLOP/s) and ``.source``
    (``calibrated (mlcost calibrate, <date>)``); None when not calibrated."""
    return load_calibration(directory)


def rescale_profile(profile: EfficiencyProfile, measured: Device, catalog_row: Device) -> EfficiencyProfile:
    """The fitted profile expressed against a catalog row's peaks: the same achieved rates, so each
    efficiency scales by measured/catalog (capped at 1, the loader's range)."""
    fp32_m = measured.peak_for("fp32") or 0.0
    fp32_c = catalog_row.peak_for("fp32") or fp32_m
    r_flops = fp32_m / fp32_c if fp32_c else 1.0
    r_bw = measured.mem_bw_bytes_per_s / catalog_row.mem_bw_bytes_per_s
    return dataclasses.replace(
        profile,
        device=catalog_row.id,
        matmul_eff_max=min(1.0, profile.matmul_eff_max * r_flops),
        attention_eff=min(1.0, profile.attention_eff * r_flops),
        mem_bw_eff=min(1.0, profile.mem_bw_eff * r_bw),
        source=profile.source + f"; rescaled from the measured peaks of 'local' to the {catalog_row.id} row",
    )
