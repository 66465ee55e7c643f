"""Catalog loader: validation errors name file/row/column, overrides replace and extend, lookups fall back
as documented, price() picks the cheapest row."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlcost.catalog import (
    Catalog,
    EfficiencyProfile,
    builtin_catalog,
    clear_cache,
    get_catalog,
    register_profile,
)
from mlcost.catalog.loader import DATA_DIR
from mlcost.errors import CatalogError, MlcostError, UnknownNameError

PROFILE = """
[[profile]]
device = "{device}"
matmul_eff_max = 0.7
matmul_half_dim = 128.0
attention_eff = 0.5
mem_bw_eff = 0.8
intra_comm_eff = 0.8
inter_comm_eff = 0.7
dp_overlap = 0.5
power_frac = 0.8
framework_overhead_bytes = 2e9
source = "test"
date = "2026-01-01"
"""


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return Catalog.from_paths()


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A writable copy of the package data to break on purpose."""
    dst = tmp_path / "data"
    shutil.copytree(DATA_DIR, dst)
    return dst


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, count))


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- malformed files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "old", "new", "expect"),
    [
        (
            "devices.csv",
            "peak_fp32_tflops",
            "peak_fp32_tflop",
            ["devices.csv", "row 1", "peak_fp32_tflop", "did you mean"],
        ),
        ("devices.csv", ",source,date\n", ",date\n", ["devices.csv", "row 1", "'source'", "missing column"]),
        (
            "devices.csv",
            "a100-40gb,NVIDIA A100 40GB SXM,nvidia,gpu,19.5",
            "a100-40gb,NVIDIA A100 40GB SXM,nvidia,gpu,fast",
            ["devices.csv", "row 2", "peak_fp32_tflops", "expected a number"],
        ),
        (
            "devices.csv",
            ",312,312,,624,42.950,",
            ",312,312,,624,4000,",
            ["devices.csv", "row 2", "memory_gb", "sane range"],
        ),
        (
            "devices.csv",
            ",1979,1979,85.521,3.35,700",
            ",1979,1979,85.521,3.35,-1",
            ["devices.csv", "row 5", "tdp_w"],
        ),
        (
            "devices.csv",
            "nvidia,gpu,19.5,156,312",
            "nvidia,gpu,19.5,156,19790",
            ["devices.csv", "row 2", "peak_bf16_tflops", "DENSE"],
        ),
        ("devices.csv", "nvidia,gpu,19.5", "nvidia,gpux,19.5", ["devices.csv", "row 2", "'kind'", "gpu"]),
        (
            "devices.csv",
            ",2026-12-01\na100-80gb,",
            ",01/12/2026\na100-80gb,",
            ["devices.csv", "row 2", "'date'", "YYYY-MM-DD"],
        ),
        (
            "prices.csv",
            "h100-sxm,coreweave,*,on-demand,6.16",
            "h100-sxm,coreweave,*,on-demand,616",
            ["prices.csv", "row 2", "usd_per_device_h"],
        ),
        (
            "prices.csv",
            "h100-sxm,coreweave,*,on-demand",
            "h100-sx,coreweave,*,on-demand",
            ["prices.csv", "row 2", "unknown device id 'h100-sx'", "h100-sxm"],
        ),
        (
            "prices.csv",
            "a100-80gb,coreweave,*,on-demand",
            "a100-80gb,coreweave,*,reserved",
            ["prices.csv", "row 3", "'pricing'"],
        ),
        (
            "prices.csv",
            ",2025-09-17\na100-80gb,coreweave",
            ",2025-09-31\na100-80gb,coreweave",
            ["prices.csv", "row 2", "calendar date"],
        ),
        ("carbon.csv", "USA,,0.3695", "USA,,369.5", ["carbon.csv", "row 3", "kg_co2_per_kwh", "gCO2e/kWh"]),
        ("carbon.csv", "world,,0.475", "earth,,0.475", ["carbon.csv", "no 'world' row"]),
        ("providers.csv", "gcp,1.10", "gcp,0.9", ["providers.csv", "row 2", "pue"]),
        ("providers.csv", "default,1.2", "fallback,1.2", ["providers.csv", "no 'default' row"]),
        (
            "models.toml",
            "n_layers = 12\nd_model = 768",
            "n_layer = 12\nd_model = 768",
            ["models.toml", "[[model]] #1", "n_layer", "did you mean 'n_layers'"],
        ),
        (
            "models.toml",
            'name = "gpt2-medium"',
            'name = "gpt2"',
            ["models.toml", "[[model]] #2", "duplicate model key 'gpt2'", "#1"],
        ),
        (
            "models.toml",
            "n_heads = 64\nn_kv_heads = 8",
            "n_heads = 64\nn_kv_heads = 7",
            ["models.toml", "[[model]] #7", "n_kv_heads"],
        ),
        (
            "models.toml",
            'date = "2026-11-22"\n',
            "",
            ["models.toml", "[[model]] #1", "'date'", "missing key"],
        ),
        (
            "models.toml",
            "[[model]]\nname",
            "[[modle]]\nname",
            ["models.toml", "unknown section 'modle'", "[[model]]"],
        ),
        ("models.toml", 'kind = "decoder"', 'kind = "decoder', ["models.toml", "invalid TOML"]),
    ],
)
def test_malformed_file_names_file_row_and_column(
    data_copy: Path, file: str, old: str, new: str, expect: list[str]
) -> None:
    _edit(data_copy / file, old, new)
    with pytest.raises(CatalogError) as info:
        Catalog.from_paths(data_copy)
    text = str(info.value)
    for part in expect:
        assert part in text, f"{part!r} not in {text!r}"


def test_duplicate_key_within_one_file(data_copy: Path) -> None:
    path = data_copy / "devices.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(
        CatalogError, match=r"devices\.csv row \d+: duplicate device key 'a100-40gb' \(first at row 2\)"
    ):
        Catalog.from_paths(data_copy)


def test_wrong_number_of_cells(data_copy: Path) -> None:
    _edit(data_copy / "providers.csv", "gcp,1.10,", "gcp,1.10,extra,")
    with pytest.raises(CatalogError, match=r"providers\.csv row 2: 5 values for 4 columns"):
        Catalog.from_paths(data_copy)


def test_device_without_any_peak(data_copy: Path) -> None:
    _edit(data_copy / "devices.csv", "nvidia,gpu,19.5,156,312,312,,624,42.950", "nvidia,gpu,,,,,,,42.950")
    with pytest.raises(CatalogError, match="no peak given"):
        Catalog.from_paths(data_copy)


# ---- overrides ----------------------------------------------------------------------------------------


OVERRIDE = """
[[device]]
id = "h100-sxm"
name = "H100 (derated)"
vendor = "nvidia"
kind = "gpu"
peak_bf16_tflops = 900
memory_gb = 80
mem_bw_tb_per_s = 3.35
tdp_w = 700
devices_per_node = 8
intra_node_gb_per_s = 450
inter_node_gb_per_s = 50
source = "test override"
date = 2026-01-01

[[device]]
id = "my-gpu"
name = "My GPU"
vendor = "acme"
kind = "gpu"
peak_bf16_tflops = 100
memory_gb = 24
mem_bw_tb_per_s = 1.0
tdp_w = 300
devices_per_node = 4
intra_node_gb_per_s = 32
inter_node_gb_per_s = 12.5
source = "test"
date = "2026-01-01"

[[price]]
device = "my-gpu"
provider = "myco"
region = "home"
pricing = "on-demand"
usd_per_device_h = 0.5
source = "test"
date = "2026-12-01"

[[carbon]]
zone = "home"
provider = "myco"
kg_co2_per_kwh = 0.1
source = "test"
date = "2026-01-01"

[[provider]]
provider = "myco"
pue = 1.05
source = "test"
date = "2026-01-01"

[[model]]
name = "gpt2"
kind = "decoder"
n_layers = 2
d_model = 64
n_heads = 4
d_ff = 256
vocab_size = 100
max_seq_len = 64
source = "test"
date = "2026-01-01"
"""


def test_override_replaces_and_extends(tmp_path: Path) -> None:
    path = _write(tmp_path, "o.toml", OVERRIDE + PROFILE.format(device="my-gpu"))
    cat = Catalog.from_paths(overrides=[path])
    base = Catalog.from_paths()
    h100 = cat.device("h100-sxm")
    assert h100.name == "H100 (derated)"
    assert h100.peak_flops_per_s == {"bf16": 900e12}  # replaced as a whole row
    assert h100.date == "2026-01-01"  # TOML date value accepted
    assert cat.device("my-gpu").memory_bytes == 24e9
    assert len(cat.devices()) == len(base.devices()) + 1
    assert cat.price("my-gpu").usd_per_device_h == 0.5
    assert cat.price("my-gpu").instance == ""
    assert cat.price_snapshot_date == "2026-12-01"
    assert cat.carbon("home", "myco").kg_co2_per_kwh == 0.1
    assert cat.pue("myco").pue == 1.05
    assert cat.model("gpt2").n_layers == 2
    assert cat.efficiency("my-gpu").matmul_eff_max == 0.7
    assert cat.price("h100-sxm", provider="aws") == base.price(
        "h100-sxm", provider="aws"
    )  # package prices kept


def test_later_override_wins(tmp_path: Path) -> None:
    a = _write(
        tmp_path, "a.toml", '[[provider]]\nprovider = "aws"\npue = 1.5\nsource = "a"\ndate = "2026-01-01"\n'
    )
    b = _write(
        tmp_path, "b.toml", '[[provider]]\nprovider = "aws"\npue = 1.3\nsource = "b"\ndate = "2026-01-01"\n'
    )
    assert Catalog.from_paths(overrides=[a, b]).pue("aws").pue == 1.3
    assert Catalog.from_paths(overrides=[b, a]).pue("aws").pue == 1.5


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ('[[devise]]\nid = "x"\n', ["unknown section 'devise'", "[[device]]"]),
        (
            '[[price]]\ndevice = "nope"\nprovider = "x"\nregion = "y"\npricing = "spot"\nusd_per_device_h = 1\nsource = "s"\ndate = "2026-01-01"\n',
            ["o.toml [[price]] #1", "unknown device id 'nope'"],
        ),
        (
            '[[price]]\ndevice = "t4"\nprovider = "x"\nregion = "y"\npricing = "spot"\nusd_per_device_h = 1\ndate = "2026-01-01"\n',
            ["o.toml [[price]] #1", "'source'", "missing column"],
        ),
        (
            '[[carbon]]\nzone = "z"\nkg_co2_per_kwh = 2.0\nsource = "s"\ndate = "2026-01-01"\n',
            ["o.toml [[carbon]] #1", "kg_co2_per_kwh"],
        ),
        (
            '[[provider]]\nprovider = "p"\npue = 1.1\nsource = "s"\ndate = "2026-01-01"\nnote = "x"\n',
            ["o.toml [[provider]] #1", "'note'", "unknown column"],
        ),
        (
            '[[provider]]\nprovider = "p"\npue = true\nsource = "s"\ndate = "2026-01-01"\n',
            ["[[provider]] #1", "'pue'", "expected a number"],
        ),
        ('[[profile]]\ndevice = "t4"\nmatmul_eff_max = 0.5\n', ["[[profile]] #1", "missing key"]),
        (
            '[[profile]]\ndevice = "t4"\nmatmul_efficiency = 0.5\n',
            ["[[profile]] #1", "did you mean 'matmul_eff_max'"],
        ),
        (
            PROFILE.format(device="t4") + PROFILE.format(device="t4"),
            ["[[profile]] #2", "duplicate profile key 't4'"],
        ),
        (PROFILE.format(device="t4").replace("= 0.7", "= 1.7"), ["[[profile]] #1", "matmul_eff_max"]),
    ],
)
def test_malformed_override(tmp_path: Path, text: str, expect: list[str]) -> None:
    path = _write(tmp_path, "o.toml", text)
    with pytest.raises(CatalogError) as info:
        Catalog.from_paths(overrides=[path])
    for part in expect:
        assert part in str(info.value), f"{part!r} not in {info.value}"


def test_missing_override_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not found"):
        Catalog.from_paths(overrides=[tmp_path / "nope.toml"])


def test_get_catalog_reads_extra_but_never_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """catalog/ is pure: $MLCOST_CATALOG is the application edge's business (tests/test_context.py)."""
    a = _write(
        tmp_path, "a.toml", '[[provider]]\nprovider = "aws"\npue = 1.5\nsource = "a"\ndate = "2026-01-01"\n'
    )
    b = _write(
        tmp_path, "b.toml", '[[provider]]\nprovider = "gcp"\npue = 1.4\nsource = "b"\ndate = "2026-01-01"\n'
    )
    clear_cache()
    monkeypatch.setenv("MLCOST_CATALOG", str(a))
    try:
        cat = get_catalog([b])
        assert cat.pue("aws").pue == 1.15 and cat.pue("gcp").pue == 1.4
        assert get_catalog() is builtin_catalog()  # cached
        assert builtin_catalog().pue("aws").pue == 1.15
    finally:
        clear_cache()


# ---- lookups ------------------------------------------------------------------------------------------


def test_device_lookup_and_units(cat: Catalog) -> None:
    h100 = cat.device("h100-sxm")
    assert h100.peak_for("bf16") == 989e12
    assert h100.memory_bytes == pytest.approx(81559 * 2**20, rel=1e-4)  # nvidia-smi total
    assert h100.mem_bw_bytes_per_s == pytest.approx(3.35e12)
    assert h100.inter_node_bw_bytes_per_s == 50e9
    assert cat.device("H100-SXM") is h100  # case-insensitive
    t4 = cat.device("t4")
    assert t4.peak_for("bf16") is None  # Turing has no bf16 units
    assert t4.peak_for("tf32") == 8.1e12  # falls back to fp32
    cpu = cat.device("cpu-epyc-2vcpu")
    assert cpu.kind == "cpu" and cpu.peak_for("bf16") is None
    assert cpu.peak_for("fp32") == pytest.approx(30e9)


def test_unknown_names_suggest_close_matches(cat: Catalog) -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'h100-sxm'"):
        cat.device("h100-smx")
    with pytest.raises(UnknownNameError, match="did you mean 'llama-2-7b'"):
        cat.model("llama2-7b")
    with pytest.raises(UnknownNameError, match="did you mean 'gcp'"):
        cat.price("h100-sxm", provider="gpc")
    with pytest.raises(UnknownNameError, match="did you mean 'us-east-1'"):
        cat.price("h100-sxm", provider="aws", region="us-east1")
    with pytest.raises(UnknownNameError, match="did you mean 'spot'"):
        cat.price("h100-sxm", pricing="spott")


def test_price_picks_cheapest(cat: Catalog) -> None:
    rows = cat.prices(device="h100-sxm", pricing="on-demand")
    best = cat.price("h100-sxm")
    assert best.usd_per_device_h == min(r.usd_per_device_h for r in rows)
    assert rows[0] == best  # prices() is sorted cheapest first
    # reference snapshot lambda.csv: gpu_8x_h100_sxm5 31.92/h for 8 GPUs in every region
    lam = cat.price("h100-sxm", provider="lambda")
    assert (lam.usd_per_device_h, lam.instance) == (3.99, "gpu_8x_h100_sxm5/8")
    # a provider-wide row ('*') matches any region of that provider
    assert cat.price("h100-sxm", provider="coreweave", region="us-east-1").region == "*"


def test_price_missing_lists_where_priced(cat: Catalog) -> None:
    with pytest.raises(MlcostError) as info:
        cat.price("h100-sxm", provider="azure", pricing="spot")
    assert "no spot price for h100-sxm at azure" in str(info.value)
    assert "h100-sxm is priced at: " in str(info.value)
    with pytest.raises(MlcostError, match="no provider lists this device"):
        cat.price("h800")


def test_price_filters_and_listing(cat: Catalog) -> None:
    assert {p.provider for p in cat.prices(device="a100-80gb")} >= {
        "aws",
        "gcp",
        "azure",
        "lambda",
        "runpod",
        "coreweave",
    }
    assert all(p.pricing == "spot" for p in cat.prices(pricing="spot"))
    assert "aws" in cat.providers() and "us-central1" in cat.regions("gcp")
    assert cat.regions("coreweave") == ["*"]
    assert "eu-north-1" in cat.regions("aws") and len(cat.regions("oci")) == 44
    assert cat.price_snapshot_date == max(p.date for p in cat.prices())
    assert cat.price_date_range == (min(p.date for p in cat.prices()), cat.price_snapshot_date)


def test_carbon_fallbacks(cat: Catalog) -> None:
    region = cat.carbon("us-central1", "gcp")
    assert (region.zone, region.provider, region.kg_co2_per_kwh) == ("us-central1", "gcp", 0.4127)
    assert cat.carbon("eu-north-1").provider == "aws"  # a unique region name needs no provider
    provider_row = cat.carbon("mars-1", "aws")
    assert (provider_row.zone, provider_row.provider) == ("*", "aws")
    assert cat.carbon(provider="lambda").zone == "*"
    assert cat.carbon("FRA").kg_co2_per_kwh == 0.056
    assert cat.carbon("fra").zone == "FRA"
    assert cat.carbon("nowhere").zone == "world"
    assert cat.carbon().kg_co2_per_kwh == 0.475
    assert cat.carbon(provider="unknown-cloud").zone == "world"


def test_every_price_region_has_a_carbon_row_or_is_labelled(cat: Catalog) -> None:
    """A priced region has its own carbon row (region figure or its country's average) unless regions.csv
    cannot place it: then it is 'no carbon data' and uses the provider-wide row."""
    from mlcost.catalog.regions import carbon_label

    missing = set()
    for p in cat.prices():
        row, kind = carbon_label(cat, p.provider, p.region)
        assert row.provider == p.provider, (p.provider, p.region)
        if kind == "no carbon data":
            missing.add((p.provider, p.region))
        else:
            assert row.zone == p.region
    # Lambda's non-US region names do not say the country; coreweave has one provider-wide row.
    assert missing == {("coreweave", "*")} | {
        ("lambda", r)
        for r in (
            "asia-northeast-1",
            "asia-northeast-2",
            "asia-south-1",
            "australia-east-1",
            "europe-central-1",
            "europe-south-1",
            "me-west-1",
        )
    }


def test_pue_default(cat: Catalog) -> None:
    assert cat.pue("gcp").pue == pytest.approx(1.10)
    assert cat.pue("runpod").provider == "default"
    assert cat.pue(None).provider == "default"


# ---- efficiency profiles ------------------------------------------------------------------------------


def test_efficiency_fallback_order(tmp_path: Path) -> None:
    eff = _write(
        tmp_path,
        "efficiency.toml",
        PROFILE.format(device="h100-sxm")
        + PROFILE.format(device="default-gpu")
        + PROFILE.format(device="default-cpu"),
    )
    cat = Catalog.from_paths(efficiency=eff)
    assert cat.efficiency("h100-sxm").device == "h100-sxm"
    assert cat.efficiency("a100-80gb").device == "default-gpu"
    assert cat.efficiency("cpu-epyc-2vcpu").device == "default-cpu"
    assert cat.efficiency("tpu-v4").device == "default-gpu"  # no default-tpu here
    with pytest.raises(UnknownNameError):
        cat.efficiency("no-such-device")


def test_register_profile_wins(tmp_path: Path) -> None:
    eff = _write(tmp_path, "efficiency.toml", PROFILE.format(device="default-gpu"))
    cat = Catalog.from_paths(efficiency=eff)
    fitted = cat.efficiency("t4").replace(device="t4", matmul_eff_max=0.42, source="mlcost calibrate")
    cat.register_profile(fitted)
    assert cat.efficiency("t4").matmul_eff_max == 0.42
    assert cat.efficiency("l4").device == "default-gpu"
    local = fitted.replace(device="local")
    cat.register_profile(local)
    assert cat.efficiency("local") is local


def test_register_profile_on_default_catalog() -> None:
    clear_cache()
    try:
        base = get_catalog().efficiency("t4")
        register_profile(base.replace(device="t4", matmul_eff_max=0.33))
        assert get_catalog().efficiency("t4").matmul_eff_max == 0.33
    finally:
        clear_cache()
    assert get_catalog().efficiency("t4") == base  # clear_cache() forgets run-time registrations


def test_missing_efficiency_file_fails_only_on_use(tmp_path: Path) -> None:
    cat = Catalog.from_paths(efficiency=tmp_path / "absent.toml")
    assert cat.device("t4").id == "t4"  # everything else works
    with pytest.raises(CatalogError, match="no efficiency profiles"):
        cat.efficiency("t4")


def test_profile_extra_table(tmp_path: Path) -> None:
    eff = _write(
        tmp_path, "efficiency.toml", PROFILE.format(device="default-gpu") + "extra = { alpha = 2 }\n"
    )
    profile = Catalog.from_paths(efficiency=eff).efficiency("t4")
    assert isinstance(profile, EfficiencyProfile) and profile.extra == {"alpha": 2.0}
