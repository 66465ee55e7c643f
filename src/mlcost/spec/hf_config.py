"""Build a :class:`~mlcost.spec.model.ModelSpec` from a Hugging Face ``config.json``.

Supported ``model_type`` values: see :data:`SUPPORTED_MODEL_TYPES` (gpt2, llama, mistral, qwen2, qwen3,
gemma, gemma2, gemma3_text, phi3, falcon, mixtral, qwen2_moe, qwen3_moe, deepseek_v2, deepseek_v3, bert,
gpt_neox). The mapping follows the Hugging Face implementations (``*ForCausalLM`` for decoders,
``BertForMaskedLM`` for BERT), so parameter counts of the resulting spec match a model built from the same
config:

* GPT-2: ``n_inner`` null means ``4 · n_embd``; biases everywhere; tied LM head unless
  ``tie_word_embeddings`` is false; learned positions of ``n_positions``.
* Llama / Mistral: grouped-query attention from ``num_key_value_heads``; ``head_dim`` when given and different
  from ``hidden_size / num_attention_heads``; ``attention_bias`` sets q/k/v and o biases; ``mlp_bias``.
* Qwen2: biases on q/k/v only (not on o), as in ``Qwen2Attention``.
* Mixtral: ``num_local_experts`` routed experts, ``num_experts_per_tok`` active, each of ``intermediate_size``.
* BERT: encoder with token-type embeddings, embedding LayerNorm, pooler, no final norm.
* GPT-NeoX: rotary positions, LayerNorm, GELU MLP, biases everywhere, untied head by default.
* Qwen3: Llama plus an RMSNorm on every query and key head (``q_norm``/``k_norm``).
* Gemma: Llama shape with gated GELU (same three matrices as SwiGLU), tied embeddings; Gemma 2 adds
  norms after attention and around the MLP (four per block); Gemma 3 (text) also q/k norms.
* Phi-3: fused qkv and gate/up projections (the same weights as separate ones), untied head.
* Falcon: fused QKV with multi-query (``multi_query``) or grouped KV heads (``new_decoder_architecture``),
  LayerNorm with bias, GELU MLP of ``ffn_hidden_size`` (4h), biases only with ``bias``; one norm per
  parallel block, two with the new architecture (``ln_attn``/``ln_mlp``); tied embeddings.
* Qwen2-MoE / Qwen3-MoE: ``num_experts`` of ``moe_intermediate_size``; Qwen2-MoE adds one shared expert of
  ``shared_expert_intermediate_size`` with a sigmoid gate; Qwen3-MoE has q/k norms.
* DeepSeek-V2/V3: MLA attention (``q_lora_rank``, ``kv_lora_rank``, ``qk_nope_head_dim`` +
  ``qk_rope_head_dim``, ``v_head_dim``), ``n_routed_experts`` fine-grained experts of
  ``moe_intermediate_size`` plus ``n_shared_experts`` shared ones, dense first ``first_k_dense_replace``
  blocks. DeepSeek-V3's multi-token-prediction module is not built by transformers and not counted.

No torch or transformers import: the config is read as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlcost.errors import SpecError
from mlcost.spec.model import ModelSpec

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "fetch_hub_config",
    "load_hf_config",
    "model_from_any_config",
    "model_from_hf_config",
]


class _Config:
    """A config dict plus where it came from, with typed getters whose errors name the file and key."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data = data
        self.where = where
        self.model_type = str(data.get("model_type", ""))

    def _error(self, message: str, hint: str) -> SpecError:
        return SpecError(f"{self.where}: {message}", hint=hint)

    def get_int(self, *keys: str, default: int | None = None) -> int:
        """The first of ``keys`` present (aliases, e.g. ``n_positions``/``n_ctx``) as an int."""
        for key in keys:
            value = self.data.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    return int(value)
                raise self._error(f"key {key!r} must be an integer, got {value!r}", "fix the config value")
            return value
        if default is not None:
            return default
        raise self._error(
            f"missing key {keys[0]!r} for model_type {self.model_type!r}",
            f"a {self.model_type} config.json needs {keys[0]!r}"
            + (f" (or {', '.join(repr(k) for k in keys[1:])})" if len(keys) > 1 else ""),
        )

    def opt_int(self, key: str) -> int | None:
        return self.get_int(key) if self.data.get(key) is not None else None

    def get_bool(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._error(f"key {key!r} must be true or false, got {value!r}", "fix the config value")
        return value

    def positive(self, *keys: str, default: float = 0.0) -> bool:
        """Whether any of the (dropout-probability) keys is > 0; missing keys count as ``default``."""
        for key in keys:
            value = self.data.get(key, default)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return True
        return False


def _head_dim(cfg: _Config, d_model: int, n_heads: int) -> int | None:
    head_dim = cfg.opt_int("head_dim")
    if head_dim is None or (d_model % n_heads == 0 and head_dim == d_model // n_heads):
        return None
    return head_dim


def _gpt2(cfg: _Config) -> dict[str, Any]:
    d_model = cfg.get_int("n_embd", "hidden_size")
    n_inner = cfg.opt_int("n_inner")
    return dict(
        kind="decoder",
        n_layers=cfg.get_int("n_layer", "num_hidden_layers"),
        d_model=d_model,
        n_heads=cfg.get_int("n_head", "num_attention_heads"),
        d_ff=n_inner if n_inner is not None else 4 * d_model,
        vocab_size=cfg.get_int("vocab_size"),
        max_seq_len=cfg.get_int("n_positions", "n_ctx", "max_position_embeddings"),
        mlp="gelu",
        norm="layernorm",
        position="learned",
        tied_embeddings=cfg.get_bool("tie_word_embeddings", True),
        qkv_bias=True,
        out_bias=True,
        mlp_bias=True,
        dropout=cfg.positive("resid_pdrop", "embd_pdrop", "attn_pdrop", default=0.1),
    )


def _standard_shape(cfg: _Config) -> dict[str, int]:
    """Layers, width, heads, MLP width, vocabulary and context under the usual Hugging Face key names."""
    return dict(
        n_layers=cfg.get_int("num_hidden_layers"),
        d_model=cfg.get_int("hidden_size"),
        n_heads=cfg.get_int("num_attention_heads"),
        d_ff=cfg.get_int("intermediate_size"),
        vocab_size=cfg.get_int("vocab_size"),
        max_seq_len=cfg.get_int("max_position_embeddings"),
    )


def _llama_like(
    cfg: _Config, *, qkv_bias: bool | None = None, out_bias: bool | None = None
) -> dict[str, Any]:
    d_model = cfg.get_int("hidden_size")
    n_heads = cfg.get_int("num_attention_heads")
    attention_bias = cfg.get_bool("attention_bias", False)
    return dict(
        kind="decoder",
        n_layers=cfg.get_int("num_hidden_layers"),
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=cfg.get_int("num_key_value_heads", default=n_heads),
        head_dim=_head_dim(cfg, d_model, n_heads),
        d_ff=cfg.get_int("intermediate_size"),
        vocab_size=cfg.get_int("vocab_size"),
        max_seq_len=cfg.get_int("max_position_embeddings"),
        mlp="swiglu",
        norm="rmsnorm",
        position="rope",
        tied_embeddings=cfg.get_bool("tie_word_embeddings", False),
        qkv_bias=attention_bias if qkv_bias is None else qkv_bias,
        out_bias=attention_bias if out_bias is None else out_bias,
        mlp_bias=cfg.get_bool("mlp_bias", False),
        dropout=cfg.positive("attention_dropout", "hidden_dropout", "resid_pdrop"),
    )


def _qwen2(cfg: _Config) -> dict[str, Any]:
    # Qwen2Attention: q_proj/k_proj/v_proj with bias=True, o_proj with bias=False.
    return _llama_like(cfg, qkv_bias=True, out_bias=False)


def _mixtral(cfg: _Config) -> dict[str, Any]:
    fields = _llama_like(cfg)
    fields["n_experts"] = cfg.get_int("num_local_experts")
    fields["experts_top_k"] = cfg.get_int("num_experts_per_tok")
    return fields


def _qwen3(cfg: _Config) -> dict[str, Any]:
    fields = _llama_like(cfg)
    fields["qk_norm"] = True
    return fields


def _gemma(cfg: _Config) -> dict[str, Any]:
    fields = _llama_like(cfg)
    fields["tied_embeddings"] = cfg.get_bool("tie_word_embeddings", True)
    return fields


def _gemma2(cfg: _Config) -> dict[str, Any]:
    fields = _gemma(cfg)
    fields["norms_per_layer"] = 4
    return fields


def _gemma3_text(cfg: _Config) -> dict[str, Any]:
    fields = _gemma2(cfg)
    fields["qk_norm"] = True
    return fields


def _falcon(cfg: _Config) -> dict[str, Any]:
    d_model = cfg.get_int("hidden_size")
    n_heads = cfg.get_int("num_attention_heads")
    new_arch = cfg.get_bool("new_decoder_architecture", False)
    if cfg.get_bool("alibi", False):
        raise cfg._error(
            "ALiBi Falcon variants are not modelled", "use a rotary (alibi = false) Falcon config"
        )
    if new_arch:
        kv_heads = cfg.get_int("num_kv_heads", default=n_heads)
        norms = 2 if cfg.get_int("num_ln_in_parallel_attn", default=2) == 2 else 1
    else:
        kv_heads = 1 if cfg.get_bool("multi_query", True) else n_heads
        norms = 1 if cfg.get_bool("parallel_attn", True) else 2
    bias = cfg.get_bool("bias", False)
    return dict(
        kind="decoder",
        n_layers=cfg.get_int("num_hidden_layers"),
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=kv_heads,
        head_dim=_head_dim(cfg, d_model, n_heads),
        d_ff=cfg.get_int("ffn_hidden_size", default=4 * d_model),
        vocab_size=cfg.get_int("vocab_size"),
        max_seq_len=cfg.get_int("max_position_embeddings", default=2048),
        mlp="gelu",
        norm="layernorm",
        position="rope",
        tied_embeddings=cfg.get_bool("tie_word_embeddings", True),
        qkv_bias=bias,
        out_bias=bias,
        mlp_bias=bias,
        norms_per_layer=norms,
        dropout=cfg.positive("attention_dropout", "hidden_dropout"),
    )


def _all_sparse(cfg: _Config) -> None:
    """Qwen-MoE configs may interleave dense blocks (decoder_sparse_step, mlp_only_layers); only the
    all-experts layout is modelled."""
    if cfg.get_int("decoder_sparse_step", default=1) != 1 or cfg.data.get("mlp_only_layers"):
        raise cfg._error(
            "dense blocks interleaved with MoE blocks (decoder_sparse_step / mlp_only_layers) are not modelled",
            "use decoder_sparse_step = 1 and mlp_only_layers = [] (the published Qwen-MoE configs)",
        )


def _qwen2_moe(cfg: _Config) -> dict[str, Any]:
    _all_sparse(cfg)
    fields = _llama_like(cfg, qkv_bias=True, out_bias=False)
    fields["n_experts"] = cfg.get_int("num_experts", "num_local_experts")
    fields["experts_top_k"] = cfg.get_int("num_experts_per_tok")
    fields["expert_d_ff"] = cfg.get_int("moe_intermediate_size")
    shared = cfg.get_int("shared_expert_intermediate_size", default=0)
    if shared:
        fields["n_shared_experts"] = 1
        fields["shared_expert_d_ff"] = shared
        fields["shared_expert_gate"] = True
    return fields


def _qwen3_moe(cfg: _Config) -> dict[str, Any]:
    _all_sparse(cfg)
    fields = _qwen3(cfg)
    fields["n_experts"] = cfg.get_int("num_experts", "num_local_experts")
    fields["experts_top_k"] = cfg.get_int("num_experts_per_tok")
    fields["expert_d_ff"] = cfg.get_int("moe_intermediate_size")
    return fields


def _deepseek(cfg: _Config) -> dict[str, Any]:
    if cfg.get_int("moe_layer_freq", default=1) != 1:
        raise cfg._error("moe_layer_freq != 1 is not modelled", "the published DeepSeek configs use 1")
    if cfg.get_bool("attention_bias", False):
        raise cfg._error("attention_bias = true is not modelled for MLA", "the published configs use false")
    n_layers = cfg.get_int("num_hidden_layers")
    nope = cfg.get_int("qk_nope_head_dim")
    rope = cfg.get_int("qk_rope_head_dim")
    n_experts = cfg.get_int("n_routed_experts", default=0)
    moe: dict[str, Any] = {}
    if n_experts:
        moe = dict(
            n_experts=n_experts,
            experts_top_k=cfg.get_int("num_experts_per_tok"),
            n_shared_experts=cfg.get_int("n_shared_experts", default=0),
            expert_d_ff=cfg.get_int("moe_intermediate_size"),
            n_dense_layers=min(cfg.get_int("first_k_dense_replace", default=0), n_layers),
        )
        # Group-limited routing (DeepSeek-V2 group_limited_greedy, V3 noaux_tc): topk_group of n_group groups.
        groups = cfg.get_int("n_group", default=1)
        if groups > 1 and cfg.data.get("topk_method") != "greedy":
            moe["expert_groups"] = groups
            moe["expert_groups_per_token"] = cfg.get_int("topk_group", default=groups)
    return dict(
        kind="decoder",
        n_layers=n_layers,
        d_model=cfg.get_int("hidden_size"),
        n_heads=cfg.get_int("num_attention_heads"),
        head_dim=nope + rope,
        d_ff=cfg.get_int("intermediate_size"),
        vocab_size=cfg.get_int("vocab_size"),
        max_seq_len=cfg.get_int("max_position_embeddings"),
        mlp="swiglu",
        norm="rmsnorm",
        position="rope",
        tied_embeddings=cfg.get_bool("tie_word_embeddings", False),
        q_lora_rank=cfg.opt_int("q_lora_rank"),
        kv_lora_rank=cfg.get_int("kv_lora_rank"),
        qk_rope_head_dim=rope,
        v_head_dim=cfg.get_int("v_head_dim"),
        dropout=cfg.positive("attention_dropout"),
        **moe,
    )


def _bert(cfg: _Config) -> dict[str, Any]:
    return dict(
        kind="encoder",
        **_standard_shape(cfg),
        mlp="gelu",
        norm="layernorm",
        position="learned",
        tied_embeddings=cfg.get_bool("tie_word_embeddings", True),
        qkv_bias=True,
        out_bias=True,
        mlp_bias=True,
        type_vocab_size=cfg.get_int("type_vocab_size", default=2),
        embedding_norm=True,
        final_norm=False,
        pooler=True,
        dropout=cfg.positive("hidden_dropout_prob", "attention_probs_dropout_prob", default=0.1),
    )


def _gpt_neox(cfg: _Config) -> dict[str, Any]:
    return dict(
        kind="decoder",
        **_standard_shape(cfg),
        mlp="gelu",
        norm="layernorm",
        position="rope",
        tied_embeddings=cfg.get_bool("tie_word_embeddings", False),
        qkv_bias=cfg.get_bool("attention_bias", True),
        out_bias=cfg.get_bool("attention_bias", True),
        mlp_bias=True,
        dropout=cfg.positive("attention_dropout", "hidden_dropout"),
    )


_BUILDERS: dict[str, Callable[[_Config], dict[str, Any]]] = {
    "gpt2": _gpt2,
    "llama": _llama_like,
    "mistral": _llama_like,
    "qwen2": _qwen2,
    "qwen3": _qwen3,
    "gemma": _gemma,
    "gemma2": _gemma2,
    "gemma3_text": _gemma3_text,
    "phi3": _llama_like,
    "falcon": _falcon,
    "mixtral": _mixtral,
    "qwen2_moe": _qwen2_moe,
    "qwen3_moe": _qwen3_moe,
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    "bert": _bert,
    "gpt_neox": _gpt_neox,
}
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(_BUILDERS)


def load_hf_config(config: dict[str, Any] | str | Path) -> tuple[dict[str, Any], str]:
    """Read a config: a dict as is, a path to ``config.json`` (or a folder holding one), or JSON text.

    Returns the dict and a description of where it came from (for error messages and ``source``)."""
    if isinstance(config, dict):
        return config, "Hugging Face config (dict)"
    text = str(config)
    if isinstance(config, str) and text.lstrip().startswith("{"):
        where, raw = "Hugging Face config (JSON text)", text
    else:
        path = Path(text)
        if path.is_dir():
            path = path / "config.json"
        where = str(path)
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError(
                f"config file not found: {path}",
                hint="pass a path to a Hugging Face config.json or a folder holding one",
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read {path}: {exc}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"{where}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            hint="a Hugging Face config.json must be one JSON object",
        ) from None
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a JSON object, got {type(data).__name__}")
    return data, where


def model_from_hf_config(
    config: dict[str, Any] | str | Path, *, name: str | None = None, source: str | None = None
) -> ModelSpec:
    """A :class:`ModelSpec` from a Hugging Face config (dict, path to ``config.json`` or its folder, or
    JSON text). Raises :class:`SpecError` naming the file and key for malformed JSON, missing keys or an
    unsupported ``model_type``."""
    data, where = load_hf_config(config)
    model_type = data.get("model_type")
    supported = ", ".join(SUPPORTED_MODEL_TYPES)
    if not model_type:
        raise SpecError(f"{where}: missing key 'model_type'", hint=f"supported model types: {supported}")
    if model_type not in _BUILDERS:
        from mlcost.errors import did_you_mean

        hint = did_you_mean(model_type, SUPPORTED_MODEL_TYPES, end=" ")
        raise SpecError(
            f"{where}: unsupported model_type {model_type!r}",
            hint=hint + f"supported model types: {supported}; or build a ModelSpec by hand",
        )
    cfg = _Config(data, where)
    fields = _BUILDERS[str(model_type)](cfg)
    label = name or data.get("_name_or_path") or _name_from_where(where) or str(model_type)
    try:
        return ModelSpec(name=str(label), source=source or where, **fields)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc.message}", hint=exc.hint) from None


def _name_from_where(where: str) -> str | None:
    path = Path(where)
    if path.name == "config.json" and path.parent.name not in ("", "."):
        return path.parent.name
    if path.suffix == ".json":
        return path.stem
    return None


def model_from_any_config(config: dict[str, Any] | str | Path, *, name: str | None = None) -> ModelSpec:
    """Like :func:`model_from_hf_config`, with a fallback for ``model_type`` values it does not map: the
    model is built by ``transformers`` on the meta device (:func:`mlcost.spec.meta_count.count_on_meta`) and
    counted. When a generic Llama-style reading of the config's standard keys has exactly that many
    parameters, that spec is used (its ``source`` says so); otherwise a :class:`SpecError` reports the
    counted parameters and FLOPs per token, which the time and memory model cannot use without a shape."""
    data, where = load_hf_config(config)
    model_type = data.get("model_type")
    if not model_type or model_type in _BUILDERS:
        return model_from_hf_config(data, name=name, source=where)
    from mlcost.spec.meta_count import count_on_meta

    counted = count_on_meta(data)
    flops = (
        f"{counted.train_flops_per_token:.4g} training FLOPs per token at seq {counted.seq_len}"
        if counted.train_flops_per_token is not None
        else f"FLOPs not counted on meta tensors ({counted.flops_error})"
    )
    try:
        guess = model_from_hf_config(
            {**data, "model_type": "llama"},
            name=name or data.get("_name_or_path") or _name_from_where(where) or str(model_type),
            source=f"{where} (model_type {model_type!r}: generic Llama-style shape; parameters verified "
            f"equal to transformers' {counted.model_class} on the meta device; {flops})",
        )
    except SpecError:
        guess = None
    # The spec layer does not import the estimator: transformers counts the Llama reading too (mlcost's
    # Llama counts equal transformers', tests/estimate/test_params_vs_transformers.py).
    if guess is not None:
        as_llama = count_on_meta({**data, "model_type": "llama"}, flops=False)
        if as_llama.params == counted.params:
            return guess
    raise SpecError(
        f"{where}: model_type {model_type!r} is not mapped to a shape; transformers' {counted.model_class} "
        f"has {counted.params:,} parameters and {flops} (meta device)",
        hint="supported model types: " + ", ".join(SUPPORTED_MODEL_TYPES) + "; or build a ModelSpec by hand",
    )


def fetch_hub_config(repo_id: str) -> dict[str, Any]:
    """``config.json`` of a Hugging Face hub model id (``owner/name``) through ``huggingface_hub``; a
    one-line :class:`SpecError` when it cannot be fetched (offline, unknown or gated id)."""
    from mlcost.errors import require

    hub = require("huggingface_hub", f"reading hub id {repo_id!r}", extra="hf")
    # huggingface_hub reads its own HF_HUB_OFFLINE setting; mlcost reads no environment here
    offline = bool(getattr(hub.constants, "HF_HUB_OFFLINE", False))
    require("huggingface_hub.utils", "quiet hub logging", extra="hf").logging.set_verbosity_error()
    try:
        path = hub.hf_hub_download(repo_id, "config.json", local_files_only=offline)
    except Exception as exc:
        name = type(exc).__name__
        why = (
            "offline (HF_HUB_OFFLINE is set) and not in the local cache"
            if offline
            else f"offline or unreachable hub and not in the local cache ({name})"
            if name in ("LocalEntryNotFoundError", "OfflineModeIsEnabled") or isinstance(exc, OSError)
            else f"no such public model or no access ({name})"
        )
        raise SpecError(
            f"cannot fetch config.json of hub id {repo_id!r}: {why}",
            hint="check the id and the network, or download its config.json and pass the file path",
        ) from None
    data, _ = load_hf_config(path)
    data.setdefault("_name_or_path", repo_id)
    return data
