"""Parameter counts equal those of transformers' own models, built from each family's config at full size
on the meta device (no memory allocated). Decoders are counted as *ForCausalLM, BERT as BertForMaskedLM
(its masked-LM training objective) and, with objective="none", as BertModel with its pooler."""

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
    "bert-base": ("BertConfig", "BertForMaskedLM", {}),
    # transformers' DeepseekV3Config defaults are the published DeepSeek-V3 shape.
    "deepseek-v3": ("DeepseekV3Config", "DeepseekV3ForCausalLM", {"max_position_embeddings": 163840}),
    "qwen3-30b-a3b": (
        "Qwen3MoeConfig",
        "Qwen3MoeForCausalLM",
        {
            "hidden_size": 2048,
            "intermediate_size": 6144,
            "moe_intermediate_size": 768,
            "num_hidden_layers": 48,
            "num_attention_heads": 32,
            "num_key_value_heads": 4,
            "head_dim": 128,
            "num_experts": 128,
            "num_experts_per_tok": 8,
            "vocab_size": 151936,
            "tie_word_embeddings": False,
        },
    ),
}

# model_type -> config overrides on transformers' default config of that type (full-size shapes). Every
# model_type mlcost parses is built by transformers on the meta device and counted.
MODEL_TYPES = {
    "qwen3": {},
    "qwen3-tied": {"tie_word_embeddings": True},
    "gemma": {},
    "gemma2": {},
    "gemma3_text": {},
    "phi3": {},
    "falcon": {},
    "falcon-new-arch": {
        "new_decoder_architecture": True,
        "num_kv_heads": 8,
        "num_attention_heads": 128,
        "hidden_size": 8192,
        "num_hidden_layers": 60,
    },
    "falcon-bias-sequential": {"bias": True, "parallel_attn": False, "multi_query": False},
    "gpt_neox": {},
    "qwen2_moe": {},
    "qwen3_moe": {},
    "deepseek_v2": {"num_experts_per_tok": 6},
    "deepseek_v2-lite": {"q_lora_rank": None, "num_experts_per_tok": 6, "first_k_dense_replace": 1},
    "deepseek_v3": {},
    "mixtral": {},
    "llama": {},
    "mistral": {},
    "qwen2": {},
    "gpt2": {},
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


def test_bert_bare_encoder_equals_bert_model() -> None:
    """objective="none": the bare encoder with its pooler, as BertModel."""
    spec = get_catalog().model("bert-base").replace(objective="none")
    assert count_params(spec).total == _hf_count("BertConfig", "BertModel", {})


@pytest.mark.parametrize("case", sorted(MODEL_TYPES))
def test_model_type_params_equal_transformers(case: str) -> None:
    model_type = case.split("-")[0]
    config = transformers.AutoConfig.for_model(model_type, **MODEL_TYPES[case])
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    expected = sum(p.numel() for p in model.parameters())
    assert count_params(ModelSpec.from_hf_config(config.to_dict())).total == expected


@pytest.mark.parametrize("path", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_config_json_params_equal_transformers(path: str) -> None:
    """Every shipped config.json fixture: spec parsed by mlcost vs the model transformers builds from it."""
    config = transformers.AutoConfig.from_pretrained(str(FIXTURES / path))
    cls = (
        transformers.AutoModelForMaskedLM
        if config.model_type == "bert"
        else transformers.AutoModelForCausalLM
    )
    with torch.device("meta"):
        model = cls.from_config(config)
    expected = sum(p.numel() for p in model.parameters())
    assert count_params(ModelSpec.from_hf_config(str(FIXTURES / path))).total == expected


def test_fine_grained_moe_active_params() -> None:
    """DeepSeek-V3: 671B total, 37B activated per token (DeepSeek-AI 2024, arXiv 2412.19437, abstract; the
    671B excludes the 14B multi-token-prediction module). Qwen3-30B-A3B: 30.5B total, 3.3B activated
    (Qwen3 model card)."""
    v3 = count_params(get_catalog().model("deepseek-v3"))
    assert v3.total == pytest.approx(671e9, rel=0.001)
    assert v3.active == pytest.approx(37e9, rel=0.02)
    q3 = count_params(get_catalog().model("qwen3-30b-a3b"))
    assert q3.total == pytest.approx(30.5e9, rel=0.002)
    assert q3.active == pytest.approx(3.3e9, rel=0.02)


def test_moe_active_params() -> None:
    """Mixtral 8x7B: 46.7B total, 12.9B active (Mistral AI's announcement: 46.7B / 12.9B)."""
    counts = count_params(get_catalog().model("mixtral-8x7b"))
    assert counts.total == pytest.approx(46.7e9, rel=0.005)
    assert counts.active == pytest.approx(12.9e9, rel=0.01)
