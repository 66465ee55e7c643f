"""Read, validate and query the catalogs: devices, prices, carbon intensity, PUE, model presets and
efficiency profiles.

Package data lives in ``mlcost/catalog/data/`` (CSV for the tables, TOML for model presets and efficiency
profiles). This module is pure: it reads only the files it is given and never the environment or user
directories. Users extend or replace rows with TOML override files, passed to :meth:`Catalog.from_paths`
(the application edge, :mod:`mlcost.context`, adds ``$MLCOST_CATALOG``, ``--catalog`` files and the saved
calibration)::

    [[device]]           # same columns as devices.csv; empty/omitted optional columns = unknown
    id = "my-gpu"
    ...
    [[price]]            # same columns as prices.csv
    [[carbon]]           # same columns as carbon.csv
    [[provider]]         # same columns as providers.csv
    [[model]]            # ModelSpec fields + source + date, as in models.toml
    [[profile]]          # EfficiencyProfile fields, as in efficiency.toml
    [[cpu]]              # same columns as cpus.csv: which hosts a cpu device row describes
    [[engine]]           # same columns as engines.csv: a serving engine's overheads on a device

A row whose key equals a package row replaces it; a new key extends the catalog. Keys: device ``id``;
price ``(device, provider, region, pricing, instance)``; carbon ``(zone, provider)``; provider ``provider``;
model ``name``; profile ``device``; cpu ``device``; engine ``(engine, device)``.

Units and conventions of the data files (converted to SI fields of :mod:`mlcost.catalog.schema` on load):

* peaks in TFLOP/s (``int8`` in TOP/s), dense only, never 2:4-sparse figures; an empty cell means the
  device has no units for that precision (or it is unknown);
* ``memory_gb`` in decimal gigabytes: ``memory_bytes = 1e9 × memory_gb``. Marketed HBM sizes ("80GB") are
  taken as written; where a source states GiB the file converts (e.g. 24 GiB → 25.77 GB);
* ``mem_bw_tb_per_s`` in 1e12 bytes/s; link bandwidths in 1e9 bytes/s per device, one direction;
* prices in USD per device-hour; carbon in kg CO2e per kWh; ``pue`` dimensionless (≥ 1);
* every row has ``source`` (non-empty) and ``date`` (ISO ``YYYY-MM-DD``).

Validation runs on load: unknown/missing columns, types, sane ranges, dates, unknown device ids in price
rows and duplicate keys within one file raise :class:`~mlcost.errors.CatalogError` naming the file, the row
and the column, with a hint on how to fix it.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcost.catalog.protocol import CatalogLike
from mlcost.catalog.schema import (
    ENGINE_DEVICE_CLASSES,
    ENGINES,
    ISA_LEVELS,
    PEAK_COLUMNS,
    CarbonRow,
    CpuRow,
    Device,
    EfficiencyProfile,
    EngineProfile,
    ModelRow,
    PriceRow,
    ProviderRow,
)
from mlcost.errors import CatalogError, MlcostError, SpecError, UnknownNameError, did_you_mean
from mlcost.spec.model import ModelSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DATA_DIR = Path(__file__).resolve().parent / "data"
PRICINGS = ("on-demand", "spot")
DEVICE_KINDS = ("gpu", "tpu", "cpu")
OVERRIDE_SECTIONS = ("device", "price", "carbon", "provider", "model", "profile", "cpu", "engine")
#: The device id ``mlcost calibrate`` saves this machine's measured row under.
LOCAL_ID = "local"

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TERA = 1e12
_GIGA = 1e9

# ---- column specifications --------------------------------------------------------------------------
# name -> (parser, required). A parser takes the raw value and returns the typed value or raises ValueError
# with a message that says what was expected.


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    return value.strip()


def _nonempty(value: Any) -> str:
    text = _text(value)
    if not text:
        raise ValueError("must not be empty")
    return text


def _number(lo: float, hi: float, *, lo_open: bool = True, hi_open: bool = True, optional: bool = False):  # type: ignore[no-untyped-def]
    """A float in (lo, hi) (open/closed ends as given); empty → None when optional."""

    def parse(value: Any) -> float | None:
        if isinstance(value, str):
            value = value.strip()
            if value == "":
                if optional:
                    return None
                raise ValueError("must not be empty")
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"expected a number, got {value!r}") from None
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        else:
            number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {value!r}")
        too_low = number <= lo if lo_open else number < lo
        too_high = number >= hi if hi_open else number > hi
        if too_low or too_high:
            left = "(" if lo_open else "["
            right = ")" if hi_open else "]"
            raise ValueError(f"{number:g} is outside the sane range {left}{lo:g}, {hi:g}{right}")
        return number

    return parse


def _integer(lo: int, hi: int):  # type: ignore[no-untyped-def]
    def parse(value: Any) -> int:
        number = _number(lo - 1, hi + 1)(value)
        assert number is not None
        if number != int(number):
            raise ValueError(f"expected a whole number, got {value!r}")
        return int(number)

    return parse


def _choice(options: Sequence[str]):  # type: ignore[no-untyped-def]
    def parse(value: Any) -> str:
        text = _text(value)
        if text not in options:
            extra = did_you_mean(text, list(options), end=")")
            extra = f" ({extra}" if extra else ""
            raise ValueError(f"must be one of {', '.join(options)}, got {text!r}{extra}")
        return text

    return parse


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0", ""):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _optional_count(value: Any) -> int | None:
    if isinstance(value, str) and value.strip() == "":
        return None
    return _integer(1, 1 << 20)(value)  # type: ignore[no-any-return]


def _date(value: Any) -> str:
    import datetime

    if isinstance(value, datetime.date):  # TOML dates arrive parsed
        return value.isoformat()
    text = _text(value)
    if not _DATE_RE.match(text):
        raise ValueError(f"expected an ISO date YYYY-MM-DD, got {text!r}")
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a valid calendar date: {text!r}") from None
    return text


Parser = Callable[[Any], Any]

_PEAK = _number(0.0, 1e4, optional=True)
DEVICE_COLUMNS: dict[str, tuple[Parser, bool]] = {
    "id": (_nonempty, True),
    "name": (_nonempty, True),
    "vendor": (_nonempty, True),
    "kind": (_choice(DEVICE_KINDS), True),
    "peak_fp32_tflops": (_PEAK, False),
    "peak_tf32_tflops": (_PEAK, False),
    "peak_bf16_tflops": (_PEAK, False),
    "peak_fp16_tflops": (_PEAK, False),
    "peak_fp8_tflops": (_PEAK, False),
    "peak_int8_tops": (_PEAK, False),
    "memory_gb": (_number(1.0, 1024.0, lo_open=False, hi_open=False), True),
    "mem_bw_tb_per_s": (_number(0.0, 100.0), True),
    "tdp_w": (_number(0.0, 5000.0), True),
    "idle_w": (_number(0.0, 5000.0, lo_open=False, optional=True), False),
    "devices_per_node": (_integer(1, 1024), True),
    "intra_node_gb_per_s": (_number(0.0, 1e5), True),
    "inter_node_gb_per_s": (_number(0.0, 1e5), True),
    "source": (_nonempty, True),
    "date": (_date, True),
}
PRICE_COLUMNS: dict[str, tuple[Parser, bool]] = {
    "device": (_nonempty, True),
    "provider": (_nonempty, True),
    "region": (_nonempty, True),
    "pricing": (_choice(PRICINGS), True),
    "usd_per_device_h": (_number(0.0, 200.0), True),
    "instance": (_text, False),
    "source": (_nonempty, True),
    "date": (_date, True),
}
CARBON_COLUMNS: dict[str, tuple[Parser, bool]] = {
    "zone": (_nonempty, True),
    "provider": (_text, False),
    "kg_co2_per_kwh": (_number(0.0, 1.5, lo_open=False, hi_open=False), True),
    "source": (_nonempty, True),
    "date": (_date, True),
}
CPU_COLUMNS: dict[str, tuple[Parser, bool]] = {
    "device": (_nonempty, True),
    "vendor": (_text, False),
    "isa": (_choice(ISA_LEVELS), True),
    "model_words": (_text, False),
    "logical_cpus": (_optional_count, False),
    "per_logical_cpu": (_flag, False),
    "source": (_nonempty, True),
    "date": (_date, True),
}
PROVIDER_COLUMNS: dict[str, tuple[Parser, bool]] = {
    "provider": (_nonempty, True),
    "pue": (_number(1.0, 3.0, lo_open=False, hi_open=False), True),
    "source": (_nonempty, True),
    "date": (_date, True),
}


def _default_zero(parse: Parser) -> Parser:
    """``parse``, with an empty or omitted value meaning 0 (an optional column added after the first rows)."""

    def wrapped(value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return 0.0
        return parse(value)

    return wrapped


ENGINE_COLUMNS: dict[str, tuple[Parser, bool]] = {
    "engine": (_choice(ENGINES), True),
    "device": (_nonempty, True),
    "iteration_overhead_s": (_number(0.0, 10.0, lo_open=False), True),
    "per_seq_overhead_s": (_number(0.0, 1.0, lo_open=False), True),
    "collective_latency_s": (_number(0.0, 1.0, lo_open=False), True),
    "matmul_eff_scale": (_number(0.0, 2.0, hi_open=False), True),
    "fp8_matmul_eff_scale": (_number(0.0, 2.0, hi_open=False), True),
    "decode_mem_bw_eff": (_number(0.0, 1.0, hi_open=False), True),
    "source": (_nonempty, True),
    "date": (_date, True),
    "fitted_on": (_text, False),
    "first_token_lag_steps": (_default_zero(_number(0.0, 10.0, lo_open=False)), False),
}

_MODEL_FIELDS = tuple(f.name for f in dataclasses.fields(ModelSpec))
_PROFILE_FIELDS = {f.name: f for f in dataclasses.fields(EfficiencyProfile)}
# (lo, hi, lo_open, hi_open) sane ranges of the numeric profile fields.
_PROFILE_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "matmul_eff_max": (0.0, 1.0, True, False),
    "matmul_half_dim": (0.0, 1e6, False, True),
    "attention_eff": (0.0, 1.0, True, False),
    "mem_bw_eff": (0.0, 4.0, True, False),  # > 1 on CPUs: cache-resident element-wise ops (calibrate)
    "intra_comm_eff": (0.0, 1.0, True, False),
    "inter_comm_eff": (0.0, 1.0, True, False),
    "dp_overlap": (0.0, 1.0, False, False),
    "power_frac": (0.0, 1.5, True, False),
    "framework_overhead_bytes": (0.0, 1e12, False, True),
    "step_overhead_s": (0.0, 3600.0, False, True),
    "layer_overhead_s": (0.0, 60.0, False, True),
    "activation_overhead_frac": (0.0, 10.0, False, False),
    "error_band_rel": (0.0, 10.0, False, True),
}


@dataclass(frozen=True)
class _Origin:
    """Where a row came from, for error messages: ``devices.csv row 7`` or ``my.toml [[price]] #2``."""

    file: str
    row: str

    def __str__(self) -> str:
        return f"{self.file} {self.row}"


def _fail(origin: _Origin, column: str | None, problem: str, hint: str) -> CatalogError:
    where = f"{origin}" + (f", column {column!r}" if column else "")
    return CatalogError(f"{where}: {problem}", hint=hint)


def _parse_row(
    raw: dict[str, Any],
    columns: dict[str, tuple[Parser, bool]],
    origin: _Origin,
    *,
    strict_columns: bool,
    table: str,
) -> dict[str, Any]:
    """Check the columns of one row and parse each value. CSV rows must have every column
    (``strict_columns``); TOML rows may omit the optional ones."""
    unknown = [k for k in raw if k not in columns]
    if unknown:
        hint = did_you_mean(str(unknown[0]), list(columns), end=" ")
        raise _fail(
            origin, str(unknown[0]), "unknown column", hint + f"the {table} columns are: {', '.join(columns)}"
        )
    out: dict[str, Any] = {}
    for name, (parser, required) in columns.items():
        if name not in raw or raw[name] is None:
            if strict_columns or required:
                raise _fail(
                    origin, name, "missing column", f"add it; the {table} columns are: {', '.join(columns)}"
                )
            out[name] = parser("")
            continue
        try:
            out[name] = parser(raw[name])
        except ValueError as exc:
            raise _fail(origin, name, str(exc), _column_hint(table, name)) from None
    return out


def _column_hint(table: str, column: str) -> str:
    if column == "date":
        return "write the date the value was observed as YYYY-MM-DD"
    if column == "source":
        return "say where the value comes from (URL, datasheet, or 'measured with ...')"
    if column.startswith("peak_"):
        return (
            "write the DENSE peak in TFLOP/s (TOP/s for int8), or leave empty if the device has no such units"
        )
    units = {
        "memory_gb": "decimal GB (1e9 bytes)",
        "mem_bw_tb_per_s": "TB/s (1e12 bytes/s)",
        "tdp_w": "watts",
        "idle_w": "watts, or empty if unknown",
        "intra_node_gb_per_s": "GB/s per device, one direction",
        "inter_node_gb_per_s": "GB/s per device, one direction",
        "usd_per_device_h": "USD per device-hour",
        "kg_co2_per_kwh": "kg CO2e per kWh (gCO2e/kWh ÷ 1000)",
        "pue": "facility energy / IT energy (1.0-3.0)",
    }
    if column in units:
        return f"{table}.{column} is in {units[column]}"
    return f"fix the {column!r} value of this {table} row"


# ---- file readers -----------------------------------------------------------------------------------


def _read_csv(
    path: Path, columns: dict[str, tuple[Parser, bool]], table: str
) -> list[tuple[dict[str, Any], _Origin]]:
    rows: list[tuple[dict[str, Any], _Origin]] = []
    name = str(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise CatalogError(
                    f"{name}: empty file", hint=f"the first line must be: {','.join(columns)}"
                ) from None
            head_origin = _Origin(name, "row 1 (header)")
            for col in header:
                if col not in columns:
                    hint = did_you_mean(col, list(columns), end=" ")
                    raise _fail(
                        head_origin, col, "unknown column", hint + f"expected columns: {','.join(columns)}"
                    )
            for col in columns:
                if col not in header:
                    raise _fail(head_origin, col, "missing column", f"expected columns: {','.join(columns)}")
            if len(set(header)) != len(header):
                dup = next(h for h in header if header.count(h) > 1)
                raise _fail(head_origin, dup, "duplicate column", "name each column once")
            for values in reader:
                line = reader.line_num
                if not values or all(not v.strip() for v in values):
                    continue
                origin = _Origin(name, f"row {line}")
                if len(values) != len(header):
                    raise _fail(
                        origin,
                        None,
                        f"{len(values)} values for {len(header)} columns",
                        "quote values that contain commas; leave unknown cells empty but keep the commas",
                    )
                raw = dict(zip(header, values, strict=True))
                rows.append((_parse_row(raw, columns, origin, strict_columns=True, table=table), origin))
    except OSError as exc:
        raise CatalogError(f"cannot read catalog file {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CatalogError(f"{name}: not UTF-8 text", hint="save the file as UTF-8") from None
    return rows


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise CatalogError(
            f"catalog file not found: {path}",
            hint="check the path (override files come from $MLCOST_CATALOG or --catalog)",
        ) from None
    except OSError as exc:
        raise CatalogError(f"cannot read catalog file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(
            f"{path}: invalid TOML: {exc}", hint="fix the syntax at the position given"
        ) from None


def _tables(doc: dict[str, Any], section: str, path: Path) -> list[tuple[dict[str, Any], _Origin]]:
    items = doc.get(section, [])
    if not isinstance(items, list) or not all(isinstance(t, dict) for t in items):
        raise CatalogError(
            f"{path}: {section!r} must be an array of tables", hint=f"write each row as a [[{section}]] table"
        )
    return [(t, _Origin(str(path), f"[[{section}]] #{i}")) for i, t in enumerate(items, start=1)]


def _model_from_table(table: dict[str, Any], origin: _Origin) -> ModelRow:
    allowed = (*_MODEL_FIELDS, "date")
    for key in table:
        if key not in allowed:
            hint = did_you_mean(key, list(allowed), end=" ")
            raise _fail(
                origin,
                key,
                "unknown key",
                hint + f"model keys are ModelSpec fields plus 'date': {', '.join(allowed)}",
            )
    for key in ("name", "source", "date"):
        if key not in table:
            raise _fail(origin, key, "missing key", "every [[model]] needs name, source and date")
    try:
        date = _date(table["date"])
        source = _nonempty(table["source"])
    except ValueError as exc:
        raise _fail(origin, "date" if "date" in str(exc) else "source", str(exc), "fix the value") from None
    fields = {k: v for k, v in table.items() if k != "date"}
    try:
        spec = ModelSpec(**fields)
    except SpecError as exc:
        raise _fail(origin, None, f"invalid model: {exc.message}", exc.hint or "fix the shape") from None
    except TypeError as exc:
        raise _fail(
            origin,
            None,
            f"invalid model: {exc}",
            "name, kind, n_layers, d_model, n_heads, d_ff, vocab_size, max_seq_len are required",
        ) from None
    return ModelRow(spec=spec, source=source, date=date)


def _profile_from_table(table: dict[str, Any], origin: _Origin) -> EfficiencyProfile:
    for key in table:
        if key not in _PROFILE_FIELDS:
            hint = did_you_mean(key, list(_PROFILE_FIELDS), end=" ")
            raise _fail(
                origin,
                key,
                "unknown key",
                hint + f"profile keys are EfficiencyProfile fields: {', '.join(_PROFILE_FIELDS)}",
            )
    values: dict[str, Any] = {}
    for name, fld in _PROFILE_FIELDS.items():
        if name not in table:
            if fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
                raise _fail(
                    origin, name, "missing key", "every [[profile]] needs all fields without a default"
                )
            continue
        value = table[name]
        try:
            if name == "device":
                values[name] = _nonempty(value)
            elif name == "source":
                values[name] = _text(value)
            elif name == "date":
                values[name] = _date(value) if value != "" else ""
            elif name == "extra":
                if not isinstance(value, dict):
                    raise ValueError("expected a table of numbers, e.g. extra = { key = 1.0 }")
                values[name] = {
                    str(k): float(_number(-math.inf, math.inf)(v) or 0.0) for k, v in value.items()
                }
            else:
                lo, hi, lo_open, hi_open = _PROFILE_RANGES[name]
                values[name] = _number(lo, hi, lo_open=lo_open, hi_open=hi_open)(value)
        except ValueError as exc:
            raise _fail(
                origin, name, str(exc), "fix the value (efficiencies are fractions of peak in (0, 1])"
            ) from None
    return EfficiencyProfile(**values)


def _device_from_row(row: dict[str, Any]) -> Device:
    peaks = {p: row[col] * _TERA for p, col in PEAK_COLUMNS.items() if row[col] is not None}
    return Device(
        id=row["id"],
        name=row["name"],
        vendor=row["vendor"],
        kind=row["kind"],
        peak_flops_per_s=peaks,
        memory_bytes=row["memory_gb"] * _GIGA,
        mem_bw_bytes_per_s=row["mem_bw_tb_per_s"] * _TERA,
        tdp_w=row["tdp_w"],
        idle_w=row["idle_w"],
        devices_per_node=row["devices_per_node"],
        intra_node_bw_bytes_per_s=row["intra_node_gb_per_s"] * _GIGA,
        inter_node_bw_bytes_per_s=row["inter_node_gb_per_s"] * _GIGA,
        source=row["source"],
        date=row["date"],
    )


def _check_device_row(row: dict[str, Any], origin: _Origin) -> None:
    if not any(row[col] is not None for col in PEAK_COLUMNS.values()):
        raise _fail(
            origin, "peak_fp32_tflops", "no peak given for any precision", "fill at least one peak_* column"
        )
    if row["idle_w"] is not None and row["idle_w"] > row["tdp_w"]:
        raise _fail(
            origin,
            "idle_w",
            f"idle power {row['idle_w']:g} W exceeds TDP {row['tdp_w']:g} W",
            "check both values",
        )


class _Merger:
    """Collects rows from several files: duplicates within one file are an error, later files replace."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.rows: dict[Any, tuple[Any, _Origin]] = {}

    def add_file(self, items: Iterable[tuple[Any, Any, _Origin]]) -> None:
        seen: dict[Any, _Origin] = {}
        for key, value, origin in items:
            if key in seen:
                raise CatalogError(
                    f"{origin}: duplicate {self.table} key {key!r} (first at {seen[key].row})",
                    hint="each key may appear once per file; delete or merge one of the rows",
                )
            seen[key] = origin
            self.rows[key] = (value, origin)


# ---- the catalog ------------------------------------------------------------------------------------


class Catalog:
    """Devices, prices, carbon intensities, PUE, model presets and efficiency profiles, validated.

    Build with :meth:`from_paths` (explicit files) or :func:`builtin_catalog` (the package data, cached); the
    CLI's default with user overrides and calibration is :func:`mlcost.context.default_catalog`.
    """

    def __init__(
        self,
        *,
        devices: dict[str, Device],
        prices: list[PriceRow],
        carbon: dict[tuple[str, str], CarbonRow],
        providers: dict[str, ProviderRow],
        models: dict[str, ModelRow],
        profiles: dict[str, EfficiencyProfile] | None,
        efficiency_path: Path | None,
        override_profiles: dict[str, EfficiencyProfile],
        files: Sequence[Path],
        cpus: dict[str, CpuRow] | None = None,
        engines: dict[tuple[str, str], EngineProfile] | None = None,
    ) -> None:
        self._devices = devices
        self._prices = prices
        self._carbon = carbon
        self._providers = providers
        self._models = models
        self._profiles = profiles  # None until efficiency() first loads efficiency.toml
        self._efficiency_path = efficiency_path
        self._override_profiles = override_profiles
        self._runtime_profiles: dict[str, EfficiencyProfile] = {}
        self._cpus = dict(cpus or {})
        self._engines = dict(engines or {})
        self.files: tuple[Path, ...] = tuple(files)

    # ---- construction -------------------------------------------------------------------------------
    @classmethod
    def from_paths(
        cls,
        data_dir: Path | str | None = None,
        overrides: Sequence[Path | str] = (),
        *,
        efficiency: Path | str | None = None,
    ) -> Catalog:
        """Load ``devices.csv``, ``prices.csv``, ``carbon.csv``, ``providers.csv`` and ``models.toml`` from
        ``data_dir`` (the package data by default), then apply TOML ``overrides`` in order.

        ``efficiency.toml`` (``efficiency`` or ``data_dir/efficiency.toml``) is read lazily by
        :meth:`efficiency`, so a missing file only fails there. ``cpus.csv`` (host matching) is optional.
        """
        base = Path(data_dir) if data_dir is not None else DATA_DIR
        files = [
            base / n for n in ("devices.csv", "prices.csv", "carbon.csv", "providers.csv", "models.toml")
        ]
        devices = _Merger("device")
        prices = _Merger("price")
        carbon = _Merger("carbon")
        providers = _Merger("provider")
        models = _Merger("model")
        profiles = _Merger("profile")
        cpus = _Merger("cpu")
        engines = _Merger("engine")

        devices.add_file(
            (r["id"], r, o) for r, o in cls._checked_devices(_read_csv(files[0], DEVICE_COLUMNS, "device"))
        )
        prices.add_file((_price_key(r), r, o) for r, o in _read_csv(files[1], PRICE_COLUMNS, "price"))
        # Every region's prices, generated by `mlcost catalog import-skypilot` (data/prices_skypilot.md).
        skypilot_prices = base / "prices_skypilot.csv"
        if skypilot_prices.is_file():
            files.append(skypilot_prices)
            prices.add_file(
                (_price_key(r), r, o) for r, o in _read_csv(skypilot_prices, PRICE_COLUMNS, "price")
            )
        carbon.add_file(
            ((r["zone"], r["provider"]), r, o) for r, o in _read_csv(files[2], CARBON_COLUMNS, "carbon")
        )
        providers.add_file(
            (r["provider"], r, o) for r, o in _read_csv(files[3], PROVIDER_COLUMNS, "provider")
        )
        doc = _read_toml(files[4])
        _check_sections(doc, files[4], allowed=("model",))
        models.add_file(
            (m.spec.name, m, o)
            for m, o in ((_model_from_table(t, o), o) for t, o in _tables(doc, "model", files[4]))
        )
        if (base / "cpus.csv").is_file():
            files.append(base / "cpus.csv")
            cpus.add_file((r["device"], r, o) for r, o in _read_csv(base / "cpus.csv", CPU_COLUMNS, "cpu"))
        if (base / "engines.csv").is_file():
            files.append(base / "engines.csv")
            engines.add_file(
                ((r["engine"], r["device"]), r, o)
                for r, o in _read_csv(base / "engines.csv", ENGINE_COLUMNS, "engine")
            )

        for raw_path in overrides:
            path = Path(raw_path)
            files.append(path)
            doc = _read_toml(path)
            _check_sections(doc, path, allowed=OVERRIDE_SECTIONS)

            def parsed(
                section: str, columns: dict[str, tuple[Parser, bool]], p: Path = path, d: dict[str, Any] = doc
            ):
                return [
                    (_parse_row(t, columns, o, strict_columns=False, table=section), o)
                    for t, o in _tables(d, section, p)
                ]

            devices.add_file(
                (r["id"], r, o) for r, o in cls._checked_devices(parsed("device", DEVICE_COLUMNS))
            )
            prices.add_file((_price_key(r), r, o) for r, o in parsed("price", PRICE_COLUMNS))
            carbon.add_file(((r["zone"], r["provider"]), r, o) for r, o in parsed("carbon", CARBON_COLUMNS))
            providers.add_file((r["provider"], r, o) for r, o in parsed("provider", PROVIDER_COLUMNS))
            models.add_file(
                (m.spec.name, m, o)
                for m, o in ((_model_from_table(t, o), o) for t, o in _tables(doc, "model", path))
            )
            profiles.add_file(
                (p.device, p, o)
                for p, o in ((_profile_from_table(t, o), o) for t, o in _tables(doc, "profile", path))
            )
            cpus.add_file((r["device"], r, o) for r, o in parsed("cpu", CPU_COLUMNS))
            engines.add_file(((r["engine"], r["device"]), r, o) for r, o in parsed("engine", ENGINE_COLUMNS))

        device_map = {k: _device_from_row(r) for k, (r, _) in devices.rows.items()}
        for (device_id, *_rest), (_row, origin) in prices.rows.items():
            if device_id not in device_map:
                hint = did_you_mean(device_id, sorted(device_map), end=" ")
                raise _fail(
                    origin,
                    "device",
                    f"unknown device id {device_id!r}",
                    hint + "add the device to devices.csv or a [[device]] table first",
                )
        for device_id, (_row, origin) in cpus.rows.items():
            if device_id not in device_map or device_map[device_id].kind != "cpu":
                raise _fail(
                    origin,
                    "device",
                    f"{device_id!r} is not a cpu device of the catalog",
                    "a [[cpu]] row describes a kind = 'cpu' device row; add that row first",
                )
        for (_engine, device_id), (_row, origin) in engines.rows.items():
            if device_id not in device_map and device_id not in ENGINE_DEVICE_CLASSES:
                hint = did_you_mean(device_id, [*ENGINE_DEVICE_CLASSES, *sorted(device_map)], end=" ")
                raise _fail(
                    origin,
                    "device",
                    f"{device_id!r} is neither a device id nor a device class",
                    hint + f"use a device id of devices.csv or one of {', '.join(ENGINE_DEVICE_CLASSES)}",
                )
        if "world" not in {z for z, _ in carbon.rows}:
            raise CatalogError(
                f"{files[2]}: no 'world' row", hint="the carbon table needs a 'world' fallback row"
            )
        if "default" not in providers.rows:
            raise CatalogError(
                f"{files[3]}: no 'default' row", hint="the provider table needs a 'default' PUE row"
            )
        return cls(
            devices=device_map,
            prices=[PriceRow(**r) for r, _ in prices.rows.values()],
            carbon={k: CarbonRow(**r) for k, (r, _) in carbon.rows.items()},
            providers={k: ProviderRow(**r) for k, (r, _) in providers.rows.items()},
            models={k: m for k, (m, _) in models.rows.items()},
            profiles=None,
            efficiency_path=Path(efficiency) if efficiency is not None else base / "efficiency.toml",
            override_profiles={k: p for k, (p, _) in profiles.rows.items()},
            files=files,
            cpus={k: CpuRow(**r) for k, (r, _) in cpus.rows.items()},
            engines={k: EngineProfile(**r) for k, (r, _) in engines.rows.items()},
        )

    @staticmethod
    def _checked_devices(rows: list[tuple[dict[str, Any], _Origin]]) -> list[tuple[dict[str, Any], _Origin]]:
        for row, origin in rows:
            _check_device_row(row, origin)
        return rows

    # ---- devices ------------------------------------------------------------------------------------
    def device(self, device_id: str) -> Device:
        """The device with this catalog id (``mlcost devices`` lists them)."""
        try:
            return self._devices[device_id]
        except KeyError:
            lowered = {k.lower(): k for k in self._devices}
            if device_id.lower() in lowered:
                return self._devices[lowered[device_id.lower()]]
            hint = "run 'mlcost devices' for the list"
            if device_id.lower() == "local":
                hint = "'local' exists once this machine is calibrated: run 'mlcost calibrate' first"
            raise UnknownNameError("device", device_id, self._devices, extra_hint=hint) from None

    def devices(self) -> list[Device]:
        return list(self._devices.values())

    def cpu_rows(self) -> list[CpuRow]:
        """Which hosts each cpu device row describes (``cpus.csv``), for :mod:`mlcost.catalog.host`."""
        return list(self._cpus.values())

    def with_device(self, device: Device, profile: EfficiencyProfile | None = None) -> Catalog:
        """A copy of this catalog with ``device`` added (or replaced), and its profile if given. The copy
        shares the loaded rows; this catalog is unchanged."""
        other = Catalog(
            devices={**self._devices, device.id: device},
            prices=self._prices,
            carbon=self._carbon,
            providers=self._providers,
            models=self._models,
            profiles=self._profiles,
            efficiency_path=self._efficiency_path,
            override_profiles=self._override_profiles,
            files=self.files,
            cpus=self._cpus,
        )
        other._runtime_profiles = dict(self._runtime_profiles)
        if profile is not None:
            other.register_profile(profile)
        return other

    # ---- models -------------------------------------------------------------------------------------
    def model_row(self, name: str) -> ModelRow:
        """A model preset with its source and date."""
        try:
            return self._models[name]
        except KeyError:
            lowered = {k.lower(): k for k in self._models}
            if name.lower() in lowered:
                return self._models[lowered[name.lower()]]
            raise UnknownNameError(
                "model preset",
                name,
                self._models,
                extra_hint="run 'mlcost models' for the list, or pass a path to a Hugging Face config.json",
            ) from None

    def model(self, name: str) -> ModelSpec:
        """The preset's shape."""
        return self.model_row(name).spec

    def models(self) -> list[ModelSpec]:
        return [m.spec for m in self._models.values()]

    def model_rows(self) -> list[ModelRow]:
        return list(self._models.values())

    # ---- prices -------------------------------------------------------------------------------------
    def providers(self) -> list[str]:
        """Providers with at least one price row."""
        return sorted({p.provider for p in self._prices})

    def regions(self, provider: str | None = None) -> list[str]:
        """Regions with price rows (of one provider if given); ``*`` means provider-wide."""
        return sorted({p.region for p in self._prices if provider is None or p.provider == provider})

    @property
    def price_snapshot_date(self) -> str:
        """Latest observation date among the price rows (ISO)."""
        return max((p.date for p in self._prices), default="")

    @property
    def price_date_range(self) -> tuple[str, str]:
        """Oldest and latest observation dates among the price rows (ISO): the snapshot date alone can
        hide that most rows are older."""
        dates = [p.date for p in self._prices]
        return (min(dates), max(dates)) if dates else ("", "")

    def prices(
        self,
        device: str | None = None,
        provider: str | None = None,
        region: str | None = None,
        pricing: str | None = None,
    ) -> list[PriceRow]:
        """Price rows matching every filter given (exact matches), cheapest first."""
        rows = [
            p
            for p in self._prices
            if (device is None or p.device == device)
            and (provider is None or p.provider == provider)
            and (region is None or p.region == region)
            and (pricing is None or p.pricing == pricing)
        ]
        return sorted(rows, key=_price_order)

    def price(
        self,
        device: str,
        provider: str | None = None,
        region: str | None = None,
        pricing: str = "on-demand",
        count: int | None = None,
    ) -> PriceRow:
        """The cheapest price row for a device under the filters that can supply ``count`` devices (a
        single marketplace offer supplies only its own devices: :attr:`PriceRow.max_devices`).

        A provider-wide row (region ``*``) matches any region of that provider when ``provider`` is given.
        Raises :class:`UnknownNameError` for an unknown device, provider, region or pricing kind, and
        :class:`MlcostError` listing where the device is priced when no row matches.
        """
        dev = self.device(device).id
        if pricing not in PRICINGS:
            raise UnknownNameError("pricing", pricing, PRICINGS)
        if provider is not None and provider not in self.providers():
            raise UnknownNameError("provider", provider, self.providers())
        if region is not None:
            known = self.regions(provider)
            if region not in known and not (provider is not None and "*" in known):
                raise UnknownNameError(
                    "region" + (f" for {provider}" if provider else ""),
                    region,
                    [r for r in known if r != "*"] or known,
                )
        rows = [
            p
            for p in self._prices
            if p.device == dev
            and p.pricing == pricing
            and (provider is None or p.provider == provider)
            and (region is None or p.region == region or (provider is not None and p.region == "*"))
            and (count is None or count <= p.max_devices)
        ]
        if not rows:
            where = self.prices(device=dev)
            wanted = " ".join(x for x in (provider, region) if x) or "any provider"
            if where:
                listing = "; ".join(
                    f"{p.provider} {p.region} {p.pricing} ${p.usd_per_device_h:g}/h" for p in where[:8]
                )
                hint = f"{dev} is priced at: {listing}; or set the price yourself (price_usd_per_device_h / --price)"
            else:
                hint = "no provider lists this device; set the price yourself (price_usd_per_device_h / --price) or add a [[price]] row in an override file"
            raise MlcostError(f"no {pricing} price for {dev} at {wanted}", hint=hint)
        return min(rows, key=_price_order)

    # ---- energy -------------------------------------------------------------------------------------
    def carbon(self, zone: str | None = None, provider: str | None = None) -> CarbonRow:
        """Grid carbon intensity: the region (or country) row → the provider-wide row (zone ``*``) →
        ``world``. The returned row's ``zone``/``provider`` say which one was used."""
        if zone:
            if provider is not None and (zone, provider) in self._carbon:
                return self._carbon[(zone, provider)]
            if (zone.upper(), "") in self._carbon:  # ISO alpha-3 country
                return self._carbon[(zone.upper(), "")]
            if zone in ("world", "*") and provider is None:
                return self._carbon[("world", "")]
            if provider is None:
                matches = [row for (z, _p), row in self._carbon.items() if z == zone]
                if len(matches) == 1:
                    return matches[0]
        if provider is not None and ("*", provider) in self._carbon:
            return self._carbon[("*", provider)]
        return self._carbon[("world", "")]

    def zones(self) -> list[tuple[str, str]]:
        """All ``(zone, provider)`` keys of the carbon table."""
        return sorted(self._carbon)

    def pue(self, provider: str | None = None) -> ProviderRow:
        """The provider's data-centre PUE, or the ``default`` row (its ``provider`` field says so)."""
        if provider is not None and provider in self._providers:
            return self._providers[provider]
        return self._providers["default"]

    # ---- efficiency profiles ------------------------------------------------------------------------
    def _load_profiles(self) -> dict[str, EfficiencyProfile]:
        if self._profiles is None:
            path = self._efficiency_path
            base: dict[str, EfficiencyProfile] = {}
            if path is None or not path.exists():
                if not self._override_profiles:
                    raise CatalogError(
                        f"no efficiency profiles: {path} does not exist",
                        hint="the package ships efficiency.toml; reinstall mlcost, or add [[profile]] tables in an override file",
                    )
            else:
                doc = _read_toml(path)
                _check_sections(doc, path, allowed=("profile",))
                merger = _Merger("profile")
                merger.add_file(
                    (p.device, p, o)
                    for p, o in ((_profile_from_table(t, o), o) for t, o in _tables(doc, "profile", path))
                )
                base = {k: p for k, (p, _) in merger.rows.items()}
            base.update(self._override_profiles)
            self._profiles = base
        return {**self._profiles, **self._runtime_profiles}

    def register_profile(self, profile: EfficiencyProfile) -> None:
        """Add or replace an efficiency profile at run time (e.g. one ``mlcost calibrate`` just fitted).

        Registered profiles win over file profiles with the same ``device``. They live in this Catalog
        object only (``clear_cache()`` forgets them)."""
        if not isinstance(profile, EfficiencyProfile):
            raise TypeError(f"expected an EfficiencyProfile, got {type(profile).__name__}")
        self._runtime_profiles[profile.device] = profile

    def profiles(self) -> list[EfficiencyProfile]:
        return list(self._load_profiles().values())

    def efficiency(self, device_id: str) -> EfficiencyProfile:
        """The efficiency profile for a device: exact device id → ``default-<kind>`` → ``default-gpu``.

        The returned profile's ``device`` field says which one was used."""
        profiles = self._load_profiles()
        if device_id in profiles:
            return profiles[device_id]
        kind = self.device(device_id).kind  # raises UnknownNameError for an unknown id
        for key in (f"default-{kind}", "default-gpu"):
            if key in profiles:
                return profiles[key]
        raise CatalogError(
            f"no efficiency profile for {device_id!r} and no 'default-{kind}'/'default-gpu' fallback",
            hint="add a [[profile]] with device = 'default-gpu' to efficiency.toml or an override file",
        )

    # ---- serving engines ------------------------------------------------------------------------------
    def engine_profiles(self) -> list[EngineProfile]:
        """Every ``engines.csv`` row (after overrides), sorted by engine then device."""
        return [self._engines[k] for k in sorted(self._engines)]

    def engine_profile(self, engine: str, device: str | Device) -> EngineProfile:
        """The overheads of serving engine ``engine`` on ``device`` (a device id or a :class:`Device`).

        Fallback order: the exact ``(engine, device id)`` row → the ``(engine, device class)`` row (``gpu``,
        ``tpu``, ``cpu``) → :class:`~mlcost.errors.UnknownNameError` listing the engines known for that class
        (with a suggestion for a misspelt name). The returned row's ``device`` says which one was used."""
        dev = device if isinstance(device, Device) else self.device(device)
        key = engine.strip().lower()
        if (key, dev.id) in self._engines:
            return self._engines[(key, dev.id)]
        if (key, dev.kind) in self._engines:
            return self._engines[(key, dev.kind)]
        known = sorted({e for e, d in self._engines if d in (dev.id, dev.kind)})
        where = "" if known else f"no engine has a row for {dev.kind} devices; "
        raise UnknownNameError(
            f"serving engine for {dev.id}",
            engine,
            known or sorted({e for e, _ in self._engines}),
            extra_hint=f"{where}add a row with an [[engine]] table in a --catalog file (columns of engines.csv)",
        )


def _price_key(row: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return (row["device"], row["provider"], row["region"], row["pricing"], row["instance"])


def _price_order(p: PriceRow) -> tuple[float, str, str, str]:
    return (p.usd_per_device_h, p.provider, p.region, p.instance)


def _check_sections(doc: dict[str, Any], path: Path, *, allowed: Sequence[str]) -> None:
    for key in doc:
        if key not in allowed:
            hint = did_you_mean(key, list(allowed), end=" ", show=lambda c: f"[[{c}]]")
            raise CatalogError(
                f"{path}: unknown section {key!r}",
                hint=hint + f"allowed: {', '.join('[[' + a + ']]' for a in allowed)}",
            )


# ---- the built-in catalog ------------------------------------------------------------------------------

_BUILTIN: list[Catalog] = []


def builtin_catalog() -> Catalog:
    """The package data alone (no user overrides, no calibration, no environment), loaded once.

    Library functions use it when they are given no catalog; the CLI and the top-level API pass
    :func:`mlcost.context.default_catalog` instead."""
    if not _BUILTIN:
        _BUILTIN.append(Catalog.from_paths())
    return _BUILTIN[0]


def get_catalog(extra: Sequence[Path | str] | None = None) -> Catalog:
    """The package catalog plus the override files ``extra`` (nothing else: no environment, no user dirs).

    Kept for callers written before :mod:`mlcost.context`; the application's default catalog (with
    ``$MLCOST_CATALOG`` and the saved calibration) is :func:`mlcost.context.default_catalog`."""
    if not extra:
        return builtin_catalog()
    return Catalog.from_paths(overrides=list(extra))


def clear_cache() -> None:
    """Forget the loaded built-in catalog (and profiles registered on it)."""
    _BUILTIN.clear()


def register_profile(profile: EfficiencyProfile) -> None:
    """Register a fitted profile on the built-in catalog (see :meth:`Catalog.register_profile`)."""
    builtin_catalog().register_profile(profile)


#: A Hugging Face hub id: ``owner/name`` (letters, digits, ``-``, ``_``, ``.``).
_HUB_ID = r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*"


def resolve_model(name_or_path: str | ModelSpec, catalog: CatalogLike | None = None) -> ModelSpec:
    """A preset name (looked up in ``catalog``, the built-in one by default), a path to a ``config.json``
    (or a folder holding one), a Hugging Face hub id (``owner/name``, fetched through ``huggingface_hub``),
    or a spec as is. Configs of ``model_type`` values without a mapping fall back to counting the
    architecture on the meta device (:func:`mlcost.spec.hf_config.model_from_any_config`)."""
    import os.path
    import re

    from mlcost.spec.hf_config import fetch_hub_config, model_from_any_config

    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    text = str(name_or_path)
    if os.path.exists(text) or text.endswith(".json"):
        path = os.path.join(text, "config.json") if os.path.isdir(text) else text
        return model_from_any_config(path)
    if re.fullmatch(_HUB_ID, text):
        return model_from_any_config(fetch_hub_config(text), name=text)
    if os.path.sep in text:
        return model_from_any_config(text)
    return (catalog if catalog is not None else builtin_catalog()).model(text)


def model_family(spec: ModelSpec) -> str:
    """A display family for a preset name: ``llama-3.1-8b`` → ``llama-3.1``, ``gpt2-xl`` → ``gpt2``."""
    name = spec.name
    name = re.sub(r"-(\d+x)?\d+(\.\d+)?[mbt]$", "", name)
    name = re.sub(r"-(small|base|medium|large|xl)$", "", name)
    return name
