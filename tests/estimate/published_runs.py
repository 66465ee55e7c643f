"""Published training runs (tests/estimate/data/published_runs.csv) turned into (model, job, cluster)
through the public interface, shared by the golden test and benchmarks/fit_framework_profiles.py.

MPT shapes: MosaicML llm-foundry scripts/train/yamls/pretrain/mpt-*.yaml (d_model, n_heads, n_layers;
expansion_ratio 4, vocabulary 50368, learned position embeddings of max_seq_len, tied embeddings, no
biases, GELU MLP, LayerNorm); the benchmark table's NumParams column checks them (within 0.2%).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from mlcost.catalog import get_catalog
from mlcost.estimate import count_params, train_step_flops
from mlcost.estimate.flops import RECOMPUTE_CODES
from mlcost.spec import Cluster, ModelSpec, TrainJob

#: One row per published run; ``fused_elementwise`` (0 = eager PyTorch, empty = fused) and
#: ``peak_memory_gib`` (the source's peak memory per GPU, where it reports one) are optional.
DATA = Path(__file__).resolve().parent / "data" / "published_runs.csv"

#: name -> (d_model, n_heads, n_layers)
MPT_SHAPES: dict[str, tuple[int, int, int]] = {
    "mpt-125m": (768, 12, 12),
    "mpt-350m": (1024, 16, 24),
    "mpt-760m": (1536, 12, 24),
    "mpt-1b": (2048, 16, 24),
    "mpt-3b": (2560, 20, 32),
    "mpt-7b": (4096, 32, 32),
    "mpt-13b": (5120, 40, 40),
    "mpt-30b": (7168, 56, 48),
    "mpt-70b": (8192, 64, 80),
}


#: BLOOM-176B (bigscience-workshop/bigscience train/tr11-176B-ml/README.md: 70 layers, hidden 14336, 112 heads,
#: vocabulary padded to 250880, embedding LayerNorm, ALiBi, GELU, dropout 0.1, tied embeddings; 176,247M
#: parameters as transformers' BloomForCausalLM).
BLOOM_176B = ModelSpec(
    name="bloom-176b",
    n_layers=70,
    d_model=14336,
    n_heads=112,
    d_ff=4 * 14336,
    vocab_size=250880,
    max_seq_len=2048,
    mlp="gelu",
    norm="layernorm",
    position="rope",  # ALiBi: no parameters, like rotary embeddings
    tied_embeddings=True,
    qkv_bias=True,
    out_bias=True,
    mlp_bias=True,
    embedding_norm=True,
    dropout=True,
    source="bigscience-workshop/bigscience train/tr11-176B-ml/README.md",
)


#: MaxText's synthetic benchmark models (AI-Hypercomputer/maxtext@76bd53b0f MaxText/configs/base.yml: base_emb_dim
#: 2560, base_num_heads 8, base_mlp_dim 8192, base_num_decoder_layers 16, head_dim 256, mlp_activations
#: ["relu"] (two matrices), vocab_size 32768, logits_via_embedding (tied), RMSNorm, rotary; pyconfig.py
#: get_individual_scales doubles heads and mlp_dim, then emb_dim, then layers per power of two of
#: global_parameter_scale; models.py: one pre-norm feeds attention and MLP in parallel, no biases).
#: name -> (emb_dim, num_heads, mlp_dim, num_decoder_layers). v4 22b/52b set the base dims explicitly.
MAXTEXT_SHAPES: dict[str, tuple[int, int, int, int]] = {
    "maxtext-16b": (5120, 32, 32768, 32),
    "maxtext-32b": (10240, 32, 32768, 32),
    "maxtext-64b": (10240, 32, 32768, 64),
    "maxtext-128b": (10240, 64, 65536, 64),
    "maxtext-256b": (20480, 64, 65536, 64),
    "maxtext-512b": (20480, 64, 65536, 128),
    "maxtext-1024b": (20480, 128, 131072, 128),
    "maxtext-22b": (6144, 24, 24576, 48),
    "maxtext-52b": (12288, 32, 49152, 32),
}


def maxtext(name: str, seq_len: int) -> ModelSpec:
    d, heads, ff, layers = MAXTEXT_SHAPES[name]
    return ModelSpec(
        name=name,
        n_layers=layers,
        d_model=d,
        n_heads=heads,
        head_dim=256,
        d_ff=ff,
        vocab_size=32768,
        max_seq_len=seq_len,
        mlp="gelu",  # relu: two matrices, like GELU
        norm="rmsnorm",
        position="rope",
        tied_embeddings=True,
        norms_per_layer=1,
        source="AI-Hypercomputer/maxtext@76bd53b0f MaxText/configs/base.yml, pyconfig.py, layers/models.py",
    )


#: NeMo 2.0 GPT-3 configs (NVIDIA/NeMo nemo/collections/llm/gpt/model/base.py GPTConfig5B/20B/175B:
#: layers, hidden, ffn_hidden, heads; GPTConfig: tied embeddings, learned absolute positions, vocabulary
#: padded to a multiple of 128 (the GPT-2 tokenizer's 50257 -> 50304); Megatron-Core defaults: LayerNorm,
#: GELU, linear biases). name -> (hidden, heads, ffn_hidden, layers).
NEMO_GPT3_SHAPES: dict[str, tuple[int, int, int, int]] = {
    "nemo-gpt3-5b": (4096, 32, 16384, 24),
    "nemo-gpt3-20b": (6144, 48, 24576, 44),
    "nemo-gpt3-175b": (12288, 96, 49152, 96),
}


def nemo_gpt3(name: str, seq_len: int) -> ModelSpec:
    d, heads, ff, layers = NEMO_GPT3_SHAPES[name]
    return ModelSpec(
        name=name,
        n_layers=layers,
        d_model=d,
        n_heads=heads,
        d_ff=ff,
        vocab_size=50304,
        max_seq_len=seq_len,
        mlp="gelu",
        norm="layernorm",
        position="learned",
        tied_embeddings=True,
        qkv_bias=True,
        out_bias=True,
        mlp_bias=True,
        source="NVIDIA/NeMo nemo/collections/llm/gpt/model/base.py " + name,
    )


def maxtext_flops_per_token(model: ModelSpec, seq_len: int) -> float:
    """FLOPs per token MaxText counted when it reported TF/s per chip (maxtext@76bd53b0f MaxText/train.py
    calculate_training_tflops: 6 x all parameters + causal attention 12·heads·layers·head_dim·s / 2)."""
    attention = 12.0 * model.n_heads * model.n_layers * model.dim_head * seq_len / 2.0
    return 6.0 * count_params(model).total + attention


def mpt(name: str, seq_len: int) -> ModelSpec:
    d, heads, layers = MPT_SHAPES[name]
    return ModelSpec(
        name=name,
        n_layers=layers,
        d_model=d,
        n_heads=heads,
        d_ff=4 * d,
        vocab_size=50368,
        max_seq_len=seq_len,
        mlp="gelu",
        norm="layernorm",
        position="learned",
        tied_embeddings=True,
        source="llm-foundry scripts/train/yamls/pretrain/" + name + ".yaml",
    )


@dataclass(frozen=True)
class Run:
    """One published run. ``published_tokens_per_s_per_gpu`` is the source's figure, or for sources that
    report TF/s per GPU (Megatron-LM, counting recompute FLOPs by their Eq. 3, which mlcost's hardware
    FLOPs equal: tests/estimate/test_golden_megatron.py) that figure divided by the hardware FLOPs per
    token."""

    id: str
    family: str
    device: str
    model: ModelSpec
    job: TrainJob
    gpus: int
    published_tokens_per_s_per_gpu: float
    split: str
    source: str
    inter_node_bw_bytes_per_s: float | None = None
    #: the source's peak memory per GPU (bytes), where it reports one
    published_peak_memory_bytes: float | None = None


def load_runs(path: Path = DATA) -> list[Run]:
    out: list[Run] = []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            seq, gpus = int(row["seq_len"]), int(row["gpus"])
            mb, ga = int(row["micro_batch"]), int(row["grad_accum"])
            name = row["model"]
            if name in MPT_SHAPES:
                model = mpt(name, seq)
            elif name in MAXTEXT_SHAPES:
                model = maxtext(name, seq)
            elif name in NEMO_GPT3_SHAPES:
                model = nemo_gpt3(name, seq)
            elif name == BLOOM_176B.name:
                model = BLOOM_176B
            else:
                model = get_catalog().model(name)
            tp, pp = int(row["tp"]), int(row["pp"])
            job = TrainJob(
                tokens=1e9,
                seq_len=seq,
                global_batch=mb * ga * gpus // (tp * pp),
                micro_batch=mb,
                tp=tp,
                pp=pp,
                virtual_stages=int(row["virtual_stages"]),
                zero=int(row["zero"]),
                recompute=row["recompute"],  # type: ignore[arg-type]
                precision=row["precision"],  # type: ignore[arg-type]
                flash_attention=row["flash_attention"] == "1",
                overlap_grad_reduce=row["overlap_grad_reduce"] == "1",
                # NeMo's performance recipes run sequence parallelism with TP (Megatron-Core practice);
                # torchtitan's TP plan shards norms and their activations along the sequence
                # (SequenceParallel); MaxText shards activations' embed axis over its tensor axis (base.yml
                # logical_axis_rules 'activation_embed' -> 'tensor'), sequence parallelism's memory layout.
                # Megatron-LM 2021 (Narayanan Table 1) and BLOOM predate sequence parallelism.
                sequence_parallel=row["family"] in ("nemo", "maxtext", "torchtitan") and tp > 1,
                # eager PyTorch (unfused norms, activations) unless the row says it was compiled/fused
                fused_elementwise=row.get("fused_elementwise") != "0",
            )
            published = float(row["published"])
            if row["metric"] == "tflops_per_gpu":
                flops = train_step_flops(model, seq, seq, RECOMPUTE_CODES[job.recompute])
                published = published * 1e12 / (float(flops.hardware) / seq)
            elif row["metric"] == "tflops_8n_per_gpu":  # 8·N FLOPs per token (fwd + bwd + recompute)
                published = published * 1e12 / (8.0 * count_params(model).total)
            elif row["metric"] == "tflops_maxtext_per_chip":
                published = published * 1e12 / maxtext_flops_per_token(model, seq)
            elif row["metric"] != "tokens_per_s_per_gpu":
                raise ValueError(f"{row['id']}: unknown metric {row['metric']!r}")
            out.append(
                Run(
                    id=row["id"],
                    family=row["family"],
                    device=row["device"],
                    model=model,
                    job=job,
                    gpus=gpus,
                    published_tokens_per_s_per_gpu=published,
                    split=row["split"],
                    source=row["source"],
                    inter_node_bw_bytes_per_s=(
                        float(row["inter_node_gb_per_s"]) * 1e9 if row["inter_node_gb_per_s"] else None
                    ),
                    published_peak_memory_bytes=(
                        float(row["peak_memory_gib"]) * 2**30 if row.get("peak_memory_gib") else None
                    ),
                )
            )
    return out


def cluster(run: Run) -> Cluster:
    return Cluster(device=run.device, count=run.gpus, inter_node_bw_bytes_per_s=run.inter_node_bw_bytes_per_s)
