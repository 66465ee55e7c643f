"""Model architecture specification.

One dataclass covers the transformer families mlcost supports:

* GPT-2 style decoders: learned positions, GELU MLP, LayerNorm, biases, tied embeddings;
* Llama style decoders: RoPE, RMSNorm, SwiGLU, grouped-query / multi-query attention, tied or untied
  embeddings (Llama, Mistral, Qwen2 — the latter with QKV biases);
* mixture-of-experts decoders (Mixtral): ``n_experts`` routed experts of which ``experts_top_k`` run per
  token, optional always-on shared experts;
* encoder-only BERT: learned positions, token-type embeddings, embedding LayerNorm, pooler.

Parameter counts follow the Hugging Face implementations exactly (``*ForCausalLM`` for decoders,
``BertModel`` with its pooler for BERT); see ``mlcost.estimate.params``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from mlcost.errors import SpecError
from mlcost.spec._validate import check_choice, check_positive_int, from_dict_strict

Kind = Literal["decoder", "encoder"]
Mlp = Literal["gelu", "swiglu"]
Norm = Literal["layernorm", "rmsnorm"]
Position = Literal["learned", "rope"]


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A transformer's shape. Sizes are element counts; no units beyond 'count'.

    Attributes:
        name: preset id or a user label.
        kind: ``decoder`` (causal LM, counted with its LM head) or ``encoder`` (BERT, counted with pooler).
        n_layers: transformer blocks.
        d_model: hidden size h.
        n_heads: attention (query) heads a.
        n_kv_heads: key/value heads (GQA/MQA); ``None`` means equal to ``n_heads``.
        head_dim: per-head size; ``None`` means ``d_model // n_heads``.
        d_ff: MLP intermediate size of a dense layer (and of each expert unless ``expert_d_ff``).
        vocab_size: token vocabulary V.
        max_seq_len: longest context; also the size of a learned position table.
        mlp: ``gelu`` (two matrices) or ``swiglu`` (gate, up, down: three matrices).
        norm: ``layernorm`` (weight + bias) or ``rmsnorm`` (weight only).
        position: ``learned`` (a table of max_seq_len × d_model) or ``rope`` (no parameters).
        tied_embeddings: LM head shares the input embedding matrix.
        qkv_bias / out_bias / mlp_bias: linear-layer biases.
        n_experts: routed experts per MoE layer; 0 means a dense model.
        experts_top_k: experts that run per token.
        n_shared_experts: experts every token uses in addition (DeepSeek/Qwen-MoE style).
        expert_d_ff: intermediate size of one expert; ``None`` means ``d_ff``.
        type_vocab_size: token-type (segment) embeddings, BERT only.
        embedding_norm: a norm right after the embeddings (BERT).
        final_norm: a norm after the last block (decoders).
        pooler: BERT pooler (d_model × d_model dense + bias).
        dropout: the model trains with dropout (adds 1-byte masks to activation memory, Korthikanti et al.).
        source: where the shape came from (config URL, file path, module class).
        train_seq_len: the sequence length of the model's published pre-training recipe (tokens), or None;
            estimate, plan and tco use it as their default (mlcost.plan.defaults).
        train_global_batch: the recipe's global batch (sequences per optimizer step), or None.
    """

    name: str
    kind: Kind = "decoder"
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int | None = None
    head_dim: int | None = None
    d_ff: int
    vocab_size: int
    max_seq_len: int
    mlp: Mlp = "swiglu"
    norm: Norm = "rmsnorm"
    position: Position = "rope"
    tied_embeddings: bool = False
    qkv_bias: bool = False
    out_bias: bool = False
    mlp_bias: bool = False
    n_experts: int = 0
    experts_top_k: int = 0
    n_shared_experts: int = 0
    expert_d_ff: int | None = None
    type_vocab_size: int = 0
    embedding_norm: bool = False
    final_norm: bool = True
    pooler: bool = False
    dropout: bool = False
    source: str = "user"
    train_seq_len: int | None = None
    train_global_batch: int | None = None

    def __post_init__(self) -> None:
        own = f"model {self.name!r}"
        check_choice(own, "kind", self.kind, ["decoder", "encoder"])
        check_choice(own, "mlp", self.mlp, ["gelu", "swiglu"])
        check_choice(own, "norm", self.norm, ["layernorm", "rmsnorm"])
        check_choice(own, "position", self.position, ["learned", "rope"])
        for field in ("n_layers", "d_model", "n_heads", "d_ff", "vocab_size", "max_seq_len"):
            check_positive_int(own, field, getattr(self, field))
        for field in ("n_experts", "experts_top_k", "n_shared_experts", "type_vocab_size"):
            check_positive_int(own, field, getattr(self, field), allow_zero=True)
        for field in ("n_kv_heads", "head_dim", "expert_d_ff", "train_seq_len", "train_global_batch"):
            if getattr(self, field) is not None:
                check_positive_int(own, field, getattr(self, field))
        if self.n_kv_heads is not None and self.n_heads % self.n_kv_heads:
            raise SpecError(
                f"{own}: n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.n_kv_heads})",
                hint="grouped-query attention shares each key/value head among n_heads/n_kv_heads query heads",
            )
        if self.head_dim is None and self.d_model % self.n_heads:
            raise SpecError(
                f"{own}: d_model ({self.d_model}) is not divisible by n_heads ({self.n_heads})",
                hint="set head_dim explicitly",
            )
        if self.n_experts:
            if not 1 <= self.experts_top_k <= self.n_experts:
                raise SpecError(
                    f"{own}: experts_top_k must be between 1 and n_experts ({self.n_experts}), "
                    f"got {self.experts_top_k}"
                )
        elif self.experts_top_k or self.n_shared_experts:
            raise SpecError(f"{own}: experts_top_k/n_shared_experts need n_experts > 0")

    # ---- derived shapes -------------------------------------------------------------------------
    @property
    def kv_heads(self) -> int:
        """Key/value heads (equals ``n_heads`` without GQA/MQA)."""
        return self.n_kv_heads if self.n_kv_heads is not None else self.n_heads

    @property
    def dim_head(self) -> int:
        """Per-head size."""
        return self.head_dim if self.head_dim is not None else self.d_model // self.n_heads

    @property
    def is_moe(self) -> bool:
        return self.n_experts > 0

    @property
    def ff_expert(self) -> int:
        """Intermediate size of one expert (MoE) or of the dense MLP."""
        return self.expert_d_ff if self.expert_d_ff is not None else self.d_ff

    @property
    def has_lm_head(self) -> bool:
        return self.kind == "decoder"

    # ---- serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        return from_dict_strict(cls, data)  # type: ignore[no-any-return]

    def replace(self, **changes: Any) -> ModelSpec:
        return dataclasses.replace(self, **changes)

    # ---- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, name: str, catalog: Any = None) -> ModelSpec:
        """A model preset from the catalog (``mlcost models`` lists them)."""
        from mlcost.catalog import get_catalog

        return (catalog or get_catalog()).model(name)

    @classmethod
    def from_hf_config(cls, config: dict[str, Any] | str, *, name: str | None = None) -> ModelSpec:
        """From a Hugging Face ``config.json`` (a path or an already-parsed dict)."""
        from mlcost.spec.hf_config import model_from_hf_config

        return model_from_hf_config(config, name=name)

    @classmethod
    def from_torch_module(cls, module: Any, *, name: str | None = None) -> ModelSpec:
        """From a Hugging Face ``PreTrainedModel`` (its ``.config``), e.g. one built on the meta device."""
        from mlcost.spec.torch_module import model_from_torch_module

        return model_from_torch_module(module, name=name)


def resolve_model(name_or_path: str | ModelSpec, catalog: Any = None) -> ModelSpec:
    """A preset name, a path to a ``config.json`` (or a folder holding one), or a spec as is."""
    import os

    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    text = str(name_or_path)
    if text.endswith(".json") or os.path.sep in text or os.path.isdir(text):
        path = os.path.join(text, "config.json") if os.path.isdir(text) else text
        return ModelSpec.from_hf_config(path)
    return ModelSpec.from_preset(text, catalog)
