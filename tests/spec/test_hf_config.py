"""Hugging Face config parsing (spec/hf_config.py) and PreTrainedModel reading (spec/torch_module.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mlcost.catalog import Catalog, resolve_model
from mlcost.errors import SpecError
from mlcost.spec import ModelSpec
from mlcost.spec.hf_config import SUPPORTED_MODEL_TYPES, model_from_hf_config
from mlcost.spec.torch_module import model_from_torch_module

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hf_configs"
SHAPE_FIELDS = [
    f
    for f in ModelSpec.__dataclass_fields__
    if f not in ("name", "source", "train_seq_len", "train_global_batch")
]  # the training recipe is not part of the shape

# fixture file -> preset id it was taken from
PRESET_OF = {
    "gpt2": "gpt2",
    "llama-2-7b": "llama-2-7b",
    "llama-3.1-8b": "llama-3.1-8b",
    "mistral-7b": "mistral-7b",
    "mixtral-8x7b": "mixtral-8x7b",
    "qwen2.5-7b": "qwen2.5-7b",
    "bert-base-uncased": "bert-base",
}


def fixture(name: str) -> Path:
    return FIXTURES / f"{name}.json"


def shape(spec: ModelSpec) -> dict[str, Any]:
    return {k: v for k, v in spec.to_dict().items() if k in SHAPE_FIELDS}


@pytest.mark.parametrize(("config", "preset"), PRESET_OF.items())
def test_real_config_equals_preset_shape(config: str, preset: str) -> None:
    parsed = model_from_hf_config(fixture(config))
    assert shape(parsed) == shape(Catalog.from_paths().model(preset))
    assert parsed.source == str(fixture(config))


def test_gpt2_fields() -> None:
    m = model_from_hf_config(fixture("gpt2"))
    assert m.name == "gpt2"
    assert (m.n_layers, m.d_model, m.n_heads, m.d_ff, m.vocab_size, m.max_seq_len) == (
        12,
        768,
        12,
        3072,
        50257,
        1024,
    )
    assert (m.mlp, m.norm, m.position, m.tied_embeddings) == ("gelu", "layernorm", "learned", True)
    assert m.qkv_bias and m.out_bias and m.mlp_bias and m.dropout
    tiny = model_from_hf_config(fixture("tiny-gpt2"))
    assert tiny.d_ff == 200  # n_inner given
    assert not tiny.dropout  # all dropout probabilities 0


def test_llama_family_fields() -> None:
    m = model_from_hf_config(fixture("llama-3.1-8b"), name="l3")
    assert m.name == "l3"
    assert (m.n_kv_heads, m.head_dim, m.tied_embeddings, m.qkv_bias, m.mlp_bias) == (
        8,
        None,
        False,
        False,
        False,
    )
    assert (m.mlp, m.norm, m.position, m.max_seq_len) == ("swiglu", "rmsnorm", "rope", 131072)
    assert model_from_hf_config(fixture("llama-2-7b")).name == "meta-llama/Llama-2-7b-hf"  # _name_or_path
    tiny = model_from_hf_config(fixture("tiny-llama"))
    assert (tiny.head_dim, tiny.n_kv_heads, tiny.tied_embeddings) == (32, 2, True)  # head_dim != 64/4
    assert tiny.qkv_bias and tiny.out_bias and tiny.mlp_bias
    mistral = model_from_hf_config(fixture("tiny-mistral"))
    assert (mistral.head_dim, mistral.n_kv_heads) == (None, 1)  # head_dim null, MQA


def test_qwen2_biases_on_qkv_only() -> None:
    m = model_from_hf_config(fixture("qwen2.5-7b"))
    assert (m.qkv_bias, m.out_bias, m.mlp_bias) == (True, False, False)
    assert (m.n_kv_heads, m.vocab_size) == (4, 152064)


def test_mixtral_experts() -> None:
    m = model_from_hf_config(fixture("mixtral-8x7b"))
    assert (m.n_experts, m.experts_top_k, m.d_ff, m.ff_expert) == (8, 2, 14336, 14336)


def test_bert_fields() -> None:
    m = model_from_hf_config(fixture("bert-base-uncased"))
    assert m.kind == "encoder" and m.pooler and m.embedding_norm and not m.final_norm
    assert (m.type_vocab_size, m.max_seq_len, m.vocab_size) == (2, 512, 30522)
    assert m.qkv_bias and m.out_bias and m.mlp_bias and m.dropout


def test_gpt_neox_fields() -> None:
    m = model_from_hf_config(fixture("tiny-gpt-neox"))
    assert (m.position, m.norm, m.mlp, m.tied_embeddings, m.qkv_bias) == (
        "rope",
        "layernorm",
        "gelu",
        False,
        True,
    )


def test_inputs_dict_text_folder_and_resolve(tmp_path: Path) -> None:
    data = json.loads(fixture("mistral-7b").read_text())
    from_dict = model_from_hf_config(data, name="m")
    assert shape(from_dict) == shape(model_from_hf_config(json.dumps(data)))
    folder = tmp_path / "Mistral-7B-v0.1"
    folder.mkdir()
    shutil.copy(fixture("mistral-7b"), folder / "config.json")
    by_folder = model_from_hf_config(folder)
    assert by_folder.name == "Mistral-7B-v0.1" and shape(by_folder) == shape(from_dict)
    assert shape(resolve_model(str(folder))) == shape(from_dict)
    assert shape(ModelSpec.from_hf_config(str(folder / "config.json"))) == shape(from_dict)
    assert resolve_model("gpt2").name == "gpt2"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ('{"model_type": "llama", ', ["config.json", "malformed JSON", "line 1"]),
        ("[1, 2]", ["config.json", "expected a JSON object"]),
        ('{"hidden_size": 8}', ["config.json", "missing key 'model_type'", "gpt2", "bert"]),
        (
            '{"model_type": "t5"}',
            ["config.json", "unsupported model_type 't5'", ", ".join(SUPPORTED_MODEL_TYPES)],
        ),
        ('{"model_type": "lama"}', ["did you mean 'llama'"]),
        (
            '{"model_type": "llama", "hidden_size": 64}',
            ["config.json", "missing key 'num_attention_heads'", "llama"],
        ),
        (
            '{"model_type": "gpt2", "n_embd": 64, "n_head": 4, "vocab_size": 10, "n_positions": 8}',
            ["missing key 'n_layer'", "'num_hidden_layers'"],
        ),
        (
            '{"model_type": "bert", "num_hidden_layers": 1, "hidden_size": "64"}',
            ["key 'hidden_size' must be an integer"],
        ),
        (
            '{"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 3, "intermediate_size": 8, "num_hidden_layers": 1, "vocab_size": 10, "max_position_embeddings": 8}',
            ["config.json", "multiple of n_kv_heads"],
        ),
        (
            '{"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 8, "num_hidden_layers": 1, "vocab_size": 10, "max_position_embeddings": 8, "tie_word_embeddings": "yes"}',
            ["'tie_word_embeddings' must be true or false"],
        ),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, expect: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        model_from_hf_config(path)
    for part in expect:
        assert part in str(info.value), f"{part!r} not in {info.value}"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="config file not found"):
        model_from_hf_config(tmp_path / "nope" / "config.json")


# ---- real implementations (transformers builds models from the configs; no download) ------------------

TINY = ["tiny-gpt2", "tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-mixtral", "tiny-bert", "tiny-gpt-neox"]


def _build(name: str) -> Any:
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    data = json.loads(fixture(name).read_text())
    config = transformers.AutoConfig.for_model(**data)
    if data["model_type"] == "bert":
        return transformers.BertForMaskedLM(config)
    return transformers.AutoModelForCausalLM.from_config(config)


@pytest.mark.parametrize("name", TINY)
def test_torch_module_matches_config(name: str) -> None:
    model = _build(name)
    from_module = model_from_torch_module(model, name=name)
    from_file = model_from_hf_config(fixture(name))
    assert shape(from_module) == shape(from_file)
    assert type(model).__name__ in from_module.source


@pytest.mark.parametrize("name", TINY)
def test_param_count_matches_transformers(name: str) -> None:
    try:
        from mlcost.estimate.params import count_params
    except ImportError:
        pytest.skip("mlcost.estimate.params not available yet")
    model = _build(name)
    real = sum(p.numel() for p in model.parameters())
    assert count_params(model_from_hf_config(fixture(name))).total == real


def test_plain_module_is_rejected() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(SpecError, match=r"no Hugging Face \.config") as info:
        model_from_torch_module(torch.nn.Linear(2, 2))
    assert "PreTrainedModel" in str(info.value)


def test_object_without_config_needs_no_torch() -> None:
    with pytest.raises(SpecError, match="cannot read the shape of a object"):
        model_from_torch_module(object())
