"""Published MoE training runs with a step time (tests/estimate/data/published_moe_runs.csv) turned into
(model, job, cluster) through the public interface; ``metric`` is the published figure (a step time, or
tokens/s per GPU); shared by tests/estimate/test_golden_moe_runs.py and
benchmarks/moe_published_runs.py. ``split``: the two model-zoo rows that differ only in the all-to-all
overlap are ``fit`` — they give the share of the all-to-all Megatron-Core's overlap hides
(:func:`megatron_ep_overlap_share`), which the other rows' ``ep_overlap`` uses; every other row is held out
(``test``), nothing else was fitted to them.

Layout mapping: Megatron-Core folds the expert layers onto their own grid (expert TP ``ETP``, expert
parallel ``EP``); mlcost splits routed experts over EP × TP ranks with expert TP = TP, so a published
EP with ETP 1 becomes ``ep = EP / TP`` (the same ranks hold the experts, the same tokens per rank cross the
all-to-all: each rank sends its sequence-parallel share). Sequence parallelism with TP (Megatron-Core
requires it with EP), distributed optimizer = ZeRO-1, Megatron FSDP = ZeRO-3, ``--recompute-modules
layernorm moe_act`` = ``--recompute norms``.

Megatron-Bridge rows: the recipe at the commit named in the source gives the dispatcher (no flex backend =
the model provider's ``alltoall``), the MoE all-to-all overlap (``moe_a2a_overlap`` /
``overlap_moe_expert_parallel_comm`` = ``--ep-overlap 1``) and the recompute modules; its mixed-precision
preset gives ``fp8_params`` (``fp8_param_gather``: on in ``bf16_with_fp8_current_scaling_mixed``, the FP8-CS
rows; off in ``bf16_with_fp8_subchannel_scaling_mixed``, DeepSeek-V3's blockwise H100 row;
src/megatron/bridge/training/mixed_precision.py at the recipe's commit).

Not representable (left out): the Qwen3 A2A row (TP2 EP8 PP32 VPP3: 96 pipeline chunks for 94 layers,
which mlcost refuses) and Qwen3-Next-80B-A3B (gated DeltaNet layers are not modelled); Megatron-Bridge's
GPT-OSS (no preset), its token-dropping rows (capacity not stated), its Blackwell rows (no B200/GB200 device
in the catalog) and its later Qwen3-30B H100 rows (the table's EP 8 disagrees with the recipe's EP 16).
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from mlcost.catalog import get_catalog
from mlcost.spec import Cluster, ModelSpec, TrainJob

DATA = Path(__file__).resolve().parent / "data" / "published_moe_runs.csv"


def qwen3_235b_a22b() -> ModelSpec:
    """Qwen/Qwen3-235B-A22B config.json: hidden 4096, 94 layers, 64 heads, 4 KV heads, head_dim 128, 128
    experts of 1536, top-8, vocabulary 151936 (the rest as Qwen3-30B-A3B)."""
    return (
        get_catalog()
        .model("qwen3-30b-a3b")
        .replace(
            name="qwen3-235b-a22b",
            n_layers=94,
            d_model=4096,
            n_heads=64,
            n_kv_heads=4,
            head_dim=128,
            d_ff=12288,
            expert_d_ff=1536,
        )
    )


def _catalog_model(name: str):  # type: ignore[no-untyped-def]
    return lambda: get_catalog().model(name)


MODELS = {
    "qwen3-235b-a22b": qwen3_235b_a22b,
    "qwen3-30b-a3b": _catalog_model("qwen3-30b-a3b"),
    "deepseek-v3": _catalog_model("deepseek-v3"),
}


@dataclass(frozen=True)
class MoeRun:
    id: str
    model: ModelSpec
    job: TrainJob
    cluster: Cluster
    framework: str
    split: str
    metric: str
    published: float
    source: str


def load(**job_changes: object) -> list[MoeRun]:
    runs = []
    with DATA.open() as f:
        for row in csv.DictReader(f):
            assert int(row["published_ep"]) == int(row["ep"]) * int(row["tp"]) // int(row["published_etp"])
            job = TrainJob(
                tokens=1e12,
                seq_len=int(row["seq_len"]),
                global_batch=int(row["global_batch"]),
                micro_batch=int(row["micro_batch"]),
                tp=int(row["tp"]),
                pp=int(row["pp"]),
                virtual_stages=int(row["virtual_stages"]),
                ep=int(row["ep"]),
                zero=int(row["zero"]),
                precision=row["precision"],  # type: ignore[arg-type]
                overlap_grad_reduce=row["overlap_grad_reduce"] == "1",
                sequence_parallel=int(row["tp"]) > 1,
                recompute=row["recompute"],  # type: ignore[arg-type]
                ep_overlap=float(row["ep_overlap"]),
                moe_dispatcher=row["moe_dispatcher"],
                fp8_params=row["fp8_params"] == "1",
            )
            runs.append(
                MoeRun(
                    id=row["id"],
                    model=MODELS[row["model"]](),
                    job=dataclasses.replace(job, **job_changes),  # type: ignore[arg-type]
                    cluster=Cluster(device=row["device"], count=int(row["gpus"])),
                    framework=row["framework"],
                    split=row["split"],
                    metric=row["metric"],
                    published=float(row["published"]),
                    source=row["source"],
                )
            )
    return runs


def megatron_ep_overlap_share(runs: list[MoeRun] | None = None) -> float:
    """The share of the expert all-to-all Megatron-Core's 1F1B all-to-all overlap hides: the step time the
    model zoo's overlap saves on one layout (19.7 s -> 17.6 s; the rows differ in nothing else) over
    mlcost's exposed all-to-all of the same layout without overlap."""
    from mlcost.estimate import estimate_train

    by_id = {r.id: r for r in (load() if runs is None else runs)}
    plain, overlapped = by_id["q235-h100-xnode-deepep"], by_id["q235-h100-xnode-deepep-a2a-overlap"]
    est = estimate_train(plain.model, plain.job, plain.cluster, framework=plain.framework)
    return (plain.published - overlapped.published) / est.time_breakdown_s["ep_comm_s"]


def predicted(run: MoeRun, step_time_s: float) -> float:
    """The prediction in the row's metric: ``step_time_s`` or ``tokens_per_s_per_gpu``."""
    if run.metric == "step_time_s":
        return step_time_s
    return run.job.global_batch * run.job.seq_len / step_time_s / run.cluster.count
