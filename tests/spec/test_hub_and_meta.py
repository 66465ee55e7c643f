"""Hub ids (through huggingface_hub) and the meta-device fallback for model types without a mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcost.catalog import resolve_model
from mlcost.cli.main import main
from mlcost.errors import SpecError


def test_hub_id_offline_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["estimate", "train", "--model", "some-org/some-model-that-is-not-cached"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "some-org/some-model-that-is-not-cached" in err and "offline" in err


def test_hub_id_offline_raises_spec_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SpecError, match=r"cannot fetch config\.json"):
        resolve_model("some-org/another-missing-model")


def test_preset_names_are_not_hub_ids() -> None:
    assert resolve_model("llama-3.1-8b").name == "llama-3.1-8b"


def _write(tmp_path: Path, model_type: str, **kwargs: object) -> Path:
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    data = transformers.AutoConfig.for_model(model_type, **kwargs).to_dict()
    path = tmp_path / f"{model_type}.json"
    path.write_text(json.dumps(data))
    return path


def test_unmapped_type_reports_meta_counts(tmp_path: Path) -> None:
    """starcoder2 is not mapped and not Llama-shaped (LayerNorm, GELU MLP, biases): the fallback reports
    transformers' own parameter and FLOP counts (meta device) in a one-line error instead of guessing."""
    from mlcost.spec.meta_count import count_on_meta

    path = _write(
        tmp_path,
        "starcoder2",
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=500,
    )
    counted = count_on_meta(json.loads(path.read_text()))
    with pytest.raises(SpecError, match=f"{counted.params:,} parameters"):
        resolve_model(str(path))
    assert counted.train_flops_per_token is not None and counted.train_flops_per_token > 0


def test_meta_flops_equal_flopcounter_on_real_tensors(tmp_path: Path) -> None:
    """FlopCounterMode on meta tensors counts what it counts on real ones, per token, within 2% of ours."""
    from mlcost.estimate import train_step_flops
    from mlcost.spec import ModelSpec
    from mlcost.spec.meta_count import count_on_meta

    path = _write(
        tmp_path,
        "llama",
        hidden_size=128,
        intermediate_size=352,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=1000,
    )
    data = json.loads(path.read_text())
    counted = count_on_meta(data, seq_len=64)
    spec = ModelSpec.from_hf_config(data)
    ours = float(train_step_flops(spec, 64, 64, 0).model) / 64
    assert counted.train_flops_per_token == pytest.approx(ours, rel=0.02)


def test_unmapped_type_with_llama_shape_falls_back(tmp_path: Path) -> None:
    """A model_type transformers knows but mlcost does not map, whose modules are Llama-shaped (Granite:
    Llama blocks with scaling multipliers, which add no parameters), is read as a Llama-style spec after
    the meta-device count confirms the parameters."""
    path = _write(
        tmp_path,
        "granite",
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=1000,
    )
    spec = resolve_model(str(path))
    assert "verified equal to transformers' GraniteForCausalLM" in spec.source
