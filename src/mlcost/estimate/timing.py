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
"""

from __future__ import annotations

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
) -> np.ndarray:
    """Effective per-device bandwidth (bytes/s) of a communication group of ``group_size`` ranks spaced
    ``stride`` ranks apart: intra-node if the whole group fits in one node, else inter-node."""
    span = np.asarray(group_size, dtype=np.float64) * np.asarray(stride, dtype=np.float64)
    inside = span <= np.asarray(devices_per_node, dtype=np.float64)
    return np.where(
        inside,
        np.asarray(intra_bw, dtype=np.float64) * np.asarray(intra_eff, dtype=np.float64),
        np.asarray(inter_bw, dtype=np.float64) * np.asarray(inter_eff, dtype=np.float64),
    )


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


def pipeline_time_s(
    t_micro_s: ArrayLike, n_micro: ArrayLike, pp: ArrayLike, virtual: ArrayLike
) -> np.ndarray:
    """1F1B (interleaved when ``virtual`` > 1) schedule time for ``n_micro`` micro-batches. Units: s."""
    p = np.asarray(pp, dtype=np.float64)
    return np.asarray(t_micro_s, dtype=np.float64) * (
        np.asarray(n_micro, dtype=np.float64) + (p - 1.0) / np.asarray(virtual, dtype=np.float64)
    )
