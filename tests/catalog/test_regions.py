"""Regions joined to carbon: the shipped country-average rows are exactly what regions.csv and the country
rows give; `mlcost devices` per-region listing and its bad input."""

from __future__ import annotations

import csv
import json

import pytest

from mlcost.catalog import Catalog
from mlcost.catalog.loader import DATA_DIR
from mlcost.catalog.regions import COUNTRY_FILL, country_fill_rows, load_regions, region_prices
from mlcost.cli.main import main


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return Catalog.from_paths()


def test_country_fill_rows_are_regenerated_exactly() -> None:
    with (DATA_DIR / "carbon.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    own = {
        (r["zone"], r["provider"]): (float(r["kg_co2_per_kwh"]), r["source"])
        for r in rows
        if not r["source"].startswith(COUNTRY_FILL)
    }
    filled = {(r["zone"], r["provider"]): r for r in rows if r["source"].startswith(COUNTRY_FILL)}
    expect = {(r["zone"], r["provider"]): r for r in country_fill_rows(own, load_regions())}
    assert set(filled) == set(expect)
    for key, r in expect.items():
        assert float(filled[key]["kg_co2_per_kwh"]) == pytest.approx(r["kg_co2_per_kwh"])
        assert filled[key]["source"] == r["source"]


def test_country_average_is_labelled(cat: Catalog) -> None:
    # OCI Stockholm has no region figure: Sweden's grid average (CodeCarbon/OWID), labelled
    row = cat.carbon("eu-stockholm-1", "oci")
    assert row.kg_co2_per_kwh == pytest.approx(0.0407)
    assert row.source.startswith("country grid average of SWE")
    # a region figure wins over the country: AWS eu-north-1 (Cloud Carbon Footprint, EEA Sweden)
    assert cat.carbon("eu-north-1", "aws").kg_co2_per_kwh == pytest.approx(0.008)


def test_region_prices_cheapest_first_with_commit(cat: Catalog) -> None:
    rows = region_prices(cat, provider="gcp", spot=True)
    assert rows and all(r["provider"] == "gcp" and r["spot_usd_per_device_h"] is not None for r in rows)
    spots = [r["spot_usd_per_device_h"] for r in rows]
    assert spots == sorted(spots)
    assert all(r["snapshot_commit"] == "006059e0f18acb1341e22a27751e9f80df6ba92f" for r in rows)
    assert len({r["region"] for r in rows}) > 10
    capped = region_prices(cat, device="h100-sxm", max_price_usd_per_h=3.0)
    assert capped and all(r["usd_per_device_h"] <= 3.0 for r in capped)


def test_devices_spot_listing_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--provider", "gcp", "--spot", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"price_snapshot_date", "snapshot_commits", "filters", "prices"}
    assert data["snapshot_commits"]["catalogs/v8/gcp/vms.csv"] == "006059e0f18acb1341e22a27751e9f80df6ba92f"
    assert data["prices"][0]["spot_usd_per_device_h"] <= data["prices"][-1]["spot_usd_per_device_h"]


def test_devices_table_names_the_commit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--provider", "gcp", "--spot"]) == 0
    out = capsys.readouterr().out
    assert "006059e0f1" in out and "spot" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--provider", "gcq"], "did you mean 'gcp'"),
        (["--provider", "aws", "--region", "eu-nort-1"], "did you mean 'eu-north-1'"),
        (["--max-price", "-1"], "--max-price"),
        (["--device", "h100-smx"], "did you mean 'h100-sxm'"),
    ],
)
def test_devices_bad_input_exits_2(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
