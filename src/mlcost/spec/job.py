"""Training and serving job specifications."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from mlcost.errors import SpecError
from mlcost.spec import validate
from mlcost.spec._validate import (
    api_name,
    check_choice,
    check_positive,
    check_positive_int,
    from_dict_strict,
)

Precision = Literal["fp32", "tf32", "bf16", "fp16", "fp8"]
Optimizer = Literal["adamw", "sgd"]
Recompute = Literal["none", "selective", "full", "matmuls", "norms"]
WeightPrecision = Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4"]
KvPrecision = Literal["fp32", "bf16", "fp16", "fp8", "int8"]

PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16", "fp8")
OPTIMIZERS: tuple[str, ...] = ("adamw", "sgd")
RECOMPUTES: tuple[str, ...] = ("none", "selective", "full", "matmuls", "norms")
Schedule = Literal["1f1b", "interleaved", "zb-h1", "dualpipe"]
SCHEDULES: tuple[str, ...] = ("1f1b", "interleaved", "zb-h1", "dualpipe")
#: Token dispatchers of the expert-parallel all-to-all (mlcost.estimate.timing.alltoall_split).
MOE_DISPATCHERS: tuple[str, ...] = ("alltoall", "deepep")
WEIGHT_PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16", "fp8", "int8", "int4")
KV_PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16", "fp8", "int8")

#: Bytes per element of each storage format.
BYTES_PER_ELEMENT: dict[str, float] = {
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
}


@dataclass(frozen=True, kw_only=True)
class TrainJob:
    """A training run.

    Attributes:
        tokens: total training tokens (count).
        seq_len: tokens per sequence.
        global_batch: sequences per optimizer step (all data-parallel ranks, all micro-batches).
        micro_batch: sequences per forward/backward on one data-parallel rank.
        precision: compute precision. ``bf16``/``fp16``/``fp8`` mean mixed precision with fp32 master
            weights and optimizer states; ``fp32``/``tf32`` keep everything in fp32.
        optimizer: ``adamw`` (two fp32 moments) or ``sgd`` (SGD with momentum, one moment).
        tp / pp: tensor- and pipeline-parallel degrees; data parallelism is devices / (tp·pp).
        virtual_stages: model chunks per pipeline rank (interleaved 1F1B, Narayanan et al. 2021); 1 = plain 1F1B.
        sequence_parallel: Megatron sequence parallelism (shards LayerNorm/dropout activations over TP).
        zero: ZeRO stage 0–3 over the data-parallel group (FSDP full sharding = 3).
        recompute: activation recomputation: none, selective (attention core only), full (every layer), or
            matmuls (keep the outputs of the weight matmuls, recompute everything else: JAX
            ``checkpoint_dots_with_no_batch_dims``, MaxText ``remat_policy: minimal``), or norms (recompute
            the norms, MLA up-projections and the MLP activation, keep the Linear inputs, in FP8 with fp8:
            DeepSeek-V3, arXiv 2412.19437 §3.2.3, §3.3.3).
        flash_attention: fused attention that never stores the s×s score matrix.
        overlap_grad_reduce: the framework overlaps data-parallel gradient communication with the backward
            pass (PyTorch DDP/FSDP, DeepSpeed, Megatron-LM ``--overlap-grad-reduce``); Megatron-LM in 2021
            did not. How much of it hides is the device profile's ``dp_overlap``.
        fused_elementwise: the MLP activation, norms and rotary embeddings run as fused kernels
            (Megatron-LM, torch.compile, fused SwiGLU/RMSNorm/RoPE); False is eager PyTorch (Hugging Face
            modules), whose unfused tanh-GELU (GPT-2's ``gelu_new``) keeps more intermediates for backward
            and makes ~8 ops over memory, and whose RMSNorm and rotary embeddings run 4–5 ops each; its
            optimizer step is PyTorch's default unfused one (AdamW: 8 ops per parameter tensor).
        ep: expert-parallel degree (MoE): the routed experts are split over ``ep`` ranks carved out of the
            data-parallel group (Megatron-Core / DeepSpeed-MoE convention); tokens reach their experts by
            an all-to-all. Must divide the experts and the data-parallel degree.
        capacity_factor: expert capacity as a multiple of the balanced load (GShard/Switch token dropping
            with padded buffers): expert GEMMs and all-to-all messages grow by it. ``None`` = dropless
            routing with a balanced load (Megatron-Core's default).
        schedule: pipeline schedule: ``1f1b``, ``interleaved`` (needs virtual_stages > 1; also implied by
            virtual_stages > 1), ``zb-h1`` (zero-bubble, Qi et al. 2023, arXiv 2401.10241) or ``dualpipe``
            (DeepSeek-V3's bidirectional schedule, arXiv 2412.19437 §3.2.1: two stages' parameters per
            rank, PP+1 micro-batches in flight, expert all-to-all and PP traffic overlapped with compute).
        ep_overlap: share of the expert-parallel all-to-all hidden behind compute, never more than a
            micro-batch's compute; 0 = exposed (default). Megatron-Core's 1F1B all-to-all overlap
            (``--overlap-moe-expert-parallel-comm``) hides 0.335 in the one published A/B pair (model zoo
            Qwen3-235B: 19.7 s -> 17.6 s; docs/estimate.md, "Mixture of experts").
            ``dualpipe`` hides all of it and the PP transfers.
        moe_dispatcher: how tokens reach their experts: ``alltoall`` (default: one copy per (token, expert)
            pair in one NCCL all-to-all — Megatron-Core ``--moe-token-dispatcher-type alltoall``,
            torchtitan, DeepSpeed-MoE) or ``deepep`` (a token once per destination node over the network,
            then once per destination GPU over NVLink — DeepEP, Megatron-Core ``flex`` +
            ``--moe-enable-deepep``; DeepSeek-V3, arXiv 2412.19437 §3.2.2).
        moe_node_limit: the most nodes one token's routed experts may sit on (node-limited routing,
            DeepSeek-V3: 4); ``None`` = the model's group-limited routing (``expert_groups``), else none.
        fp8_params: with fp8, keep the working weights in fp8 (1 byte per parameter instead of 2; the fp32
            master copy stays in the optimizer): Megatron-Core ``--fp8-param-gather``, Transformer Engine
            ``fp8_model_init``; ZeRO/FSDP then gathers fp8 weights. Megatron-Bridge's FP8 recipes turn it on.
        goodput: share of wall time spent on useful training steps (the rest: failures, restarts,
            checkpointing, evaluation). 1.0 counts none of it; Meta reports > 0.9 effective training time
            for Llama 3 405B on 16k GPUs (Dubey et al. 2024, §3.3.4).
    """

    tokens: float
    seq_len: int = 2048
    global_batch: int = 512
    micro_batch: int = 1
    precision: Precision = "bf16"
    optimizer: Optimizer = "adamw"
    tp: int = 1
    pp: int = 1
    virtual_stages: int = 1
    sequence_parallel: bool = False
    zero: int = 1
    recompute: Recompute = "none"
    flash_attention: bool = True
    overlap_grad_reduce: bool = True
    fused_elementwise: bool = True
    goodput: float = 1.0
    ep: int = 1
    capacity_factor: float | None = None
    schedule: Schedule = "1f1b"
    ep_overlap: float = 0.0
    moe_dispatcher: str = "alltoall"
    moe_node_limit: int | None = None
    fp8_params: bool = False

    def __post_init__(self) -> None:
        own = "TrainJob"
        check_choice(own, "moe_dispatcher", self.moe_dispatcher, MOE_DISPATCHERS)
        if self.moe_node_limit is not None:
            check_positive_int(own, "moe_node_limit", self.moe_node_limit)
        check_positive_int(own, "ep", self.ep)
        check_choice(own, "schedule", self.schedule, SCHEDULES)
        if self.capacity_factor is not None:
            check_positive(own, "capacity_factor", self.capacity_factor)
        if self.schedule == "interleaved" and self.virtual_stages == 1:
            raise SpecError(
                "schedule 'interleaved' needs virtual_stages > 1", hint="give virtual_stages=2 (or more)"
            )
        if self.schedule == "dualpipe" and (self.virtual_stages > 1 or self.pp % 2):
            raise SpecError(
                f"schedule 'dualpipe' needs an even pp and virtual_stages = 1, got pp={self.pp}, "
                f"virtual_stages={self.virtual_stages}",
                hint="DualPipe feeds micro-batches from both ends: give an even --pp (DeepSeek-V3: 16)",
            )
        if self.schedule == "zb-h1" and self.virtual_stages > 1:
            raise SpecError(
                "schedule 'zb-h1' is not interleaved: it needs virtual_stages = 1",
                hint="give virtual_stages=1 or schedule='interleaved'",
            )
        check_positive(own, "tokens", self.tokens)
        for field in ("seq_len", "global_batch", "micro_batch", "tp", "pp", "virtual_stages"):
            check_positive_int(own, field, getattr(self, field))
        check_choice(own, "precision", self.precision, PRECISIONS)
        check_choice(own, "optimizer", self.optimizer, OPTIMIZERS)
        check_choice(own, "recompute", self.recompute, RECOMPUTES)
        if self.fp8_params and self.precision != "fp8":
            raise SpecError(
                f"fp8 working weights (--fp8-params, fp8_params=True) need precision 'fp8', got {self.precision!r}",
                hint="pass --precision fp8 with --fp8-params, or drop --fp8-params",
            )
        validate.fraction(self.goodput, api_name(own, "goodput"))
        validate.nonneg_float(self.ep_overlap, api_name(own, "ep_overlap"), maximum=1.0)
        validate.int_range(self.zero, api_name(own, "zero"), 0, 3, exact=True)
        if self.global_batch % self.micro_batch:
            raise SpecError(
                f"global batch ({self.global_batch}) is not divisible by micro-batch ({self.micro_batch})",
                hint="global batch = micro-batch × data-parallel degree × gradient-accumulation steps",
            )
        if self.virtual_stages > 1 and self.pp == 1:
            raise SpecError("virtual_stages > 1 (interleaved pipeline) needs pp > 1")

    @property
    def tokens_per_step(self) -> int:
        return self.global_batch * self.seq_len

    @property
    def steps(self) -> float:
        """Optimizer steps to consume ``tokens`` (fractional: the last step may be partial)."""
        return self.tokens / self.tokens_per_step

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainJob:
        return from_dict_strict(cls, data)  # type: ignore[no-any-return]

    def replace(self, **changes: Any) -> TrainJob:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class ServeJob:
    """An inference (serving) workload on one model replica.

    Attributes:
        prompt_len: prompt tokens per request.
        output_len: generated tokens per request.
        batch: concurrent sequences decoded together.
        tp: tensor-parallel degree of one replica.
        weight_precision: storage format of the weights (int8/int4 = weight-only quantisation).
        kv_precision: storage format of the KV cache.
    """

    prompt_len: int = 1024
    output_len: int = 256
    batch: int = 1
    tp: int = 1
    weight_precision: WeightPrecision = "bf16"
    kv_precision: KvPrecision = "bf16"

    def __post_init__(self) -> None:
        own = "ServeJob"
        for field in ("prompt_len", "output_len", "batch", "tp"):
            check_positive_int(own, field, getattr(self, field))
        check_choice(own, "weight_precision", self.weight_precision, WEIGHT_PRECISIONS)
        check_choice(own, "kv_precision", self.kv_precision, KV_PRECISIONS)

    @property
    def context_len(self) -> int:
        return self.prompt_len + self.output_len

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServeJob:
        return from_dict_strict(cls, data)  # type: ignore[no-any-return]

    def replace(self, **changes: Any) -> ServeJob:
        return dataclasses.replace(self, **changes)
