"""Scaling laws for choosing a model size: the Chinchilla parametric loss, the compute-optimal allocation,
the tokens a size needs to reach a target loss, and the inference-aware optimum of Sardana et al. 2023.

Notation (the code uses the same symbols):

* ``N`` parameters, ``D`` training tokens, ``C = 6·N·D`` training FLOPs.
* Loss ``L(N, D) = E + A / N^α + B / D^β`` (Hoffmann et al. 2022, "Training Compute-Optimal Large
  Language Models", eq. 2, Approach 3). ``E`` is the irreducible loss: no (N, D) gets below it.
* **Compute-optimal** (min L s.t. 6·N·D = C), closed form (Hoffmann et al. eq. 4):
  ``N*(C) = G·(C/6)^a``, ``D*(C) = G⁻¹·(C/6)^b`` with ``G = (αA / (βB))^(1/(α+β))``,
  ``a = β/(α+β)``, ``b = α/(α+β)``.
* **Tokens to reach a loss** at size N: ``D(N, L) = (B / (L − E − A/N^α))^(1/β)``; finite only for
  ``N > N_min(L) = (A / (L − E))^(1/α)``.
* **Inference-aware** (Sardana et al. 2023, "Beyond Chinchilla-Optimal: Accounting for Inference in
  Language Model Scaling Laws"): minimise ``F(N) = 6·N·D(N, L) + 2·N·D_inf`` over N, where ``D_inf`` is
  the tokens processed at inference over the model's life. With ``r = L − E − A·N^−α`` and
  ``q = αA·N^−α / (β·r)`` the first-order condition is ``6·D·(1 − q) + 2·D_inf = 0``. For ``D_inf = 0``
  it gives the closed form ``A·N^−α = β(L − E)/(α + β)``, the compute-optimal point on the loss
  contour; for ``D_inf > 0`` the root lies between ``N_min`` and that point (smaller model, more tokens)
  and is found with :func:`scipy.optimize.brentq` in log N.

Constants: Hoffmann et al. 2022 Approach 3 (E=1.69, A=406.4, B=410.7, α=0.34, β=0.28) and the
replication by Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt" (E=1.82, A=482.01,
B=2085.43, α=0.3478, β=0.3658), who found the published Approach-3 constants inconsistent with
Hoffmann's own Approaches 1 and 2; their refit agrees with them (≈70B params, ≈1.4T tokens at the Gopher
budget of 5.76e23 FLOPs), the published constants put the optimum near 32B params and 3.0T tokens.
Losses are nats per token on the data the laws were fitted to (MassiveText); read them as relative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mlcost.errors import SpecError, UnknownNameError

#: Training FLOPs per parameter per token (forward 2 + backward 4), as in C = 6·N·D.
TRAIN_FLOPS_PER_PARAM_TOKEN = 6.0
#: Inference FLOPs per parameter per token (forward only), as in Sardana et al. 2023.
INFERENCE_FLOPS_PER_PARAM_TOKEN = 2.0


@dataclass(frozen=True)
class ScalingLaw:
    """Chinchilla-form parametric loss ``L(N, D) = E + A/N^α + B/D^β``.

    Attributes:
        name: ``hoffmann`` or ``besiroglu``.
        E: irreducible loss. Units: nats per token.
        A, alpha: parameter term coefficient and exponent.
        B, beta: data term coefficient and exponent.
        source: citation.
    """

    name: str
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "E": self.E,
            "A": self.A,
            "B": self.B,
            "alpha": self.alpha,
            "beta": self.beta,
            "source": self.source,
        }

    # ---- the law --------------------------------------------------------------------------------
    def loss(self, n_params: ArrayLike, tokens: ArrayLike) -> NDArray[np.float64]:
        """``L(N, D)``. Units: nats per token. Vectorised."""
        N = np.asarray(n_params, dtype=np.float64)
        D = np.asarray(tokens, dtype=np.float64)
        return np.asarray(self.E + self.A / N**self.alpha + self.B / D**self.beta, dtype=np.float64)

    def compute_optimal(self, train_flops: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(N*, D*)`` minimising L subject to ``6·N·D = C`` (closed form, module docstring). Vectorised."""
        C = np.asarray(train_flops, dtype=np.float64)
        if np.any(~(C > 0)):
            raise SpecError(f"training FLOPs must be positive, got {train_flops!r}")
        s = self.alpha + self.beta
        G = (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / s)
        n_opt = G * (C / TRAIN_FLOPS_PER_PARAM_TOKEN) ** (self.beta / s)
        d_opt = (C / TRAIN_FLOPS_PER_PARAM_TOKEN) ** (self.alpha / s) / G
        return np.asarray(n_opt, dtype=np.float64), np.asarray(d_opt, dtype=np.float64)

    # ---- quality targets ------------------------------------------------------------------------
    def check_target(self, target_loss: float) -> None:
        """Raise :class:`SpecError` when no finite model reaches ``target_loss`` (it is at or below E)."""
        if not math.isfinite(target_loss) or target_loss <= self.E:
            raise SpecError(
                f"target loss {target_loss:g} is unreachable: the {self.name} scaling law's irreducible loss "
                f"is E = {self.E:g}, and no model size or data reaches E or below",
                hint=f"choose --target-loss above {self.E:g} (e.g. {self.E + 0.25:.2f})",
            )

    def min_params_for_loss(self, target_loss: float) -> float:
        """``N_min(L) = (A/(L−E))^(1/α)``: below it even infinite data misses the target. Units: params."""
        self.check_target(target_loss)
        return float((self.A / (target_loss - self.E)) ** (1.0 / self.alpha))

    def tokens_for_loss(self, n_params: ArrayLike, target_loss: float) -> NDArray[np.float64]:
        """``D(N, L)``: training tokens at which size N reaches ``target_loss``; ``inf`` where N is too small
        (N ≤ N_min). Raises :class:`SpecError` for a target at or below E. Vectorised over N."""
        self.check_target(target_loss)
        N = np.asarray(n_params, dtype=np.float64)
        r = target_loss - self.E - self.A / N**self.alpha
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(r > 0, (self.B / np.where(r > 0, r, 1.0)) ** (1.0 / self.beta), np.inf)
        return np.asarray(d, dtype=np.float64)

    def loss_optimal_params(self, target_loss: float) -> float:
        """Compute-optimal size for a target loss: the point of the loss contour with the fewest training
        FLOPs, ``N = (A(α+β) / (β(L−E)))^(1/α)`` (Sardana's optimum with no inference). Units: params."""
        self.check_target(target_loss)
        s = self.alpha + self.beta
        return float((self.A * s / (self.beta * (target_loss - self.E))) ** (1.0 / self.alpha))

    def inference_aware_params(self, target_loss: float, inference_tokens: float) -> float:
        """Sardana et al. 2023: the N minimising ``6·N·D(N, L) + 2·N·D_inf`` (module docstring). Units: params."""
        if not math.isfinite(inference_tokens) or inference_tokens < 0:
            raise SpecError(
                f"inference tokens must be a non-negative finite number, got {inference_tokens!r}"
            )
        n0 = self.loss_optimal_params(target_loss)
        if inference_tokens == 0:
            return n0
        from scipy.optimize import brentq

        log_b, log_dinf = math.log(self.B), math.log(inference_tokens)

        def g(log_n: float) -> float:
            # First-order condition divided by 2·D (positive): 3(1 − q) + D_inf / D.
            a_term = self.A * math.exp(-self.alpha * log_n)
            r = target_loss - self.E - a_term
            q = self.alpha * a_term / (self.beta * r)
            log_d = (log_b - math.log(r)) / self.beta
            return 3.0 * (1.0 - q) + math.exp(min(log_dinf - log_d, 700.0))

        hi = math.log(n0)
        lo = math.log(self.min_params_for_loss(target_loss))
        # Step towards N_min until the condition turns negative (q → ∞ there).
        step = (hi - lo) / 2.0
        x = hi - step
        for _ in range(200):
            if g(x) < 0:
                break
            step /= 2.0
            x = lo + step
        else:  # pragma: no cover - the bracket always closes for finite D_inf
            raise SpecError("could not bracket the inference-aware optimum")
        return float(math.exp(brentq(g, x, hi, xtol=1e-12, rtol=1e-12, maxiter=500)))

    def total_flops(
        self, n_params: ArrayLike, target_loss: float, inference_tokens: float
    ) -> NDArray[np.float64]:
        """Sardana's objective ``6·N·D(N, L) + 2·N·D_inf``. Units: FLOPs. Vectorised over N."""
        N = np.asarray(n_params, dtype=np.float64)
        D = self.tokens_for_loss(N, target_loss)
        return np.asarray(
            TRAIN_FLOPS_PER_PARAM_TOKEN * N * D + INFERENCE_FLOPS_PER_PARAM_TOKEN * N * inference_tokens,
            dtype=np.float64,
        )


HOFFMANN = ScalingLaw(
    name="hoffmann",
    E=1.69,
    A=406.4,
    B=410.7,
    alpha=0.34,
    beta=0.28,
    source="Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, Approach 3 fitted constants",
)
BESIROGLU = ScalingLaw(
    name="besiroglu",
    E=1.82,
    A=482.01,
    B=2085.43,
    alpha=0.3478,
    beta=0.3658,
    source="Besiroglu et al. 2024, Chinchilla Scaling: A replication attempt (refit of Hoffmann's Approach 3)",
)
SCALING_LAWS: dict[str, ScalingLaw] = {law.name: law for law in (HOFFMANN, BESIROGLU)}


def get_scaling_law(name: str) -> ScalingLaw:
    """A scaling law by name (``hoffmann`` or ``besiroglu``)."""
    try:
        return SCALING_LAWS[name.lower()]
    except KeyError:
        raise UnknownNameError("scaling law", name, SCALING_LAWS) from None


# ---- model shapes for an arbitrary parameter count -----------------------------------------------

#: Shape families for :func:`model_for_params`: vocabulary, key/value heads (None = multi-head), context.
FAMILIES: dict[str, dict[str, Any]] = {
    "llama": {
        "vocab_size": 32000,
        "kv_heads": None,
        "max_seq_len": 4096,
        "source": "Llama-2 shape (vocab 32000, multi-head attention, untied head)",
    },
    "llama3": {
        "vocab_size": 128256,
        "kv_heads": 8,
        "max_seq_len": 8192,
        "source": "Llama-3 shape (vocab 128256, 8 key/value heads, untied head)",
    },
}
#: Hidden size per layer aimed at: d_model / n_layers = 128 (Llama-2 7B 4096/32, 13B 5120/40; Llama-3 8B).
ASPECT_D_MODEL_PER_LAYER = 128.0
#: Head size of generated shapes (Llama).
HEAD_DIM = 128
#: Largest relative parameter-count error a generated shape may have.
PARAM_TOLERANCE = 0.03


def _llama_shape(family: str, d_model: int, n_layers: int, name: str) -> Any:
    from mlcost.spec.model import ModelSpec

    fam = FAMILIES[family]
    n_heads = d_model // HEAD_DIM
    kv = fam["kv_heads"]
    kv_heads = None if kv is None or n_heads % kv else kv
    d_ff = 256 * math.ceil(8.0 * d_model / 3.0 / 256.0)  # SwiGLU 8/3·h rounded up to 256 (Llama)
    return ModelSpec(
        name=name,
        n_layers=n_layers,
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=kv_heads,
        d_ff=d_ff,
        vocab_size=fam["vocab_size"],
        max_seq_len=fam["max_seq_len"],
        source=f"mlcost.finance.scaling.model_for_params: {fam['source']}; d_model/n_layers ≈ "
        f"{ASPECT_D_MODEL_PER_LAYER:g}, head_dim {HEAD_DIM}, d_ff = 8/3·d_model rounded up to 256",
    )


def size_label(n_params: float) -> str:
    """'7b', '1.3b', '350m' style label of a parameter count."""
    if n_params >= 1e9:
        return f"{n_params / 1e9:.3g}b"
    return f"{n_params / 1e6:.3g}m"


def model_for_params(n_params: float, family: str = "llama", *, name: str | None = None) -> Any:
    """A Llama-style :class:`~mlcost.spec.ModelSpec` with about ``n_params`` parameters (total, embeddings
    and LM head included; within :data:`PARAM_TOLERANCE`).

    Rule: head_dim 128, d_model a multiple of 128, SwiGLU d_ff = 8/3·d_model rounded up to 256, and the
    number of layers that brings the count closest to ``n_params``. Among shapes within the tolerance it
    prefers head counts divisible by 8 (so TP up to 8 works) for d_model ≥ 1024, then d_model/n_layers
    closest to 128 (in log ratio). Raises :class:`SpecError` when no shape is within the tolerance
    (too small a count for the vocabulary)."""
    from mlcost.estimate.params import count_params

    if family not in FAMILIES:
        raise UnknownNameError("model family", family, FAMILIES)
    if not math.isfinite(n_params) or n_params <= 0:
        raise SpecError(f"parameter count must be positive, got {n_params!r}")
    label = name or f"{family}-{size_label(n_params)}"
    best: tuple[tuple[float, ...], Any] | None = None
    # ~12·d_model² parameters per layer and n_layers = d_model / aspect give d_model ≈ (aspect·N/12)^(1/3);
    # search a factor of 4 either side of it.
    guess = (ASPECT_D_MODEL_PER_LAYER * n_params / 12.0) ** (1.0 / 3.0)
    start = max(2 * HEAD_DIM, HEAD_DIM * int(guess / 4 / HEAD_DIM))
    stop = max(start, HEAD_DIM * math.ceil(guess * 4 / HEAD_DIM))
    for d_model in range(start, stop + 1, HEAD_DIM):
        one = count_params(_llama_shape(family, d_model, 1, label)).total
        two = count_params(_llama_shape(family, d_model, 2, label)).total
        per_layer, fixed = two - one, 2 * one - two
        layers = round((n_params - fixed) / per_layer)
        if layers < 1:
            if fixed > n_params * (1 + PARAM_TOLERANCE):
                break  # embeddings alone are too large from here on
            layers = 1
        total = fixed + layers * per_layer
        err = abs(total / n_params - 1.0)
        n_heads = d_model // HEAD_DIM
        heads_ok = n_heads % 8 == 0 or d_model < 1024
        aspect = abs(math.log(d_model / layers / ASPECT_D_MODEL_PER_LAYER))
        key = (0.0, float(not heads_ok), aspect) if err <= PARAM_TOLERANCE else (1.0, err, aspect)
        if best is None or key < best[0]:
            best = (key, (d_model, layers))
    if best is None or best[0][0] > 0:
        raise SpecError(
            f"no {family} shape has {n_params:.3g} parameters within {PARAM_TOLERANCE:.0%}",
            hint="the vocabulary's embeddings alone are larger; choose a larger size or a preset model",
        )
    d_model, layers = best[1]
    return _llama_shape(family, d_model, layers, label)
