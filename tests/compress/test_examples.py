"""The built-in examples load and score (the MiniLM run is slow: marked so)."""

from typing import Any

import pytest

from mlcost.compress.models import load_example
from mlcost.compress.tasks import example_task
from mlcost.errors import UnknownNameError


def test_unknown_example_suggests_the_close_name() -> None:
    with pytest.raises(UnknownNameError, match="minilm"):
        load_example("minilmm")


def test_digits_cnn_trains_deterministically_and_is_cached(monkeypatch: Any) -> None:
    from mlcost.compress import examples

    monkeypatch.setitem(examples.DIGITS_CNN, "epochs", 2)
    monkeypatch.setitem(examples.DIGITS_CNN, "c1", 8)
    monkeypatch.setitem(examples.DIGITS_CNN, "c2", 16)
    first = load_example("digits-cnn")
    assert list(examples.cache_dir().glob("digits-cnn-*.pt"))
    again = load_example("digits-cnn")
    for a, b in zip(first.module.state_dict().values(), again.module.state_dict().values(), strict=True):
        assert (a == b).all()
    task = example_task(first, "digits-cnn")
    out = task.collect(first, lambda b: first.forward(first.module, b))
    assert task.evaluate(out, out, n_boot=50)["accuracy"].value.value > 0.5


@pytest.mark.slow
def test_minilm_example_end_to_end() -> None:
    from mlcost.compress.pipeline import Options, compress

    bundle = load_example("minilm")
    task = example_task(bundle, "minilm")
    report = compress(bundle, task, Options(methods=["int8-dynamic"], rounds=3, n_boot=200, ledger=False))
    base, int8 = report["variants"]
    assert base["quality"]["downstream_accuracy"]["value"] > 0.6
    assert 0.8 < int8["quality"]["cosine_to_original"]["value"] <= 1.0
    assert int8["size_ratio"] < 0.7  # the 11.7M embedding parameters stay fp32


def test_tiny_gpt_perplexity_and_a_distilled_student(monkeypatch: Any, tmp_path: Any) -> None:
    """The language-model path on a 2-layer, 32-wide GPT trained for 3 steps (the real recipe is longer)."""
    from mlcost.compress import examples, recipes
    from mlcost.compress.hardware import detect_isa

    for key, value in {"n_layer": 2, "n_embd": 32, "steps": 3, "seq_len": 32, "batch": 4}.items():
        monkeypatch.setitem(examples.TINY_GPT, key, value)
    bundle = load_example("tiny-gpt")
    task = example_task(bundle, "tiny-gpt")
    ref = task.collect(bundle, lambda b: bundle.forward(bundle.module, b))
    ppl = task.evaluate(ref, ref, n_boot=50)["perplexity"]
    assert 1.0 < ppl.value.value < 200 and ppl.value.low <= ppl.value.value <= ppl.value.high
    ctx = recipes.BuildContext(isa=detect_isa(), task=task, distill_steps=2, train_batch=4, workdir=tmp_path)
    student = recipes.build(bundle, "distill:1", ctx)
    assert student.status == "ok", student.reason
    assert len(student.module.transformer.h) == 1 and student.recipe["layers"] == [1]
    assert student.training is not None and student.training.flops > 0 and student.training.time_s > 0
    out = task.collect(bundle, student.predict)  # type: ignore[arg-type]
    assert task.evaluate(out, ref, n_boot=50)["perplexity"].value.value > 1.0
