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


def load_runs() -> list[Run]:
    out: list[Run] = []
    with DATA.open(newline="") as fh:
        for row in csv.DictReader(fh):
            seq, gpus = int(row["seq_len"]), int(row["gpus"])
            mb, ga = int(row["micro_batch"]), int(row["grad_accum"])
            name = row["model"]
            if name in MPT_SHAPES:
                model = mpt(name, seq)
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
            )
            published = float(row["published"])
            if row["metric"] == "tflops_per_gpu":
                flops = train_step_flops(model, seq, seq, RECOMPUTE_CODES[job.recompute])
                published = published * 1e12 / (float(flops.hardware) / seq)
            elif row["metric"] == "tflops_8n_per_gpu":  # 8·N FLOPs per token (fwd + bwd + recompute)
                published = published * 1e12 / (8.0 * count_params(model).total)
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
                )
            )
    return out


def cluster(run: Run) -> Cluster:
    return Cluster(device=run.device, count=run.gpus, inter_node_bw_bytes_per_s=run.inter_node_bw_bytes_per_s)
