"""Import GPU/TPU instance prices from a SkyPilot catalog into mlcost's price table.

Two input layouts are read:

* a checkout of ``skypilot-org/skypilot-catalog`` (or SkyPilot's local catalog cache): ``catalogs/vN/<cloud>/vms.csv``
  (or ``vN/<cloud>/vms.csv``) with SkyPilot's columns ``InstanceType, AcceleratorName, AcceleratorCount, ...,
  Price, SpotPrice, Region[, AvailabilityZone]``; the newest ``vN`` per cloud is used;
* a flat snapshot with one ``<provider>.csv`` per provider and the columns of ``SNAPSHOT_COLUMNS`` (the reference
  snapshot mlcost's package prices were generated from), each row with its own source path and commit.

What the import does (numbers about the world come from the two data files next to the price table):

1. map each row's accelerator to an mlcost device id with ``data/skypilot_map.csv`` (provider, accelerator and
   instance-type globs → device, first match wins). A row mapped to an empty device, or matched by no rule, is
   skipped and counted with the rule's reason; nothing is guessed;
2. GCP lists GPU VMs as a host row (machine type, CPU and RAM only) plus an accelerator-only row per zone: the
   full price is their sum; ``data/skypilot_gcp_hosts.csv`` says which accelerator a machine type carries. TPU
   rows are whole slices; the map's ``chips`` rule turns the slice name into chips;
3. price per device-hour = instance price / devices (on-demand and spot apart); per region, the cheapest zone
   is kept (spot varies per zone), and the row's source names the catalog path, the commit and the zones.

The output has the columns of ``prices.csv`` (see :mod:`mlcost.catalog.loader`).
"""

from __future__ import annotations

import csv
import datetime
import fnmatch
import io
import math
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mlcost.errors import CatalogError

DATA_DIR = Path(__file__).resolve().parent / "data"
MAP_FILE = DATA_DIR / "skypilot_map.csv"
GCP_HOSTS_FILE = DATA_DIR / "skypilot_gcp_hosts.csv"
#: The repository the catalogs come from (named in every row's source).
SKYPILOT_REPO = "skypilot-org/skypilot-catalog"
#: Columns of the flat reference snapshot (one file per provider).
SNAPSHOT_COLUMNS = (
    "provider",
    "instance_type",
    "accelerator",
    "accelerator_count",
    "region",
    "zone",
    "price_usd_per_h",
    "spot_price_usd_per_h",
    "source",
    "source_commit",
    "snapshot_note",
)
#: SkyPilot vms.csv columns the import needs (AvailabilityZone and GpuInfo are optional).
SKYPILOT_COLUMNS = ("InstanceType", "AcceleratorName", "AcceleratorCount", "Price", "SpotPrice", "Region")
OUTPUT_COLUMNS = ("device", "provider", "region", "pricing", "usd_per_device_h", "instance", "source", "date")
#: Slice prices the SkyPilot GCP catalog carries as placeholders, not prices (per the reference README).
PLACEHOLDER_PRICES_USD_PER_H = (700.0,)
_COMMIT_RE = re.compile(r"@([0-9a-f]{7,40}):")


@dataclass(frozen=True)
class SourceRow:
    """One instance offer as the catalog lists it (a zone, or a region where the catalog has no zones)."""

    provider: str
    instance: str
    accelerator: str
    count: float
    region: str
    zone: str
    price_usd_per_h: float | None
    spot_usd_per_h: float | None
    source: str  # "skypilot-org/skypilot-catalog@<commit>:catalogs/v8/aws/vms.csv"
    note: str


@dataclass(frozen=True)
class _Rule:
    provider: str
    accelerator: str
    instance_glob: str
    device: str
    chips: str
    note: str

    def matches(self, row: SourceRow) -> bool:
        return (
            fnmatch.fnmatchcase(row.provider, self.provider)
            and fnmatch.fnmatchcase(row.accelerator, self.accelerator)
            and (not self.instance_glob or fnmatch.fnmatchcase(row.instance, self.instance_glob))
        )


@dataclass
class ImportReport:
    """What an import kept and skipped.

    Attributes:
        rows: output rows (dicts with ``OUTPUT_COLUMNS``).
        read: source rows read.
        skipped: reason → number of source rows skipped for it.
        mapped: (provider, accelerator) → device id of every mapping used.
        commits: source path → commit of the rows read.
    """

    rows: list[dict[str, str]] = field(default_factory=list)
    read: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    mapped: dict[tuple[str, str], str] = field(default_factory=dict)
    commits: dict[str, str] = field(default_factory=dict)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def to_dict(self) -> dict[str, object]:
        return {
            "rows": len(self.rows),
            "read": self.read,
            "skipped": dict(sorted(self.skipped.items(), key=lambda kv: -kv[1])),
            "skipped_total": sum(self.skipped.values()),
            "mapped": {f"{p}/{a}": d for (p, a), d in sorted(self.mapped.items())},
            "sources": dict(sorted(self.commits.items())),
        }


def snapshot_commit(source: str) -> str | None:
    """The commit named in a price row's source (``...@<commit>:path``), or None."""
    m = _COMMIT_RE.search(source)
    return m.group(1) if m else None


# ---- readers ------------------------------------------------------------------------------------------


def _float(text: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _region(text: str) -> str:
    """The region name as written, without the empty leading parts of a marketplace location string
    (Vast writes ", US, NA" when the state is unknown)."""
    return text.strip().lstrip(", ").strip()


def _read_dicts(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            return [h.strip() for h in (reader.fieldnames or [])], rows
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"cannot read {path}: {exc}", hint="pass a readable CSV file") from None


def _git_commit(directory: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.strip()
    return text if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", text) else None


def _skypilot_files(directory: Path) -> dict[str, tuple[Path, str]]:
    """cloud → (newest vms.csv, its path relative to the checkout)."""
    found: dict[str, tuple[int, Path, str]] = {}
    for pattern, prefix in (("catalogs/v*/*/vms.csv", ""), ("v*/*/vms.csv", "catalogs/")):
        for path in directory.glob(pattern):
            version = path.parent.parent.name
            if not re.fullmatch(r"v\d+", version):
                continue
            cloud = path.parent.name
            n = int(version[1:])
            rel = prefix + str(path.relative_to(directory)).replace("\\", "/")
            if cloud not in found or n > found[cloud][0]:
                found[cloud] = (n, path, rel)
    return {cloud: (p, rel) for cloud, (_n, p, rel) in found.items()}


def read_skypilot_checkout(directory: Path, commit: str | None) -> list[SourceRow]:
    """Rows of every cloud's newest ``vms.csv`` under a SkyPilot catalog checkout."""
    files = _skypilot_files(directory)
    commit = commit or _git_commit(directory) or "unknown"
    hosts = _gcp_hosts()
    out: list[SourceRow] = []
    for cloud, (path, rel) in sorted(files.items()):
        header, rows = _read_dicts(path)
        missing = [c for c in SKYPILOT_COLUMNS if c not in header]
        if missing:
            raise CatalogError(
                f"{path}: not a SkyPilot vms.csv (missing columns {', '.join(missing)})",
                hint=f"a SkyPilot catalog file has the columns {', '.join(SKYPILOT_COLUMNS)}, AvailabilityZone",
            )
        source = f"{SKYPILOT_REPO}@{commit}:{rel}"
        for r in rows:
            instance = (r.get("InstanceType") or "").strip()
            acc = (r.get("AcceleratorName") or "").strip()
            count = _float(r.get("AcceleratorCount", "")) or 0.0
            note = ""
            if cloud == "gcp" and instance and not acc:
                for glob, (h_acc, h_count) in hosts.items():
                    if fnmatch.fnmatchcase(instance, glob):
                        acc, count = h_acc, float(h_count)
                        note = "GCP host VM price (vCPU/RAM only); accelerator from the machine type"
                        break
            if not acc:
                continue  # CPU-only instance: not a device offer
            out.append(
                SourceRow(
                    provider=cloud,
                    instance=instance,
                    accelerator=acc,
                    count=count,
                    region=_region(r.get("Region") or ""),
                    zone=(r.get("AvailabilityZone") or "").strip(),
                    price_usd_per_h=_float(r.get("Price", "")),
                    spot_usd_per_h=_float(r.get("SpotPrice", "")),
                    source=source,
                    note=note,
                )
            )
    return out


def read_snapshot(directory: Path) -> list[SourceRow]:
    """Rows of a flat snapshot: ``<provider>.csv`` files with ``SNAPSHOT_COLUMNS``."""
    out: list[SourceRow] = []
    for path in sorted(directory.glob("*.csv")):
        header, rows = _read_dicts(path)
        missing = [c for c in SNAPSHOT_COLUMNS if c not in header]
        if missing:
            raise CatalogError(
                f"{path}: not a price snapshot file (missing columns {', '.join(missing)})",
                hint=f"snapshot files have the columns {', '.join(SNAPSHOT_COLUMNS)}",
            )
        for r in rows:
            src_path = r["source"].strip()
            repo, _, rel = src_path.partition(":")
            commit = r["source_commit"].strip() or "unknown"
            out.append(
                SourceRow(
                    provider=r["provider"].strip(),
                    instance=r["instance_type"].strip(),
                    accelerator=r["accelerator"].strip(),
                    count=_float(r["accelerator_count"]) or 0.0,
                    region=_region(r["region"]),
                    zone=r["zone"].strip(),
                    price_usd_per_h=_float(r["price_usd_per_h"]),
                    spot_usd_per_h=_float(r["spot_price_usd_per_h"]),
                    source=f"{repo or SKYPILOT_REPO}@{commit}:{rel or src_path}",
                    note=r["snapshot_note"].strip(),
                )
            )
    return out


def read_source(directory: Path | str, commit: str | None = None) -> list[SourceRow]:
    """Read a SkyPilot catalog checkout or a flat snapshot directory (module docstring)."""
    d = Path(directory)
    if not d.is_dir():
        raise CatalogError(
            f"{d}: not a directory",
            hint="pass a skypilot-catalog checkout (catalogs/vN/<cloud>/vms.csv) or a snapshot directory",
        )
    if _skypilot_files(d):
        return read_skypilot_checkout(d, commit)
    if any(d.glob("*.csv")):
        return read_snapshot(d)
    raise CatalogError(
        f"{d}: no SkyPilot catalog found (no catalogs/vN/<cloud>/vms.csv and no <provider>.csv snapshot files)",
        hint="clone github.com/skypilot-org/skypilot-catalog and pass its root directory",
    )


# ---- mapping and conversion ---------------------------------------------------------------------------


def _rules() -> list[_Rule]:
    _header, rows = _read_dicts(MAP_FILE)
    return [
        _Rule(
            provider=r["provider"].strip(),
            accelerator=r["accelerator"].strip(),
            instance_glob=r["instance_glob"].strip(),
            device=r["device"].strip(),
            chips=r["chips"].strip(),
            note=r["note"].strip(),
        )
        for r in rows
    ]


def _gcp_hosts() -> dict[str, tuple[str, int]]:
    _header, rows = _read_dicts(GCP_HOSTS_FILE)
    return {r["machine_glob"].strip(): (r["accelerator"].strip(), int(r["count"])) for r in rows}


def _devices_of(rule: _Rule, row: SourceRow) -> float | None:
    """Devices the row's price covers, by the rule's ``chips`` convention."""
    if rule.chips == "count":
        return row.count if row.count > 0 else None
    m = re.search(r"-(\d+)$", row.accelerator)
    if not m:
        return None
    n = float(m.group(1))
    return n / 2 if rule.chips == "name/2" else n


def _gcp_join(rows: list[SourceRow], report: ImportReport) -> list[SourceRow]:
    """GCP GPU VMs: host row + accelerator-only row of the same zone, accelerator and count."""
    accel: dict[tuple[str, str, float], SourceRow] = {}
    for r in rows:
        if r.provider == "gcp" and not r.instance and not r.accelerator.startswith("tpu-"):
            accel[(r.zone or r.region, r.accelerator, r.count)] = r
    out: list[SourceRow] = []
    used: set[tuple[str, str, float]] = set()
    for r in rows:
        if r.provider != "gcp" or r.accelerator.startswith("tpu-"):
            out.append(r)
            continue
        if not r.instance:
            continue  # accelerator-only rows join their host below
        key = (r.zone or r.region, r.accelerator, r.count)
        a = accel.get(key)
        if a is None:
            report.skip("GCP host row without an accelerator price in the same zone")
            continue
        used.add(key)

        def total(x: float | None, y: float | None) -> float | None:
            return None if x is None or y is None or x <= 0 or y <= 0 else x + y

        out.append(
            SourceRow(
                provider="gcp",
                instance=r.instance,
                accelerator=r.accelerator,
                count=r.count,
                region=r.region,
                zone=r.zone,
                price_usd_per_h=total(r.price_usd_per_h, a.price_usd_per_h),
                spot_usd_per_h=total(r.spot_usd_per_h, a.spot_usd_per_h),
                source=r.source,
                note=f"host {r.price_usd_per_h}/h + {a.count:g}x{a.accelerator} {a.price_usd_per_h}/h",
            )
        )
    for key, a in accel.items():
        if key not in used:
            report.skip(
                f"gcp/{a.accelerator}: accelerator-only price without a host VM price in the zone "
                "(a GPU-only price would understate the VM; T4/V100 attach to n1 hosts)"
            )
    return out


def convert(rows: Iterable[SourceRow], *, date: str) -> ImportReport:
    """Source rows → mlcost price rows (module docstring), with what was skipped and why."""
    rules = _rules()
    report = ImportReport()
    rows = list(rows)
    report.read = len(rows)
    for r in rows:
        path = r.source.split(":", 1)[-1]
        report.commits[path] = snapshot_commit(r.source) or "unknown"
    rows = _gcp_join(rows, report)
    # (device, provider, region, pricing, instance) → (usd per device-hour, zone, zones, source, note)
    best: dict[tuple[str, str, str, str, str], tuple[float, str, set[str], str, str, float, float]] = {}
    for r in rows:
        rule = next((x for x in rules if x.matches(r)), None)
        if rule is None:
            report.skip(f"{r.provider}/{r.accelerator}: no mapping rule (no mlcost device)")
            continue
        if not rule.device:
            report.skip(f"{r.provider}/{rule.accelerator}: {rule.note.removeprefix('skipped: ')}")
            continue
        n = _devices_of(rule, r)
        if n is None or n < 1:
            report.skip(f"{r.provider}/{r.accelerator}: less than one device per row")
            continue
        report.mapped[(r.provider, rule.accelerator)] = rule.device
        label = (r.instance or r.accelerator) + f"/{n:g}"
        for pricing, price in (("on-demand", r.price_usd_per_h), ("spot", r.spot_usd_per_h)):
            if price is None or price <= 0:
                if pricing == "on-demand":
                    report.skip(f"{r.provider}/{rule.accelerator}: empty or zero on-demand price")
                continue
            if r.accelerator.startswith("tpu-") and price in PLACEHOLDER_PRICES_USD_PER_H:
                report.skip(f"{r.provider}/{rule.accelerator}: placeholder {pricing} price in the source")
                continue
            per = price / n
            key = (rule.device, r.provider, r.region, pricing, label)
            zone = r.zone or r.region
            old = best.get(key)
            zones = (old[2] if old else set()) | {zone}
            if old is None or per < old[0]:
                best[key] = (per, zone, zones, r.source, r.note, price, n)
            else:
                best[key] = (*old[:2], zones, *old[3:])  # type: ignore[assignment]
    for (device, provider, region, pricing, label), (per, zone, zones, source, note, price, n) in sorted(
        best.items()
    ):
        where = (
            f"cheapest of {len(zones)} zones ({zone})"
            if len(zones) > 1
            else (f"zone {zone}" if zone != region else "region price")
        )
        text = f"{source}; {price:g}/h for {n:g} devices; {where}"
        if note:
            text += f"; {note}"
        report.rows.append(
            {
                "device": device,
                "provider": provider,
                "region": region,
                "pricing": pricing,
                "usd_per_device_h": f"{per:.10g}",
                "instance": label,
                "source": text,
                "date": date,
            }
        )
    return report


def import_skypilot(
    directory: Path | str, *, commit: str | None = None, date: str | None = None
) -> ImportReport:
    """Read ``directory`` (a SkyPilot catalog checkout or a snapshot) and convert it (module docstring)."""
    day = date or datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    try:
        datetime.date.fromisoformat(day)
    except ValueError:
        raise CatalogError(f"--date {day!r} is not an ISO date", hint="write YYYY-MM-DD") from None
    rows = read_source(directory, commit)
    if not rows:
        raise CatalogError(f"{directory}: no GPU or TPU rows found", hint="check the directory")
    return convert(rows, date=day)


def to_csv(report: ImportReport) -> str:
    """The rows as ``prices.csv`` text (header first)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(OUTPUT_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(report.rows)
    return buf.getvalue()
