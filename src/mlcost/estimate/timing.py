"""Time models: roofline compute per op class, collectives, pipeline schedule.

* **GEMMs**: ``flops / (peak · eff)`` with ``eff = matmul_eff_max · g / (g + matmul_half_dim)``, where
  ``g`` is the smallest GEMM dimension a device sees (hidden/TP, or the tokens of a micro-batch) — small
  matrices run further from peak.
* **Attention core**: ``flops / (peak · attention_eff)``.
* **Memory-bound work** (norms, activations, residuals, softmax without flash, the optimizer step):
  ``bytes / (bandwidth · mem_bw_eff)``.
* **Collectives** (ring algorithms, Thakur et al. 2005; NCCL's bus-bandwidth convention): all-reduce
  moves 2·(n−1)/n·S per device, reduce-scatter and all-gather (n−1)/n·S each, over the slowest link the
  group spans, at ``comm_eff`` of its nominal bandwidth.
* **1F1B pipeline** (Narayanan et al. 2021): step = (m + (p−1)/v) · t_micro-batch, where the bubble
  (p−1)/v is divided by the interleaving factor v.
* **ZB-H1 pipeline** (Qi et al. 2023, "Zero Bubble Pipeline Parallelism", arXiv 2401.10241, §3.1): the
  backward is split into the input gradient B and the weight gradient W, and W fills the bubble; with the
  same peak activation memory as 1F1B the bubble shrinks from (p−1)(T_F + T_B + T_W) to
  (p−1)(T_F + T_B − T_W). With T_F = T_B = T_W (a forward each) that is 1/3 of 1F1B's; full recomputation
  adds a forward to B (bubble fraction (1 + 2 − 1)/(1 + 2 + 1) = 1/2).
* **Expert-parallel all-to-all** (dispatch and combine, forward and backward), node-aware
  (:func:`alltoall_split`): of a device's routed token copies (tokens · top-k · capacity · h elements with
  the ``alltoall`` dispatcher; one per destination node over the network and one per destination GPU over
  NVLink with ``deepep``) the share whose expert sits on the same node crosses NVLink, the rest the
  network, both at once: time = max(NVLink bytes / NVLink bandwidth, network bytes / network bandwidth)
  (an NCCL all-to-all is a group of send/receive calls to every peer that "progress independently", NCCL
  user guide, "Point-to-point communication"; DeepEP pipelines its network and NVLink legs, DeepSeek-V3
  §3.2.2 "fully overlapped").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


def matmul_efficiency(g: ArrayLike, eff_max: ArrayLike, half_dim: ArrayLike) -> np.ndarray:
    """Fraction of peak reached by GEMMs whose smallest dimension is ``g`` (elements)."""
    g_a = np.asarray(g, dtype=np.float64)
    return np.asarray(eff_max, dtype=np.float64) * g_a / (g_a + np.asarray(half_dim, dtype=np.float64))


def link_bandwidth(
    group_size: ArrayLike,
    stride: ArrayLike,
    devices_per_node: ArrayLike,
    intra_bw: ArrayLike,
    inter_bw: ArrayLike,
    intra_eff: ArrayLike,
    inter_eff: ArrayLike,
    rails: ArrayLike | None = None,
) -> np.ndarray:
    """Effective per-device bandwidth (bytes/s) of a communication group of ``group_size`` ranks spaced
    ``stride`` ranks apart: intra-node if the whole group fits in one node, else inter-node.

    ``rails`` (a profile's ``extra.ring_rails``; None = 1): ring collectives of a node-spanning group run
    one ring per network adapter (NCCL channels), so with k = devices_per_node / stride of the group's
    ranks in a node the group moves min(k, rails) adapters' worth of bandwidth, never more than the
    intra-node links."""
    span = np.asarray(group_size, dtype=np.float64) * np.asarray(stride, dtype=np.float64)
    dpn = np.asarray(devices_per_node, dtype=np.float64)
    inside = span <= dpn
    intra = np.asarray(intra_bw, dtype=np.float64) * np.asarray(intra_eff, dtype=np.float64)
    inter = np.asarray(inter_bw, dtype=np.float64) * np.asarray(inter_eff, dtype=np.float64)
    if rails is not None:
        per_node = np.clip(np.floor(dpn / np.asarray(stride, dtype=np.float64)), 1.0, None)
        inter = np.minimum(inter * np.minimum(per_node, np.asarray(rails, dtype=np.float64)), intra)
    return np.where(inside, intra, inter)


def allreduce_time_s(size_bytes: ArrayLike, n: ArrayLike, bw_bytes_per_s: ArrayLike) -> np.ndarray:
    """Ring all-reduce of ``size_bytes`` over ``n`` ranks (0 when n == 1). Units: s."""
    n_a = np.asarray(n, dtype=np.float64)
    return (
        2.0
        * (n_a - 1.0)
        / n_a
        * np.asarray(size_bytes, dtype=np.float64)
        / np.asarray(bw_bytes_per_s, dtype=np.float64)
    )


def allgather_time_s(size_bytes: ArrayLike, n: ArrayLike, bw_bytes_per_s: ArrayLike) -> np.ndarray:
    """Ring all-gather (or reduce-scatter) of a ``size_bytes`` result over ``n`` ranks. Units: s."""
    n_a = np.asarray(n, dtype=np.float64)
    return (
        (n_a - 1.0)
        / n_a
        * np.asarray(size_bytes, dtype=np.float64)
        / np.asarray(bw_bytes_per_s, dtype=np.float64)
    )


#: Integer codes of pipeline schedules in vectorised inputs (1F1B and interleaved share the formula).
SCHEDULE_CODES: dict[str, int] = {"1f1b": 0, "interleaved": 0, "zb-h1": 1, "dualpipe": 2}


def bubble_fraction(schedule: ArrayLike, recompute: ArrayLike = 0, pp: ArrayLike = 2) -> np.ndarray:
    """Bubble of a schedule relative to 1F1B's (p−1)(F + B): 1 for 1F1B; ZB-H1's
    (T_F + T_B − T_W) / (T_F + T_B + T_W) with T_F = T_W = 1 forward and T_B = 1 (+1 with full recompute);
    DualPipe's (p/2 − 1)(F&B + B − 3W) / ((p − 1)(F + B)) (DeepSeek-V3, arXiv 2412.19437 §3.2.1 Table 2)
    with F = W = 1, B = 2 (+1 with full recompute) and F&B = F + B (overlap hides communication, not
    compute)."""
    full = (np.asarray(recompute) == 2).astype(np.float64)
    zb = (1.0 + (1.0 + full) - 1.0) / (1.0 + (1.0 + full) + 1.0)
    sched = np.asarray(schedule)
    p = np.asarray(pp, dtype=np.float64)
    f, b, w = 1.0, 2.0 + full, 1.0
    dual = np.maximum(p / 2.0 - 1.0, 0.0) * (f + b + b - 3.0 * w) / (np.maximum(p - 1.0, 1.0) * (f + b))
    return np.where(
        sched == SCHEDULE_CODES["zb-h1"], zb, np.where(sched == SCHEDULE_CODES["dualpipe"], dual, 1.0)
    )


def pipeline_time_s(
    t_micro_s: ArrayLike,
    n_micro: ArrayLike,
    pp: ArrayLike,
    virtual: ArrayLike,
    bubble: ArrayLike = 1.0,
) -> np.ndarray:
    """1F1B (interleaved when ``virtual`` > 1) schedule time for ``n_micro`` micro-batches; ``bubble`` scales
    the (p−1)/v bubble (:func:`bubble_fraction`, e.g. ZB-H1). Units: s."""
    p = np.asarray(pp, dtype=np.float64)
    return np.asarray(t_micro_s, dtype=np.float64) * (
        np.asarray(n_micro, dtype=np.float64)
        + (p - 1.0) / np.asarray(virtual, dtype=np.float64) * np.asarray(bubble, dtype=np.float64)
    )


#: Token dispatchers of the expert-parallel all-to-all (codes in :class:`~mlcost.estimate.kernel.TrainInputs`):
#: ``alltoall`` sends one copy per (token, expert) pair through one NCCL all-to-all (Megatron-Core
#: ``--moe-token-dispatcher-type alltoall``, torchtitan, DeepSpeed-MoE); ``deepep`` sends a token once per
#: destination node over the network and once per destination GPU over NVLink, forwarding inside the node
#: (DeepEP, Megatron-Core ``flex`` + ``--moe-enable-deepep``; DeepSeek-V3, arXiv 2412.19437 §3.2.2).
MOE_DISPATCHER_CODES: dict[str, int] = {"alltoall": 0, "deepep": 1}


@dataclass(frozen=True)
class AllToAllSplit:
    """Where one expert-parallel all-to-all's bytes go, per source rank and per token of it.

    Fields (arrays): ``nodes`` = N, the nodes the EP group spans; ``nodes_per_token`` = distinct nodes a
    token's routed experts sit on; ``intra_copies`` / ``inter_copies`` = token copies per token that cross
    NVLink / the network. Multiply a copy count by tokens × d_model × bytes per element for bytes."""

    nodes: np.ndarray
    nodes_per_token: np.ndarray
    intra_copies: np.ndarray
    inter_copies: np.ndarray


def alltoall_split(
    ep: ArrayLike,
    stride: ArrayLike,
    devices_per_node: ArrayLike,
    top_k: float,
    dispatcher: ArrayLike,
    node_limit: ArrayLike = np.inf,
) -> AllToAllSplit:
    """Node-aware traffic of one all-to-all over ``ep`` ranks spaced ``stride`` apart, laid out
    node-contiguously: N = ep·stride / devices_per_node nodes (at least 1, at most ep) with r = ep / N EP
    ranks each; uniform routing (each of a token's k experts independently uniform over the experts, so
    over ranks and nodes).

    A token's experts sit on D = M·(1 − (1 − 1/M)^k) distinct nodes, M = min(node_limit, N) (node-limited
    routing: at most M nodes, uniform over them). ``alltoall`` (code 0): k copies per token; (1 − 1/N) of
    them leave the node, (r − 1)/ep stay on it but leave the GPU. ``deepep`` (code 1): the token goes once
    to each of its D nodes, (1 − 1/N) of them remote (sent once over the network, to the same-index GPU
    there); on each of the D nodes it is then sent over NVLink once to every other GPU holding one of its
    k/D experts there: (r − 1)·(1 − (1 − 1/r)^(k/D)) copies."""
    ep_a = np.asarray(ep, dtype=np.float64)
    span = ep_a * np.asarray(stride, dtype=np.float64) / np.asarray(devices_per_node, dtype=np.float64)
    nodes = np.clip(span, 1.0, np.maximum(ep_a, 1.0))
    r = ep_a / nodes
    k = float(top_k)
    away = 1.0 - 1.0 / nodes
    deepep = np.asarray(dispatcher) == MOE_DISPATCHER_CODES["deepep"]
    m = np.minimum(np.asarray(node_limit, dtype=np.float64), nodes)
    d = m * (1.0 - (1.0 - 1.0 / m) ** k)
    fwd = (r - 1.0) * (1.0 - (1.0 - 1.0 / r) ** (k / d))
    return AllToAllSplit(
        nodes=nodes,
        nodes_per_token=d,
        intra_copies=np.where(deepep, d * fwd, k * (r - 1.0) / ep_a),
        inter_copies=np.where(deepep, d, k) * away,
    )


def hierarchical_alltoall_time_s(
    copy_bytes: ArrayLike,
    split: AllToAllSplit,
    intra_bw_bytes_per_s: ArrayLike,
    inter_bw_bytes_per_s: ArrayLike,
) -> tuple[np.ndarray, np.ndarray]:
    """NVLink and network time of one all-to-all whose token copies are ``copy_bytes`` each (all the
    tokens of a device: tokens · h · bytes per element · capacity); the all-to-all takes the larger of the
    two (both legs run at once). Units: s."""
    c = np.asarray(copy_bytes, dtype=np.float64)
    intra = c * split.intra_copies / np.asarray(intra_bw_bytes_per_s, dtype=np.float64)
    inter = c * split.inter_copies / np.asarray(inter_bw_bytes_per_s, dtype=np.float64)
    return intra, inter


def alltoall_time_s(size_bytes: ArrayLike, n: ArrayLike, bw_bytes_per_s: ArrayLike) -> np.ndarray:
    """All-to-all of ``size_bytes`` per device over ``n`` ranks: (n−1)/n of it leaves the device. Units: s."""
    n_a = np.asarray(n, dtype=np.float64)
    return (
        (n_a - 1.0)
        / n_a
        * np.asarray(size_bytes, dtype=np.float64)
        / np.asarray(bw_bytes_per_s, dtype=np.float64)
    )
