"""compress() end to end on a narrow CNN: every variant measured, priced, judged, recorded in the ledger."""

from pathlib import Path
from typing import Any

import pytest

from mlcost.compress.models import from_module
from mlcost.compress.pipeline import Options, compress
from mlcost.compress.tasks import tensor_classification_task


@pytest.fixture
def setup(small_cnn: Any, digits_small: Any) -> tuple[Any, Any]:
    x_tr, x_te, y_tr, y_te = digits_small
    bundle = from_module(small_cnn, kind="classifier", name="cnn", labels=[str(i) for i in range(10)])
    task = tensor_classification_task("digits", x_te, y_te, n_classes=10, train=(x_tr, y_tr))
    return bundle, task


def _ledger_count(url: str) -> int:
    from mlcost.measure.ledger import Ledger

    with Ledger(url) as led:
        return led.count()


def test_report_has_every_variant_measured_priced_and_judged(setup: Any, tmp_path: Path) -> None:
    bundle, task = setup
    url = f"sqlite:///{tmp_path / 'l.db'}"
    opts = Options(
        methods=["int8-dynamic", "prune-channels:0.5", "unstructured:0.5", "fp16"],
        batch_sizes=[1, 16],
        rounds=3,
        n_boot=100,
        recover_steps=5,
        ledger_url=url,
        price_usd_per_h=0.5,
        save_dir=str(tmp_path / "saved"),
    )
    report = compress(bundle, task, opts)
    names = [r["name"] for r in report["variants"]]
    assert names == ["fp32", "int8-dynamic", "prune-channels-0.5", "unstructured-0.5", "fp16"]
    ok = [r for r in report["variants"] if r["status"] == "ok"]
    for r in ok:
        assert set(r["speeds"]) == {"1", "16"}
        assert r["speedup"]["low"] <= r["speedup"]["value"] <= r["speedup"]["high"]
        q = r["quality"]["accuracy"]
        assert q["low"] <= q["value"] <= q["high"] and q["delta_low"] <= q["delta"] <= q["delta_high"]
        assert r["cost"]["usd_per_million_requests"] == pytest.approx(
            r["cost"]["machine_h_per_million_requests"] * 0.5
        )
        assert r["verdict"]["text"].startswith(r["name"])
    pruned = next(r for r in ok if r["name"] == "prune-channels-0.5")
    assert pruned["size_ratio"] < 0.6 and pruned["training"]["flops"] > 0
    assert "estimated" in pruned["training"]["energy_source"] or pruned["training"]["energy_source"] == "rapl"
    unstructured = next(r for r in ok if r["name"] == "unstructured-0.5")
    assert unstructured["size_ratio"] == pytest.approx(1.0, abs=0.01) and "zero" in unstructured["notes"][0]
    fp16 = report["variants"][-1]
    if fp16["status"] == "not run":
        assert "no fp16 units" in fp16["reason"]
    assert report["choice"]["variant"] in names
    assert set(report["pareto_front"]) <= set(names)
    assert len(report["ledger_run_ids"]) == len(ok) == _ledger_count(url)
    assert sorted(report["saved"]) == sorted(r["name"] for r in ok if r["method"] != "original")


def test_an_error_midway_writes_nothing_to_the_ledger(setup: Any, tmp_path: Path) -> None:
    from mlcost.compress.errors import CompressError

    bundle, task = setup
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with pytest.raises(CompressError, match="--max-quality-drop"):
        compress(
            bundle, task, Options(methods=["int8-dynamic"], rounds=3, max_quality_drop="lots", ledger_url=url)
        )
    wrong = tensor_classification_task("wrong", task_inputs(setup), [0, 1, 2], n_classes=3)
    with pytest.raises(CompressError, match="outputs 10 classes"):
        compress(bundle, wrong, Options(methods=["int8-dynamic"], rounds=3, ledger_url=url))
    assert _ledger_count(url) == 0


def task_inputs(setup: Any) -> Any:
    return setup[1].eval_batches()[0]["pixels"][:3].numpy()
