"""Saved variants load back into the same model: identical outputs after a round trip."""

from pathlib import Path
from typing import Any

import pytest
import torch

from mlcost.compress import recipes
from mlcost.compress.hardware import detect_isa
from mlcost.compress.models import from_module
from mlcost.compress.tasks import tensor_classification_task


@pytest.fixture
def cnn_bundle(small_cnn: Any) -> Any:
    return from_module(small_cnn, kind="classifier", name="cnn", labels=[str(i) for i in range(10)])


@pytest.mark.parametrize(
    "method",
    ["int8-dynamic", "int8-dynamic-per-tensor", "prune-channels:0.5", "unstructured:0.7", "onnx-int8"],
)
def test_cnn_variants_round_trip(cnn_bundle: Any, digits_small: Any, tmp_path: Path, method: str) -> None:
    _x_tr, x_te, _y_tr, y_te = digits_small
    task = tensor_classification_task("digits", x_te, y_te, n_classes=10)
    ctx = recipes.BuildContext(isa=detect_isa(), task=task, workdir=tmp_path / "work")
    variant = recipes.build(cnn_bundle, method, ctx)
    assert variant.status == "ok", variant.reason
    saved = recipes.save_variant(variant, tmp_path / "saved")
    loaded = recipes.load_variant(cnn_bundle, saved)
    batch = task.bench_batch(16)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.predict(batch), variant.predict(batch))  # type: ignore[misc]
    assert loaded.recipe == variant.recipe


def test_pruned_and_quantized_bert_round_trip(minilm_tokenizer: Any, tmp_path: Path) -> None:
    import numpy as np
    from transformers import BertModel

    from mlcost.compress.tasks import EmbeddingTask
    from tests.compress.conftest import tiny_bert_config

    torch.manual_seed(0)
    bundle = from_module(
        BertModel(tiny_bert_config()), kind="encoder", tokenizer=minilm_tokenizer, name="tiny"
    )
    task = EmbeddingTask("t", bundle, [f"text {i}" for i in range(8)], np.arange(8) % 2, k=3)
    ctx = recipes.BuildContext(isa=detect_isa(), task=task, workdir=tmp_path / "work")
    batch = task.bench_batch(4)
    for method in ("prune-heads:0.5", "prune-ffn:0.5", "int8-dynamic"):
        v = recipes.build(bundle, method, ctx)
        assert v.status == "ok", v.reason
        loaded = recipes.load_variant(bundle, recipes.save_variant(v, tmp_path / v.name))
        with torch.inference_mode():
            torch.testing.assert_close(loaded.predict(batch), v.predict(batch))  # type: ignore[misc]


def test_a_failed_save_leaves_nothing_behind(cnn_bundle: Any, tmp_path: Path) -> None:
    v = recipes.original(cnn_bundle)
    v.module = None  # an ONNX-like variant whose engine file is missing
    with pytest.raises(KeyError):
        recipes.save_variant(v, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == []
