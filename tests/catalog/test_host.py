"""Host matching: the catalog row for a host by vendor, ISA, model and logical CPUs, never ``local``, else a
labelled generic row of the detected ISA. Hosts are /proc/cpuinfo fixtures (tests/fixtures/cpuinfo/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcost.catalog import Catalog, HostCpu, builtin_catalog, isa_level, match_cpu_row, parse_cpuinfo

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cpuinfo"


def host(name: str, **kw: object) -> HostCpu:
    return parse_cpuinfo((FIXTURES / name).read_text(), **kw)  # type: ignore[arg-type]


def test_parse_cpuinfo_reads_vendor_model_flags_and_cpus() -> None:
    xeon = host("xeon_amx.txt")
    assert xeon.vendor == "intel"
    assert xeon.model == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    assert {"avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"} <= xeon.flags
    assert xeon.logical_cpus == 2
    epyc = host("epyc_avx2.txt")
    assert (epyc.vendor, epyc.model, epyc.isa) == ("amd", "AMD EPYC 7B13", "avx2")
    assert "avx512f" not in epyc.flags
    arm = host("arm_neoverse_n1.txt")
    assert (arm.vendor, arm.model, arm.isa, arm.logical_cpus) == ("arm", None, "baseline", 2)
    assert host("xeon_avx2.txt", logical_cpus=3).logical_cpus == 3  # affinity wins over the listing


@pytest.mark.parametrize(
    ("fixture", "isa"),
    [
        ("epyc_avx2.txt", "avx2"),
        ("epyc_zen4_avx512.txt", "avx512_bf16"),
        ("xeon_amx.txt", "amx"),
        ("xeon_avx2.txt", "avx2"),
        ("arm_neoverse_n1.txt", "baseline"),
    ],
)
def test_isa_level(fixture: str, isa: str) -> None:
    assert host(fixture).isa == isa


def test_isa_level_needs_fma_with_avx2_and_both_amx_flags() -> None:
    assert isa_level({"avx2"}) == "baseline"
    assert isa_level({"avx2", "fma", "avx512f", "amx_tile"}) == "avx512"
    assert isa_level({"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}) == "amx"


def test_avx2_epyc_matches_the_epyc_row() -> None:
    m = match_cpu_row(builtin_catalog(), host("epyc_avx2.txt"))
    assert m is not None and not m.generic
    assert m.device.id == "cpu-epyc-2vcpu"


def test_amx_xeon_never_gets_the_epyc_row() -> None:
    """The bug of issue #8: a Xeon host matched the AMD EPYC row (the only CPU row then)."""
    m = match_cpu_row(builtin_catalog(), host("xeon_amx.txt"))
    assert m is not None and m.generic
    assert m.device.id == "cpu-generic-amx"
    assert "generic" in m.label and "not measured" in m.label
    assert "not measured" in m.device.name
    # per-logical-CPU figures scaled to the host's 2 logical CPUs; AMX has bf16 and int8 units
    row = builtin_catalog().device("cpu-generic-amx")
    assert m.device.peak_flops_per_s["bf16"] == pytest.approx(2 * row.peak_flops_per_s["bf16"])
    assert m.device.peak_flops_per_s["int8"] == pytest.approx(2 * row.peak_flops_per_s["int8"])
    assert m.device.peak_flops_per_s["bf16"] > 8 * m.device.peak_flops_per_s["fp32"]


def test_xeon_row_in_an_override_is_matched_by_vendor_and_isa(tmp_path: Path) -> None:
    override = tmp_path / "xeon.toml"
    override.write_text(
        """
[[device]]
id = "cpu-xeon-spr-2vcpu"
name = "Intel Xeon Sapphire Rapids (2 vCPU VM)"
vendor = "intel"
kind = "cpu"
peak_fp32_tflops = 0.2
peak_bf16_tflops = 2.0
memory_gb = 25.77
mem_bw_tb_per_s = 0.03
tdp_w = 12
devices_per_node = 1
intra_node_gb_per_s = 30
inter_node_gb_per_s = 1.25
source = "test row"
date = "2026-12-01"

[[cpu]]
device = "cpu-xeon-spr-2vcpu"
vendor = "intel"
isa = "amx"
model_words = "xeon"
logical_cpus = 2
source = "test row"
date = "2026-12-01"
"""
    )
    cat = Catalog.from_paths(overrides=[override])
    m = match_cpu_row(cat, host("xeon_amx.txt"))
    assert m is not None and not m.generic and m.device.id == "cpu-xeon-spr-2vcpu"
    assert match_cpu_row(cat, host("epyc_avx2.txt")).device.id == "cpu-epyc-2vcpu"  # type: ignore[union-attr]
    # the same Xeon row does not describe a 4-vCPU AVX2 Xeon: other ISA, other size
    other = match_cpu_row(cat, host("xeon_avx2.txt"))
    assert other is not None and other.generic and other.device.id == "cpu-generic-avx2"


def test_avx512_epyc_does_not_get_the_avx2_epyc_row() -> None:
    m = match_cpu_row(builtin_catalog(), host("epyc_zen4_avx512.txt"))
    assert m is not None and m.generic and m.device.id == "cpu-generic-avx512-bf16"


def test_a_bigger_avx2_epyc_does_not_get_the_2_vcpu_row() -> None:
    m = match_cpu_row(builtin_catalog(), host("epyc_avx2.txt", logical_cpus=64))
    assert m is not None and m.generic and m.device.id == "cpu-generic-avx2"
    assert m.device.peak_flops_per_s["fp32"] == pytest.approx(
        64 * builtin_catalog().device("cpu-generic-avx2").peak_flops_per_s["fp32"]
    )


def test_host_memory_replaces_the_per_cpu_assumption() -> None:
    m = match_cpu_row(builtin_catalog(), host("arm_neoverse_n1.txt", memory_bytes=8e9))
    assert m is not None and m.device.id == "cpu-generic-baseline"
    assert m.device.memory_bytes == 8e9


def test_never_matches_a_calibrated_local_row(tmp_path: Path) -> None:
    """A catalog holding the calibration's ``local`` row (even with a [[cpu]] row naming it) keeps
    matching the catalog row: the second calibration must not build on the first."""
    override = tmp_path / "local.toml"
    epyc = builtin_catalog().device("cpu-epyc-2vcpu")
    override.write_text(
        f"""
[[device]]
id = "local"
name = "AMD EPYC (2 vCPU VM) (calibrated)"
vendor = "amd"
kind = "cpu"
peak_fp32_tflops = 0.031
memory_gb = {epyc.memory_bytes / 1e9}
mem_bw_tb_per_s = 0.02
tdp_w = 10
devices_per_node = 1
intra_node_gb_per_s = 20
inter_node_gb_per_s = 1.25
source = "mlcost calibrate"
date = "2026-12-01"

[[cpu]]
device = "local"
vendor = "amd"
isa = "avx2"
model_words = "amd epyc 7b13"
logical_cpus = 2
source = "test"
date = "2026-12-01"
"""
    )
    cat = Catalog.from_paths(overrides=[override])
    m = match_cpu_row(cat, host("epyc_avx2.txt"))
    assert m is not None and m.device.id == "cpu-epyc-2vcpu"


def test_differs_from_names_what_changed() -> None:
    epyc, xeon = host("epyc_avx2.txt"), host("xeon_amx.txt")
    assert epyc.differs_from(epyc.identity()) is None
    why = epyc.differs_from(xeon.identity())
    assert why is not None and "CPU model" in why
    resized = host("epyc_avx2.txt", logical_cpus=4)
    assert "logical CPUs" in (epyc.differs_from(resized.identity()) or "")
    assert epyc.differs_from({}) == "no CPU model recorded"


def test_cpu_row_must_name_a_cpu_device(tmp_path: Path) -> None:
    from mlcost.errors import CatalogError

    bad = tmp_path / "bad.toml"
    bad.write_text('[[cpu]]\ndevice = "h100-sxm"\nisa = "avx2"\nsource = "x"\ndate = "2026-12-01"\n')
    with pytest.raises(CatalogError, match="not a cpu device"):
        Catalog.from_paths(overrides=[bad])
    bad.write_text('[[cpu]]\ndevice = "cpu-epyc-2vcpu"\nisa = "avx3"\nsource = "x"\ndate = "2026-12-01"\n')
    with pytest.raises(CatalogError, match="did you mean"):
        Catalog.from_paths(overrides=[bad])
