from pathlib import Path

import numpy as np
import pytest

from mlcost.compress.errors import CompressError
from mlcost.compress.models import load_hf_directory
from mlcost.compress.tasks import EmbeddingTask, read_labelled_file, task_from_file


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", "", "the file is empty"),
        ("bad.jsonl", '{"text": "a", "label": "pos"}\n{not json\n', "line 2 is not valid JSON"),
        (
            "keys.jsonl",
            '{"text": "a", "label": "pos"}\n{"sentence": "b"}\n',
            'line 2 needs "text" and "label"',
        ),
        ("bad.csv", "sentence,label\nhello,pos\n", "must name 'text' and 'label'"),
        ("one.jsonl", '{"text": "a", "label": "pos"}\n', "at least 2 are needed"),
        ("x.txt", "a\tpos\n", "unknown file type"),
    ],
)
def test_bad_evaluation_files_are_one_line_errors_naming_the_flag(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    p = tmp_path / name
    p.write_text(content)
    with pytest.raises(CompressError, match="--data") as exc:
        read_labelled_file(p)
    assert message in str(exc.value)


def test_csv_and_jsonl_read_the_same_examples(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text('text,label\n"good, fun",pos\nbad,neg\n')
    (tmp_path / "a.jsonl").write_text(
        '{"text": "good, fun", "label": "pos"}\n\n{"text": "bad", "label": "neg"}\n'
    )
    assert (
        read_labelled_file(tmp_path / "a.csv")
        == read_labelled_file(tmp_path / "a.jsonl")
        == (["good, fun", "bad"], ["pos", "neg"])
    )


def test_labels_that_are_not_the_models_outputs_are_rejected(tiny_bert_dir: Path, tmp_path: Path) -> None:
    bundle = load_hf_directory(tiny_bert_dir)
    p = tmp_path / "wrong.jsonl"
    p.write_text('{"text": "good", "label": "positive"}\n{"text": "bad", "label": "negative"}\n')
    with pytest.raises(CompressError, match="not among the model's outputs"):
        task_from_file(bundle, p)


def test_classification_metrics_with_intervals(tiny_bert_dir: Path, labelled_jsonl: Path) -> None:
    bundle = load_hf_directory(tiny_bert_dir)
    task = task_from_file(bundle, labelled_jsonl)
    out = task.collect(bundle, lambda b: bundle.forward(bundle.module, b))
    res = task.evaluate(out, out, n_boot=200)
    acc = res["accuracy"]
    assert acc.value.low <= acc.value.value <= acc.value.high
    assert acc.delta.value == acc.delta.low == acc.delta.high == 0.0
    assert 0.0 <= res["macro_f1"].value.value <= 1.0


def test_embedding_fidelity_metrics(minilm_tokenizer: object) -> None:
    import torch
    from transformers import BertModel

    from mlcost.compress.models import from_module
    from tests.compress.conftest import tiny_bert_config

    torch.manual_seed(0)
    bundle = from_module(BertModel(tiny_bert_config()), kind="encoder", tokenizer=minilm_tokenizer)
    texts = [f"sentence number {i} about {'cats' if i % 2 else 'dogs'}" for i in range(30)]
    task = EmbeddingTask("t", bundle, texts, np.arange(30) % 2, k=5)
    ref = task.collect(bundle, lambda b: bundle.forward(bundle.module, b))
    same = task.evaluate(ref, ref, n_boot=100)
    assert same["cosine_to_original"].value.value == pytest.approx(1.0)
    assert same["top5_agreement"].value.value == pytest.approx(1.0)
    noisy = ref + np.random.default_rng(0).normal(0, 0.5, ref.shape)
    worse = task.evaluate(noisy, ref, n_boot=100)
    assert worse["cosine_to_original"].value.value < 0.99
    assert worse["top5_agreement"].delta.value < 0
