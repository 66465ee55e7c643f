"""The node-aware expert all-to-all (mlcost.estimate.timing.alltoall_split): the uniform-routing
expectations against a Monte Carlo draw of top-k routing, the single-node case against the flat formula,
and the de-duplication and node limit through estimate_train."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlcost.catalog import get_catalog
from mlcost.errors import SpecError
from mlcost.estimate import estimate_train
from mlcost.estimate.timing import MOE_DISPATCHER_CODES, alltoall_split
from mlcost.spec import Cluster, TrainJob

ALLTOALL, DEEPEP = MOE_DISPATCHER_CODES["alltoall"], MOE_DISPATCHER_CODES["deepep"]


def _monte_carlo(ep: int, per_node: int, k: int, limit: int | None, draws: int = 20000) -> dict[str, float]:
    """Copies a rank sends under uniform routing, counted token by token (experts drawn with replacement,
    ranks node-contiguous, rank 0 sends; a node-limited token first draws its nodes uniformly)."""
    rng = np.random.default_rng(0)
    nodes = ep // per_node
    inter = intra_a2a = inter_dedup = intra_dedup = n_nodes = 0.0
    for _ in range(draws):
        if limit is None:
            ranks = rng.integers(0, ep, size=k)
        else:
            chosen = rng.choice(nodes, size=limit, replace=False)
            ranks = rng.choice(chosen, size=k) * per_node + rng.integers(0, per_node, size=k)
        node_of = ranks // per_node
        inter += np.sum(node_of != 0)
        intra_a2a += np.sum((node_of == 0) & (ranks != 0))
        hit = set(node_of.tolist())
        n_nodes += len(hit)
        inter_dedup += len(hit - {0})
        # per reached node: other GPUs than the receiving one (index 0 of the node) with an expert
        for nd in hit:
            intra_dedup += len(set(ranks[node_of == nd].tolist()) - {nd * per_node})
    return {
        "inter": inter / draws,
        "intra_a2a": intra_a2a / draws,
        "nodes": n_nodes / draws,
        "inter_dedup": inter_dedup / draws,
        "intra_dedup": intra_dedup / draws,
    }


@pytest.mark.parametrize(
    ("ep", "per_node", "k", "limit"), [(32, 8, 8, None), (64, 8, 8, 4), (16, 4, 2, None)]
)
def test_split_matches_uniform_routing(ep: int, per_node: int, k: int, limit: int | None) -> None:
    mc = _monte_carlo(ep, per_node, k, limit)
    node_limit = np.inf if limit is None else limit
    a = alltoall_split(ep, 1, per_node, k, ALLTOALL, node_limit)
    d = alltoall_split(ep, 1, per_node, k, DEEPEP, node_limit)
    assert float(a.inter_copies) == pytest.approx(mc["inter"], rel=0.03)
    assert float(a.intra_copies) == pytest.approx(mc["intra_a2a"], rel=0.05)
    assert float(d.nodes_per_token) == pytest.approx(mc["nodes"], rel=0.03)
    assert float(d.inter_copies) == pytest.approx(mc["inter_dedup"], rel=0.03)
    # the forwarded NVLink copies use the mean k/D experts per reached node (an approximation): 10%
    assert float(d.intra_copies) == pytest.approx(mc["intra_dedup"], rel=0.10)


def test_single_node_is_the_flat_all_to_all_and_deepep_sends_fewer_network_copies() -> None:
    for ep in (2, 4, 8):
        a = alltoall_split(ep, 1, 8, 8, ALLTOALL)
        assert float(a.inter_copies) == 0.0 and float(a.intra_copies) == pytest.approx(8 * (ep - 1) / ep)
    eps = np.array([2, 8, 16, 32, 64, 256])
    a = alltoall_split(eps, 1, 8, 8, ALLTOALL)
    d = alltoall_split(eps, 1, 8, 8, DEEPEP)
    assert np.all(d.inter_copies <= a.inter_copies)
    # inside one node DeepEP sends once per GPU; across nodes it also forwards the arrivals over NVLink
    one = a.nodes == 1.0
    assert np.all(d.intra_copies[one] <= a.intra_copies[one]) and np.all(
        d.intra_copies[~one] > a.intra_copies[~one]
    )
    # a stride as wide as the node: every EP rank on its own node, nothing over NVLink
    wide = alltoall_split(4, 8, 8, 8, DEEPEP)
    assert float(wide.nodes) == 4.0 and float(wide.intra_copies) == 0.0


def test_model_group_limit_and_job_node_limit() -> None:
    """DeepSeek-V3 (n_group 8, topk_group 4) laid out over 8 nodes routes each token to at most 4."""
    model = get_catalog().model("deepseek-v3")
    assert (model.expert_groups, model.expert_groups_per_token) == (8, 4)
    job = dict(
        tokens=1e12, seq_len=4096, global_batch=15360, pp=16, recompute="norms", ep=64, precision="fp8"
    )
    cluster = Cluster(device="h800", count=2048)

    def a2a(**kw: object) -> float:
        est = estimate_train(model, TrainJob(**{**job, **kw}), cluster)  # type: ignore[arg-type]
        return est.time_breakdown_s["ep_comm_s"]

    limited = a2a(moe_dispatcher="deepep")
    assert limited == pytest.approx(a2a(moe_dispatcher="deepep", moe_node_limit=4), rel=1e-12)
    assert limited < a2a(moe_dispatcher="deepep", moe_node_limit=8) < a2a(moe_dispatcher="alltoall")
    with pytest.raises(SpecError, match="--moe-node-limit 9 exceeds the 8 node"):
        a2a(moe_node_limit=9)
    with pytest.raises(SpecError, match="moe_dispatcher"):
        TrainJob(tokens=1e9, moe_dispatcher="nccl")
    with pytest.raises(SpecError, match="moe_node_limit"):
        TrainJob(tokens=1e9, moe_node_limit=0)
    with pytest.raises(SpecError, match="expert_groups"):
        model.replace(expert_groups=7)


def test_group_limited_routing_is_read_from_the_hf_config() -> None:
    """DeepSeek-V3's config.json (topk_method noaux_tc, n_group 8, topk_group 4) gives the catalog's groups;
    DeepSeek-V2-Lite's greedy routing (n_group 1) gives none."""
    from mlcost.spec.hf_config import model_from_hf_config

    v3 = get_catalog().model("deepseek-v3")
    cfg = {
        "model_type": "deepseek_v3",
        "hidden_size": 7168,
        "intermediate_size": 18432,
        "moe_intermediate_size": 2048,
        "num_hidden_layers": 61,
        "num_attention_heads": 128,
        "num_key_value_heads": 128,
        "n_routed_experts": 256,
        "n_shared_experts": 1,
        "num_experts_per_tok": 8,
        "first_k_dense_replace": 3,
        "n_group": 8,
        "topk_group": 4,
        "topk_method": "noaux_tc",
        "q_lora_rank": 1536,
        "kv_lora_rank": 512,
        "qk_nope_head_dim": 128,
        "qk_rope_head_dim": 64,
        "v_head_dim": 128,
        "vocab_size": 129280,
        "max_position_embeddings": 163840,
    }
    parsed = model_from_hf_config(cfg)
    assert (parsed.expert_groups, parsed.expert_groups_per_token) == (
        v3.expert_groups,
        v3.expert_groups_per_token,
    )
    greedy = model_from_hf_config({**cfg, "topk_method": "greedy", "n_group": 1, "topk_group": 1})
    assert greedy.expert_groups == 0


def test_kernel_reports_both_legs_and_the_slower_one_counts() -> None:
    """The kernel's NVLink and network legs of a step: the all-to-all time is the larger one, and each leg
    is its bytes over its link's effective bandwidth (per micro-batch slot)."""
    from mlcost.estimate import build_inputs, validate_layout
    from mlcost.estimate.context import resolve_hardware
    from mlcost.estimate.kernel import train_kernel

    model = get_catalog().model("deepseek-v3")
    cluster = Cluster(device="h800", count=2048)
    hw = resolve_hardware(cluster, get_catalog())
    for dispatcher in ("alltoall", "deepep"):
        job = TrainJob(
            tokens=1e12,
            seq_len=4096,
            global_batch=15360,
            pp=16,
            recompute="norms",
            ep=64,
            moe_dispatcher=dispatcher,
        )
        x = build_inputs(model, job, hw, validate_layout(model, job, cluster.count))
        r = {k: float(v) for k, v in train_kernel(model, x).items()}
        legs = (r["ep_intra_s_per_step"], r["ep_inter_s_per_step"])
        assert r["time_ep_comm_unoverlapped_s"] == pytest.approx(max(legs), rel=1e-12)
        inter_bw = float(x.inter_bw_bytes_per_s) * float(x.inter_comm_eff)
        m = r["n_micro"]
        slots = m + 15.0  # 1F1B, p = 16, v = 1: m micro-batches + p − 1 bubble slots
        assert r["ep_inter_s_per_step"] == pytest.approx(
            r["ep_inter_bytes_per_step"] / m * slots / inter_bw, rel=1e-9
        )


@given(
    ep_log2=st.integers(1, 8),
    stride=st.sampled_from([1, 2, 4, 8]),
    per_node=st.sampled_from([4, 8]),
    k=st.integers(1, 16),
    limit=st.integers(1, 64),
)
def test_split_invariants(ep_log2: int, stride: int, per_node: int, k: int, limit: int) -> None:
    """The alltoall split only redistributes the flat all-to-all: its NVLink + network copies are the
    k·(ep − 1)/ep that leave the GPU. DeepEP never sends more over the network, and a tighter node limit
    never sends more."""
    ep = 2**ep_log2
    a = alltoall_split(ep, stride, per_node, k, ALLTOALL)
    assert float(a.intra_copies + a.inter_copies) == pytest.approx(k * (ep - 1) / ep, rel=1e-12)
    free = alltoall_split(ep, stride, per_node, k, DEEPEP)
    limited = alltoall_split(ep, stride, per_node, k, DEEPEP, limit)
    assert float(free.inter_copies) <= float(a.inter_copies) + 1e-12
    assert float(limited.inter_copies) <= float(free.inter_copies) + 1e-12
    assert 1.0 - 1e-12 <= float(limited.nodes_per_token) <= min(limit, float(limited.nodes), k) + 1e-12
    assert float(limited.intra_copies) >= 0.0
