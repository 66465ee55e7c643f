"""Model architecture specification.

One dataclass covers the transformer families mlcost supports:

* GPT-2 style decoders: learned positions, GELU MLP, LayerNorm, biases, tied embeddings;
* Llama style decoders: RoPE, RMSNorm, SwiGLU, grouped-query / multi-query attention, tied or untied
  embeddings (Llama, Mistral, Qwen2 — the latter with QKV biases);
* mixture-of-experts decoders (Mixtral): ``n_experts`` routed experts of which ``experts_top_k`` run per
  token, optional always-on shared experts;
* encoder-only BERT: learned positions, token-type embeddings, embedding LayerNorm; trained with the
  masked-LM head (``objective="mlm"``: dense + LayerNorm + vocabulary projection, as ``BertForMaskedLM``)
  or counted as the bare encoder with its pooler (``objective="none"``, ``BertModel``);
* fine-grained and shared experts (DeepSeek-MoE, Qwen-MoE), dense first layers, extra norms per block
  (Gemma 2/3, Falcon's parallel block), per-head q/k norms (Qwen3, Gemma 3) and multi-head latent attention
  (MLA, DeepSeek-V2/V3: low-rank compressed queries and keys/values).

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
Objective = Literal["auto", "clm", "mlm", "none"]
OBJECTIVES: tuple[str, ...] = ("auto", "clm", "mlm", "none")


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
        shared_expert_d_ff: intermediate size of one shared expert; ``None`` means ``expert_d_ff``.
        shared_expert_gate: a sigmoid gate (d_model × 1) scales the shared expert (Qwen2-MoE).
        expert_groups / expert_groups_per_token: group-limited routing (DeepSeek-V2/V3 ``n_group`` /
            ``topk_group``): the routed experts form ``expert_groups`` equal groups and a token's experts
            come from at most ``expert_groups_per_token`` of them; laid out one group per node it bounds
            the nodes a token is sent to (DeepSeek-V3: 4 of 8, arXiv 2412.19437 §3.2.2). 0 = no limit.
        n_dense_layers: the first blocks use a dense MLP of ``d_ff`` instead of experts (DeepSeek's
            ``first_k_dense_replace``).
        norms_per_layer: norms in one block: 2 (pre-attention, pre-MLP), 1 (Falcon-7B's parallel block),
            4 (Gemma 2/3: also after attention and after the MLP).
        qk_norm: a norm of head_dim on each query and key head (Qwen3, Gemma 3).
        q_lora_rank: MLA query compression rank; ``None`` projects queries directly.
        kv_lora_rank: MLA key/value compression rank; ``None`` means ordinary (GQA/MHA) attention.
        qk_rope_head_dim: MLA: the rotary part of head_dim (shared by all heads, from the compressed path).
        v_head_dim: per-head size of values; ``None`` means ``head_dim``.
        objective: training objective and head: ``clm`` (causal LM head), ``mlm`` (BERT masked-LM head:
            dense + norm + vocabulary projection with a bias; no pooler), ``none`` (bare model; an encoder
            keeps its pooler) or ``auto`` (``clm`` for decoders, ``mlm`` for encoders).
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
    shared_expert_d_ff: int | None = None
    shared_expert_gate: bool = False
    n_dense_layers: int = 0
    expert_groups: int = 0
    expert_groups_per_token: int = 0
    norms_per_layer: int = 2
    qk_norm: bool = False
    q_lora_rank: int | None = None
    kv_lora_rank: int | None = None
    qk_rope_head_dim: int = 0
    v_head_dim: int | None = None
    objective: Objective = "auto"
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
        check_choice("ModelSpec", "kind", self.kind, ["decoder", "encoder"], context=own)
        check_choice("ModelSpec", "mlp", self.mlp, ["gelu", "swiglu"], context=own)
        check_choice("ModelSpec", "norm", self.norm, ["layernorm", "rmsnorm"], context=own)
        check_choice("ModelSpec", "position", self.position, ["learned", "rope"], context=own)
        check_choice("ModelSpec", "objective", self.objective, OBJECTIVES, context=own)
        for field in ("n_layers", "d_model", "n_heads", "d_ff", "vocab_size", "max_seq_len"):
            check_positive_int("ModelSpec", field, getattr(self, field), context=own)
        for field in (
            "n_experts",
            "experts_top_k",
            "n_shared_experts",
            "type_vocab_size",
            "n_dense_layers",
            "norms_per_layer",
            "qk_rope_head_dim",
        ):
            check_positive_int("ModelSpec", field, getattr(self, field), allow_zero=True, context=own)
        for field in (
            "n_kv_heads",
            "head_dim",
            "expert_d_ff",
            "shared_expert_d_ff",
            "q_lora_rank",
            "kv_lora_rank",
            "v_head_dim",
            "train_seq_len",
            "train_global_batch",
        ):
            if getattr(self, field) is not None:
                check_positive_int("ModelSpec", field, getattr(self, field), context=own)
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
            if self.expert_groups and (
                self.n_experts % self.expert_groups
                or not 1 <= self.expert_groups_per_token <= self.expert_groups
            ):
                raise SpecError(
                    f"{own}: expert_groups ({self.expert_groups}) must divide n_experts ({self.n_experts}) and "
                    f"expert_groups_per_token ({self.expert_groups_per_token}) be between 1 and it",
                    hint="DeepSeek-V3: expert_groups = 8 (n_group), expert_groups_per_token = 4 (topk_group)",
                )
            if self.expert_groups_per_token and not self.expert_groups:
                raise SpecError(
                    f"{own}: expert_groups_per_token needs expert_groups", hint="set expert_groups"
                )
        elif self.experts_top_k or self.n_shared_experts or self.n_dense_layers:
            raise SpecError(f"{own}: experts_top_k/n_shared_experts/n_dense_layers need n_experts > 0")
        if self.n_dense_layers > self.n_layers:
            raise SpecError(
                f"{own}: n_dense_layers ({self.n_dense_layers}) exceeds n_layers ({self.n_layers})"
            )
        if self.kv_lora_rank is None and (self.q_lora_rank is not None or self.qk_rope_head_dim):
            raise SpecError(
                f"{own}: q_lora_rank/qk_rope_head_dim describe MLA attention and need kv_lora_rank",
                hint="set kv_lora_rank (DeepSeek-V2/V3) or drop them",
            )
        if self.is_mla and self.qk_rope_head_dim >= self.dim_head:
            raise SpecError(
                f"{own}: qk_rope_head_dim ({self.qk_rope_head_dim}) must be below head_dim ({self.dim_head})",
                hint="head_dim is the whole query/key head: qk_nope_head_dim + qk_rope_head_dim",
            )
        if self.objective == "mlm" and self.kind != "encoder":
            raise SpecError(
                f"{own}: objective 'mlm' needs an encoder (kind='encoder')",
                hint="decoders train with 'clm'",
            )

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
    def is_mla(self) -> bool:
        """Multi-head latent attention (DeepSeek-V2/V3)."""
        return self.kv_lora_rank is not None

    @property
    def dim_v(self) -> int:
        """Per-head size of values (and of the attention output)."""
        return self.v_head_dim if self.v_head_dim is not None else self.dim_head

    @property
    def ff_shared(self) -> int:
        """Intermediate size of one shared expert."""
        return self.shared_expert_d_ff if self.shared_expert_d_ff is not None else self.ff_expert

    @property
    def n_moe_layers(self) -> int:
        """Blocks whose MLP is a mixture of experts (0 for dense models)."""
        return self.n_layers - self.n_dense_layers if self.is_moe else 0

    @property
    def resolved_objective(self) -> str:
        """``clm``, ``mlm`` or ``none`` (``auto`` resolved by kind)."""
        if self.objective != "auto":
            return self.objective
        return "clm" if self.kind == "decoder" else "mlm"

    @property
    def has_lm_head(self) -> bool:
        """A vocabulary projection runs on every token (causal-LM or masked-LM head)."""
        return self.resolved_objective in ("clm", "mlm")

    @property
    def has_pooler(self) -> bool:
        """The encoder's pooler is built (``BertModel``); masked-LM training drops it (``BertForMaskedLM``)."""
        return self.pooler and self.resolved_objective == "none"

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
    def from_preset(cls, name: str, catalog: Any) -> ModelSpec:
        """A model preset of ``catalog`` (anything with ``.model(name)``, e.g.
        :func:`mlcost.catalog.builtin_catalog`; ``mlcost models`` lists them)."""
        if catalog is None:
            raise SpecError(
                f"no catalog to look the preset {name!r} up in",
                hint="pass one: mlcost.catalog.resolve_model(name) uses the built-in catalog",
            )
        return catalog.model(name)  # type: ignore[no-any-return]

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
