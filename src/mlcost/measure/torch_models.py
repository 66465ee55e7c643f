"""Real PyTorch models for measurement: a Hugging Face ``transformers`` model built from a
:class:`~mlcost.spec.ModelSpec` with random weights (no download), or a user's ``nn.Module``.

Family mapping (the implementations whose parameter counts ``mlcost.estimate`` mirrors):

* encoder                                    → ``BertForMaskedLM`` (``BertConfig``)
* decoder with ``n_experts > 0``             → ``MixtralForCausalLM``
* decoder, learned positions + GELU          → ``GPT2LMHeadModel``
* decoder, RoPE, QKV bias only               → ``Qwen2ForCausalLM``
* decoder, RoPE, name contains "mistral"     → ``MistralForCausalLM``
* other RoPE decoders                        → ``LlamaForCausalLM``

FLOPs of one forward+backward pass are counted with ``torch.utils.flop_counter.FlopCounterMode``
(:func:`count_model_flops`), so MFU uses the FLOPs the model really executes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlcost.errors import SpecError, require
from mlcost.measure.options import ATTN_IMPLEMENTATIONS, RUNNER_ATTN_IMPLEMENTATION
from mlcost.spec import ModelSpec

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn


#: dropout probability used when ``ModelSpec.dropout`` is true (GPT-2/BERT default).
DEFAULT_DROPOUT_P = 0.1


def family_of(spec: ModelSpec) -> str:
    """Which ``transformers`` family builds this spec: gpt2, llama, mistral, qwen2, mixtral or bert."""
    if spec.kind == "encoder":
        return "bert"
    if spec.n_experts > 0:
        return "mixtral"
    if spec.position == "learned":
        return "gpt2"
    if spec.qkv_bias and not spec.out_bias:
        return "qwen2"
    if "mistral" in spec.name.lower():
        return "mistral"
    return "llama"


def hf_config_for(
    spec: ModelSpec, *, attn_implementation: str = RUNNER_ATTN_IMPLEMENTATION, dropout: bool | None = None
) -> Any:
    """The ``transformers`` config object (random-init ready) for a spec.

    Args:
        spec: model shape.
        attn_implementation: ``sdpa`` (default), ``eager`` or ``flash_attention_2`` (CUDA + flash-attn only).
        dropout: override ``spec.dropout``; when on, dropout probabilities are 0.1, else 0.
    """
    if attn_implementation not in ATTN_IMPLEMENTATIONS:
        raise SpecError(
            f"attn_implementation must be one of {', '.join(ATTN_IMPLEMENTATIONS)}, got {attn_implementation!r}"
        )
    transformers = require("transformers", "building a model from a spec", extra="hf")
    p = DEFAULT_DROPOUT_P if (spec.dropout if dropout is None else dropout) else 0.0
    family = family_of(spec)
    common: dict[str, Any] = {"vocab_size": spec.vocab_size, "tie_word_embeddings": spec.tied_embeddings}
    if family == "bert":
        cfg = transformers.BertConfig(
            hidden_size=spec.d_model,
            num_hidden_layers=spec.n_layers,
            num_attention_heads=spec.n_heads,
            intermediate_size=spec.d_ff,
            max_position_embeddings=spec.max_seq_len,
            type_vocab_size=max(spec.type_vocab_size, 1),
            hidden_dropout_prob=p,
            attention_probs_dropout_prob=p,
            **common,
        )
    elif family == "gpt2":
        if spec.mlp != "gelu" or spec.norm != "layernorm":
            raise SpecError(
                f"model {spec.name!r}: learned positions are built as GPT-2, which needs mlp='gelu' and "
                f"norm='layernorm' (got mlp={spec.mlp!r}, norm={spec.norm!r})"
            )
        cfg = transformers.GPT2Config(
            n_positions=spec.max_seq_len,
            n_embd=spec.d_model,
            n_layer=spec.n_layers,
            n_head=spec.n_heads,
            n_inner=spec.d_ff,
            resid_pdrop=p,
            embd_pdrop=p,
            attn_pdrop=p,
            use_cache=False,
            bos_token_id=None,
            eos_token_id=None,
            **common,
        )
    else:
        kw: dict[str, Any] = {
            "hidden_size": spec.d_model,
            "intermediate_size": spec.ff_expert if family == "mixtral" else spec.d_ff,
            "num_hidden_layers": spec.n_layers,
            "num_attention_heads": spec.n_heads,
            "num_key_value_heads": spec.n_kv_heads or spec.n_heads,
            "max_position_embeddings": spec.max_seq_len,
            "attention_dropout": p,
            "use_cache": False,
            "head_dim": spec.dim_head,
            **common,
        }
        if family == "llama":
            cfg = transformers.LlamaConfig(attention_bias=spec.qkv_bias, mlp_bias=spec.mlp_bias, **kw)
        elif family == "mistral":
            cfg = transformers.MistralConfig(sliding_window=None, **kw)
        elif family == "qwen2":
            kw.pop("head_dim")
            cfg = transformers.Qwen2Config(use_sliding_window=False, **kw)
        else:
            cfg = transformers.MixtralConfig(
                num_local_experts=spec.n_experts, num_experts_per_tok=spec.experts_top_k, **kw
            )
            # transformers >= 5 runs experts through torch._grouped_mm, which FlopCounterMode does not see;
            # the eager implementation (a loop of linear layers over routed tokens) is counted exactly.
            cfg._experts_implementation = "eager"
    cfg._attn_implementation = attn_implementation
    return cfg


def build_model(
    spec: ModelSpec,
    *,
    attn_implementation: str = RUNNER_ATTN_IMPLEMENTATION,
    dropout: bool | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> nn.Module:
    """A ``transformers`` model with random weights (seeded) for a spec, on ``device``, in train mode."""
    torch = require("torch", "mlcost measure", extra="measure")
    transformers = require("transformers", "building a model from a spec", extra="hf")
    cfg = hf_config_for(spec, attn_implementation=attn_implementation, dropout=dropout)
    classes = {
        "bert": transformers.BertForMaskedLM,
        "gpt2": transformers.GPT2LMHeadModel,
        "llama": transformers.LlamaForCausalLM,
        "mistral": transformers.MistralForCausalLM,
        "qwen2": transformers.Qwen2ForCausalLM,
        "mixtral": transformers.MixtralForCausalLM,
    }
    torch.manual_seed(seed)
    model = classes[family_of(spec)](cfg)
    if getattr(model, "loss_type", "") is None:
        # GPT2LMHeadModel's class name matches no transformers loss; it trains with the causal-LM loss,
        # which transformers would pick anyway after warning once per process.
        model.loss_type = "ForCausalLM"
    model.to(device)
    model.train()
    return model  # type: ignore[no-any-return]


def param_count(model: nn.Module) -> int:
    """Distinct parameters (tied weights once). Units: count."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def is_hf_model(model: Any) -> bool:
    """True for a ``transformers`` PreTrainedModel (supports ``gradient_checkpointing_enable``)."""
    return hasattr(model, "gradient_checkpointing_enable") and hasattr(model, "config")


def vocab_size_of(model: Any, default: int | None = None) -> int | None:
    """``model.config.vocab_size``, else ``default``, else the size of the module's first ``nn.Embedding``."""
    cfg = getattr(model, "config", None)
    found = getattr(cfg, "vocab_size", None) or default
    if found is None and hasattr(model, "modules"):
        for module in model.modules():
            if type(module).__name__ == "Embedding" and hasattr(module, "num_embeddings"):
                return int(module.num_embeddings)
    return found


def compute_loss(model: Any, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The training loss for one micro-batch.

    Hugging Face models get ``labels`` (they shift for causal LMs). A user module is called with the
    token ids; if it returns an object with ``.loss`` that is used, a tensor of shape (B, S, V) is taken
    as next-token logits (cross-entropy against ``labels``), and a scalar tensor is taken as the loss.
    """
    import torch.nn.functional as F

    if is_hf_model(model) or _wrapped_hf(model):
        out = model(input_ids=input_ids, labels=labels)
        return out.loss  # type: ignore[no-any-return]
    out = model(input_ids)
    loss = getattr(out, "loss", None)
    if loss is not None:
        return loss  # type: ignore[no-any-return]
    logits = out[0] if isinstance(out, (tuple, list)) else getattr(out, "logits", out)
    if logits.dim() == 0:
        return logits  # type: ignore[no-any-return]
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), labels[:, 1:].reshape(-1))


def _wrapped_hf(model: Any) -> bool:
    inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
    return inner is not None and (is_hf_model(inner) or _wrapped_hf(inner))


def count_model_flops(
    model: nn.Module, batch: int, seq_len: int, *, vocab_size: int | None = None
) -> dict[str, int]:
    """FLOPs of one forward and one backward pass of ``batch`` sequences of ``seq_len`` tokens, counted by
    ``torch.utils.flop_counter.FlopCounterMode`` on the model's own device (gradients are zeroed after).

    Returns ``{"forward_flops", "backward_flops", "total_flops"}``. Units: FLOP (a multiply-add = 2).
    With activation checkpointing on, the backward includes the recomputed forward (hardware FLOPs).
    """
    torch = require("torch", "mlcost measure", extra="measure")
    from torch.utils.flop_counter import FlopCounterMode

    vocab = vocab_size or vocab_size_of(model) or 256
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(1234)
    ids = torch.randint(0, vocab, (batch, seq_len), generator=gen).to(device)
    # FlopCounterMode does not count the CPU SDPA kernel: count with eager attention (the same matmuls,
    # counted exactly), then restore the implementation the model runs with.
    configs: list[Any] = [
        m.config for m in model.modules() if hasattr(getattr(m, "config", None), "_attn_implementation")
    ]
    saved = [c._attn_implementation for c in configs]
    try:
        for c in configs:
            c._attn_implementation = "eager"
        with FlopCounterMode(display=False) as fwd_counter:
            loss = compute_loss(model, ids, ids)
        fwd = int(fwd_counter.get_total_flops())
        with FlopCounterMode(display=False) as bwd_counter:
            loss.backward()
        bwd = int(bwd_counter.get_total_flops())
    finally:
        for c, impl in zip(configs, saved, strict=True):
            c._attn_implementation = impl
    model.zero_grad(set_to_none=True)
    return {"forward_flops": fwd, "backward_flops": bwd, "total_flops": fwd + bwd}


def approx_param_count(spec: ModelSpec) -> int:
    """Parameter count of the spec, by the estimator's own count (:func:`mlcost.estimate.params.count_params`,
    checked against the built modules). Units: count."""
    from mlcost.estimate.params import count_params

    return int(count_params(spec).total)


def training_memory_bytes(
    spec: ModelSpec, *, micro_batch: int, seq_len: int, precision: str = "fp32"
) -> float:
    """The training footprint of one rank by the estimator's memory model
    (:func:`mlcost.estimate.memory.train_memory`: weights, gradients, AdamW states, activations and logits
    of the runner's model flavour, no parallelism). Used to refuse models too large for this machine
    before allocating. Units: bytes."""
    from mlcost.estimate.flops import RECOMPUTE_CODES
    from mlcost.estimate.memory import (
        STATE_BYTES,
        activation_bytes_per_element,
        precision_class,
        train_memory,
    )
    from mlcost.measure.options import RUNNER_FLASH_ATTENTION, RUNNER_FUSED_ELEMENTWISE

    weight_b, grad_b, optim_b = STATE_BYTES[(precision_class(precision), "adamw")]
    mem = train_memory(
        spec,
        tp=1,
        pp=1,
        dp=1,
        micro_batch=micro_batch,
        seq_len=seq_len,
        n_micro=1,
        virtual_stages=1,
        zero=0,
        recompute=RECOMPUTE_CODES["none"],
        sequence_parallel=False,
        flash_attention=RUNNER_FLASH_ATTENTION,
        act_bytes=activation_bytes_per_element(precision),
        weight_bytes=weight_b,
        grad_bytes=grad_b,
        optimizer_bytes=optim_b,
        framework_overhead_bytes=0.0,
        fused_elementwise=RUNNER_FUSED_ELEMENTWISE,
    )
    return float(mem.total)


def override_spec(
    spec: ModelSpec,
    *,
    layers: int | None = None,
    d_model: int | None = None,
    heads: int | None = None,
    vocab: int | None = None,
    min_seq_len: int | None = None,
) -> ModelSpec:
    """Shrink (or grow) a preset for a measurement on small hardware, keeping its family.

    A new ``d_model`` keeps the MLP ratio (d_ff / d_model) and, unless ``heads`` is given, the head size
    (heads = d_model / head size, at least 1); key/value heads keep their ratio to query heads. Learned
    position tables grow to ``min_seq_len`` if needed. The name gets a suffix saying what changed.
    """
    changes: dict[str, Any] = {}
    label: list[str] = []
    if layers is not None:
        changes["n_layers"] = layers
        label.append(f"L{layers}")
    if d_model is not None or heads is not None:
        new_d = d_model or spec.d_model
        new_heads = heads or max(1, new_d // spec.dim_head)
        if new_d % new_heads:
            raise SpecError(
                f"--d-model {new_d} is not divisible by --heads {new_heads}", hint="pick a multiple"
            )
        changes.update(d_model=new_d, n_heads=new_heads, head_dim=None)
        changes["d_ff"] = max(1, round(spec.d_ff * new_d / spec.d_model))
        if spec.expert_d_ff is not None:
            changes["expert_d_ff"] = max(1, round(spec.expert_d_ff * new_d / spec.d_model))
        if spec.n_kv_heads is not None:
            group = max(1, spec.n_heads // spec.n_kv_heads)
            changes["n_kv_heads"] = max(1, new_heads // group) if new_heads % group == 0 else new_heads
        label.append(f"d{new_d}h{new_heads}")
    if vocab is not None:
        changes["vocab_size"] = vocab
        label.append(f"V{vocab}")
    if min_seq_len is not None and min_seq_len > spec.max_seq_len:
        if spec.position != "learned":
            changes["max_seq_len"] = min_seq_len
        else:
            raise SpecError(
                f"model {spec.name!r} has learned positions for {spec.max_seq_len} tokens, shorter than "
                f"--seq-len {min_seq_len}",
                hint=f"use --seq-len {spec.max_seq_len} or less",
            )
    if not changes:
        return spec
    name = spec.name + ("-" + "-".join(label) if label else "")
    return spec.replace(
        name=name, source=f"{spec.source} (shrunk for measurement: {', '.join(label)})", **changes
    )
