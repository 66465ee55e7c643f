"""mlcost catalog import-skypilot: a small catalog in SkyPilot's format (tests/fixtures/skypilot), the
shipped price file regenerates from the reference snapshot, bad directories exit 2."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from mlcost.catalog import Catalog
from mlcost.catalog.loader import DATA_DIR
from mlcost.catalog.skypilot import import_skypilot, to_csv
from mlcost.cli.main import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "skypilot"
# The reference snapshot sits next to the checkout (../shared/reference/prices) on the project's machines;
# the regeneration check skips where it is absent.
REFERENCE = next(
    (
        p / "shared" / "reference" / "prices"
        for p in Path(__file__).resolve().parents[2:5]
        if (p / "shared" / "reference" / "prices").is_dir()
    ),
    Path("/nonexistent"),
)


def _rows(report) -> dict[tuple[str, str, str, str, str], float]:  # type: ignore[no-untyped-def]
    return {
        (r["device"], r["provider"], r["region"], r["pricing"], r["instance"]): float(r["usd_per_device_h"])
        for r in report.rows
    }


def test_fixture_import_per_device_hour() -> None:
    rep = import_skypilot(FIXTURE, commit="a" * 40, date="2026-12-01")
    rows = _rows(rep)
    # newest catalog version only (v8, not v7's 1000/h); cheapest zone per region for spot
    assert rows[("h100-sxm", "aws", "us-east-1", "on-demand", "p5.48xlarge/8")] == pytest.approx(98.32 / 8)
    assert rows[("h100-sxm", "aws", "us-east-1", "spot", "p5.48xlarge/8")] == pytest.approx(24.0 / 8)
    assert rows[("h100-sxm", "aws", "eu-north-1", "on-demand", "p5.48xlarge/8")] == pytest.approx(58.8928 / 8)
    # GCP: host + accelerator rows of the same zone
    assert rows[("h100-sxm", "gcp", "us-central1", "on-demand", "a3-highgpu-8g/8")] == pytest.approx(
        (9.46006 + 33.60609) / 8
    )
    assert rows[("h100-sxm", "gcp", "us-central1", "spot", "a3-highgpu-8g/8")] == pytest.approx(
        (2.88933 + 23.9408) / 8
    )
    # TPU v5p-8 counts TensorCores: 4 chips
    assert rows[("tpu-v5p", "gcp", "us-east5", "on-demand", "tpu-v5p-8/4")] == pytest.approx(16.8 / 4)
    assert len(rows) == 8
    skipped = rep.skipped
    assert any("B200" in k and "no mapping rule" in k for k in skipped)  # unmapped: skipped, counted
    assert any("fractional" in k for k in skipped)
    assert any("gcp/T4" in k and "host" in k for k in skipped)
    assert any("placeholder" in k for k in skipped)
    assert sum(skipped.values()) == 5
    src = next(r["source"] for r in rep.rows if r["provider"] == "aws")
    assert src.startswith(f"skypilot-org/skypilot-catalog@{'a' * 40}:catalogs/v8/aws/vms.csv")
    assert rep.mapped[("aws", "H100")] == "h100-sxm"


def test_import_output_loads_as_a_price_table(tmp_path: Path) -> None:
    rep = import_skypilot(FIXTURE, commit="b" * 40, date="2026-12-01")
    data = tmp_path / "data"
    data.mkdir()
    for name in ("devices.csv", "carbon.csv", "providers.csv", "models.toml"):
        (data / name).write_text((DATA_DIR / name).read_text())
    (data / "prices.csv").write_text(to_csv(rep))
    cat = Catalog.from_paths(data)
    assert cat.price("h100-sxm", "aws", "eu-north-1").usd_per_device_h == pytest.approx(7.3616)


def test_cli_writes_file_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "prices.csv"
    code = main(
        ["catalog", "import-skypilot", str(FIXTURE), "--out", str(out), "--date", "2026-12-01", "--json"]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 8 and summary["skipped_total"] == 5
    assert len(list(csv.DictReader(io.StringIO(out.read_text())))) == 8


@pytest.mark.parametrize("kind", ["missing", "not-a-catalog", "bad-columns"])
def test_wrong_directory_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    target = tmp_path / "dir"
    if kind != "missing":
        target.mkdir()
    if kind == "not-a-catalog":
        (target / "notes.txt").write_text("hello")
    if kind == "bad-columns":
        (target / "catalogs" / "v8" / "aws").mkdir(parents=True)
        (target / "catalogs" / "v8" / "aws" / "vms.csv").write_text("Name,Cost\nx,1\n")
    out = tmp_path / "out.csv"
    code = main(["catalog", "import-skypilot", str(target), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("mlcost: error:")
    assert not out.exists()  # nothing half-written


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="reference snapshot not present")
def test_shipped_file_is_the_import_of_the_reference_snapshot() -> None:
    rep = import_skypilot(REFERENCE, date="2026-12-01")
    assert to_csv(rep) == (DATA_DIR / "prices_skypilot.csv").read_text()
