"""engines.csv: the loader, the fallback order and the error for an unknown engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcost.catalog import Catalog, EngineProfile, builtin_catalog
from mlcost.catalog.schema import ENGINES
from mlcost.errors import CatalogError, UnknownNameError

CAT = builtin_catalog()


def test_every_row_has_provenance_and_sane_values() -> None:
    rows = CAT.engine_profiles()
    assert {r.engine for r in rows} == set(ENGINES)
    for r in rows:
        assert r.source and r.date
        assert r.fitted or r.source.startswith("not fitted")
        assert 0 < r.decode_mem_bw_eff <= 1 and r.iteration_overhead_s > 0


def test_fallback_exact_then_device_class() -> None:
    assert CAT.engine_profile("vllm", "h100-sxm").device == "gpu"
    assert CAT.engine_profile("hf", "cpu-epyc-2vcpu").device == "cpu"
    assert CAT.engine_profile("VLLM", CAT.device("a100-80gb")).engine == "vllm"


def test_exact_row_wins(tmp_path: Path) -> None:
    over = tmp_path / "eng.toml"
    over.write_text(
        '[[engine]]\nengine = "vllm"\ndevice = "h100-sxm"\niteration_overhead_s = 0.0009\n'
        "per_seq_overhead_s = 0.0\ncollective_latency_s = 1e-5\nmatmul_eff_scale = 1.0\n"
        'fp8_matmul_eff_scale = 0.8\ndecode_mem_bw_eff = 0.85\nsource = "test"\ndate = "2026-12-01"\n'
        'fitted_on = "a test"\n'
    )
    cat = Catalog.from_paths(overrides=[over])
    row = cat.engine_profile("vllm", "h100-sxm")
    assert isinstance(row, EngineProfile) and row.device == "h100-sxm" and row.fitted
    assert cat.engine_profile("vllm", "a100-80gb").device == "gpu"


def test_unknown_engine_suggests_and_lists() -> None:
    with pytest.raises(UnknownNameError) as err:
        CAT.engine_profile("vlm", "h100-sxm")
    assert "vllm" in err.value.hint  # type: ignore[operator]
    with pytest.raises(UnknownNameError, match="serving engine"):
        CAT.engine_profile("trtllm", "cpu-epyc-2vcpu")


def test_bad_row_is_reported_with_file_and_column(tmp_path: Path) -> None:
    over = tmp_path / "bad.toml"
    over.write_text(
        '[[engine]]\nengine = "vllm"\ndevice = "h100-sxm"\niteration_overhead_s = -1\n'
        "per_seq_overhead_s = 0.0\ncollective_latency_s = 1e-5\nmatmul_eff_scale = 1.0\n"
        'fp8_matmul_eff_scale = 0.8\ndecode_mem_bw_eff = 0.85\nsource = "test"\ndate = "2026-12-01"\n'
    )
    with pytest.raises(CatalogError, match="iteration_overhead_s"):
        Catalog.from_paths(overrides=[over])
    over.write_text(over.read_text().replace("= -1", "= 0.001").replace('"h100-sxm"', '"h100-sx"'))
    with pytest.raises(CatalogError, match="neither a device id nor a device class"):
        Catalog.from_paths(overrides=[over])
