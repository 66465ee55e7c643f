"""`mlcost devices` / `mlcost models`: JSON contract, rendered tables, overrides and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcost.catalog import Catalog, clear_cache
from mlcost.cli.catalog import gather_devices, gather_models
from mlcost.cli.main import main
from mlcost.report.catalog import devices_view, models_view
from mlcost.report.console import render_text


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _fresh_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLCOST_CATALOG", raising=False)
    clear_cache()


def test_devices_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devices", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"price_snapshot_date", "oldest_price_date", "devices"}
    assert data["oldest_price_date"] <= data["price_snapshot_date"]
    h100 = next(d for d in data["devices"] if d["id"] == "h100-sxm")
    assert h100["peak_tflops"]["bf16"] == pytest.approx(989)
    assert h100["memory_gb"] == pytest.approx(81559 * 2**20 / 1e9, rel=1e-4)  # nvidia-smi total
    cheapest = h100["cheapest_on_demand"]
    assert cheapest["usd_per_device_h"] == min(
        p.usd_per_device_h for p in Catalog.from_paths().prices(device="h100-sxm", pricing="on-demand")
    )
    assert next(d for d in data["devices"] if d["id"] == "h800")["cheapest_on_demand"] is None


def test_models_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    data = json.loads(out)
    rows = {r["id"]: r for r in data["models"]}
    assert rows["llama-3.1-8b"]["family"] == "llama-3.1"
    assert rows["llama-3.1-8b"]["n_kv_heads"] == 8
    assert rows["megatron-gpt-1t"]["family"] == "megatron-gpt"
    assert rows["mixtral-8x7b"]["n_experts"] == 8
    if rows["gpt2"]["params"] is not None:  # filled once mlcost.estimate.params exists
        assert rows["gpt2"]["params"] == 124_439_808


def test_rendered_tables() -> None:
    cat = Catalog.from_paths()
    models = {**gather_models(cat), "price_snapshot_date": cat.price_snapshot_date}
    text = render_text(devices_view(gather_devices(cat)), width=200) + render_text(
        models_view(models), width=200
    )
    assert "h100-sxm" in text and "cpu-epyc-2vcpu" in text and "llama-3.1-405b" in text
    assert f"price snapshot date: {cat.price_snapshot_date}" in text
    assert f"catalog snapshot date: {cat.price_snapshot_date}" in text


def test_catalog_option_and_env(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    override = tmp_path / "o.toml"
    override.write_text(
        '[[model]]\nname = "toy"\nkind = "decoder"\nn_layers = 2\nd_model = 64\nn_heads = 4\nd_ff = 256\n'
        'vocab_size = 100\nmax_seq_len = 64\nsource = "test"\ndate = "2026-01-01"\n'
    )
    code, out, _ = run(capsys, "models", "--json", "--catalog", str(override))
    assert code == 0 and "toy" in {r["id"] for r in json.loads(out)["models"]}
    clear_cache()
    monkeypatch.setenv("MLCOST_CATALOG", str(override))
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0 and "toy" in {r["id"] for r in json.loads(out)["models"]}


def test_broken_override_is_a_one_line_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[provider]]\nprovider = "x"\npue = 9\nsource = "s"\ndate = "2026-01-01"\n')
    code, _out, err = run(capsys, "devices", "--catalog", str(bad))
    assert code == 2
    assert err.startswith("mlcost: error: ") and "bad.toml [[provider]] #1" in err and "'pue'" in err
    assert "Traceback" not in err
