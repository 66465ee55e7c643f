"""Parameter counts equal those of transformers' own models, built from each family's config at full size
on the meta device (no memory allocated). Decoders are counted as *ForCausalLM, BERT as BertModel with
its pooler."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcost.catalog import get_catalog
from mlcost.estimate import count_params
from mlcost.spec import ModelSpec

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hf_configs"

# preset name -> (transformers config class, model class, config kwargs reproducing the public config)
CASES = {
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", {}),
    "gpt2-xl": ("GPT2Config", "GPT2LMHeadModel", {"n_embd": 1600, "n_layer": 48, "n_head": 25}),
    "llama-2-7b": (
        "LlamaConfig",
        "LlamaForCausalLM",
        {
            "hidden_size": 4096,
            "intermediate_size": 11008,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "vocab_size": 32000,
            "max_position_embeddings": 4096,
        },
    ),
    "llama-3.1-8b": (
        "LlamaConfig",
        "LlamaForCausalLM",
        {
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "vocab_size": 128256,
            "max_position_embeddings": 131072,
        },
    ),
    "mistral-7b": (
        "MistralConfig",
        "MistralForCausalLM",
        {
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "vocab_size": 32000,
        },
    ),
    "qwen2.5-7b": (
        "Qwen2Config",
        "Qwen2ForCausalLM",
        {
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "vocab_size": 152064,
            "tie_word_embeddings": False,
        },
    ),
    "mixtral-8x7b": (
        "MixtralConfig",
        "MixtralForCausalLM",
        {
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "vocab_size": 32000,
            "num_local_experts": 8,
            "num_experts_per_tok": 2,
        },
    ),
    "bert-base": ("BertConfig", "BertModel", {}),
}


def _hf_count(config_cls: str, model_cls: str, kwargs: dict) -> int:
    config = getattr(transformers, config_cls)(**kwargs)
    with torch.device("meta"):
        model = getattr(transformers, model_cls)(config)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("preset", sorted(CASES))
def test_preset_params_equal_transformers(preset: str) -> None:
    config_cls, model_cls, kwargs = CASES[preset]
    assert count_params(get_catalog().model(preset)).total == _hf_count(config_cls, model_cls, kwargs)


@pytest.mark.parametrize("path", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_config_json_params_equal_transformers(path: str) -> None:
    """Every shipped config.json fixture: spec parsed by mlcost vs the model transformers builds from it."""
    config = transformers.AutoConfig.from_pretrained(str(FIXTURES / path))
    cls = transformers.AutoModel if config.model_type == "bert" else transformers.AutoModelForCausalLM
    with torch.device("meta"):
        model = cls.from_config(config)
    expected = sum(p.numel() for p in model.parameters())
    assert count_params(ModelSpec.from_hf_config(str(FIXTURES / path))).total == expected


def test_moe_active_params() -> None:
    """Mixtral 8x7B: 46.7B total, 12.9B active (Mistral AI's announcement: 46.7B / 12.9B)."""
    counts = count_params(get_catalog().model("mixtral-8x7b"))
    assert counts.total == pytest.approx(46.7e9, rel=0.005)
    assert counts.active == pytest.approx(12.9e9, rel=0.01)
