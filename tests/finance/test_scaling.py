"""Scaling laws: Chinchilla's compute-optimal allocation, tokens to a target loss, the inference-aware
optimum of Sardana et al. 2023, and model shapes for a parameter count."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from mlcost.errors import SpecError, UnknownNameError
from mlcost.estimate.params import count_params
from mlcost.finance.scaling import (
    BESIROGLU,
    HOFFMANN,
    PARAM_TOLERANCE,
    SCALING_LAWS,
    get_scaling_law,
    model_for_params,
)

GOPHER_BUDGET_FLOPS = 5.76e23  # Hoffmann et al. 2022: Gopher's compute, spent on Chinchilla 70B × 1.4T


def test_besiroglu_reproduces_chinchilla() -> None:
    """Chinchilla itself: 70B parameters on 1.4T tokens at 5.76e23 FLOPs (Hoffmann et al. 2022, sec. 4).

    The Besiroglu et al. 2024 refit gives 72.2B and 1.33T. Tolerance 10%: Hoffmann's own three approaches
    disagree by about that much at this budget (Approach 1, Table 3: 67B and 1.5T, i.e. −4% and +7%
    from the model they trained), so a closer match would be an accident of the fit."""
    n, d = BESIROGLU.compute_optimal(GOPHER_BUDGET_FLOPS)
    assert float(n) == pytest.approx(70e9, rel=0.10)
    assert float(d) == pytest.approx(1.4e12, rel=0.10)
    assert 6 * float(n) * float(d) == pytest.approx(GOPHER_BUDGET_FLOPS, rel=1e-12)


def test_hoffmann_published_constants_are_data_heavy() -> None:
    """The rounded Approach-3 constants (E=1.69, A=406.4, B=410.7, α=0.34, β=0.28) put the Gopher-budget
    optimum at ~32B params and ~3T tokens (~93 tokens/param) — the inconsistency with Approaches 1-2
    that Besiroglu et al. 2024 report. Pin the closed form so a change of constants is noticed."""
    n, d = HOFFMANN.compute_optimal(GOPHER_BUDGET_FLOPS)
    assert float(n) == pytest.approx(32.19e9, rel=0.01)
    assert float(d) == pytest.approx(2.982e12, rel=0.01)
    # Hoffmann Table 2: Approach 3 exponents a = 0.46, b = 0.54.
    assert HOFFMANN.beta / (HOFFMANN.alpha + HOFFMANN.beta) == pytest.approx(0.46, abs=0.01)


@pytest.mark.parametrize("law", list(SCALING_LAWS.values()), ids=list(SCALING_LAWS))
@pytest.mark.parametrize("budget", [1e20, 5.76e23, 1e26])
def test_compute_optimal_closed_form_matches_numerical_minimum(law, budget: float) -> None:
    def loss_at(log_n: float) -> float:
        n = math.exp(log_n)
        return float(law.loss(n, budget / (6 * n)))

    res = minimize_scalar(
        loss_at, bounds=(math.log(1e6), math.log(1e14)), method="bounded", options={"xatol": 1e-10}
    )
    n, _ = law.compute_optimal(budget)
    assert math.exp(res.x) == pytest.approx(float(n), rel=1e-4)


def test_compute_optimal_is_vectorised() -> None:
    n, d = HOFFMANN.compute_optimal(np.array([1e21, 1e22, 1e23]))
    assert n.shape == d.shape == (3,)
    assert np.all(np.diff(n) > 0) and np.all(np.diff(d) > 0)


@pytest.mark.parametrize("law", list(SCALING_LAWS.values()), ids=list(SCALING_LAWS))
def test_tokens_for_loss_inverts_the_law(law) -> None:
    target = law.E + 0.3
    n = np.array([1e10, 1e11, 1e12])  # all above N_min (≈1.6e9 for hoffmann at E + 0.3)
    d = law.tokens_for_loss(n, target)
    np.testing.assert_allclose(law.loss(n, d), target, rtol=1e-12)
    # Larger models need fewer tokens; below N_min the target is out of reach.
    assert np.all(np.diff(d) < 0)
    n_min = law.min_params_for_loss(target)
    assert math.isinf(float(law.tokens_for_loss(n_min * 0.99, target)))
    assert math.isfinite(float(law.tokens_for_loss(n_min * 1.01, target)))


@pytest.mark.parametrize("bad", [1.69, 1.0, -1.0, float("nan")])
def test_unreachable_target_is_a_clear_error(bad: float) -> None:
    with pytest.raises(SpecError, match=r"unreachable.*irreducible loss"):
        HOFFMANN.tokens_for_loss(1e9, bad)
    with pytest.raises(SpecError, match="unreachable"):
        HOFFMANN.inference_aware_params(bad, 1e12)


def test_unknown_law_suggests() -> None:
    with pytest.raises(UnknownNameError, match="hoffmann"):
        get_scaling_law("hofman")
    assert get_scaling_law("Besiroglu") is BESIROGLU


@pytest.mark.parametrize("law", list(SCALING_LAWS.values()), ids=list(SCALING_LAWS))
def test_zero_inference_equals_compute_optimal(law) -> None:
    """Sardana et al.: with no inference demand the inference-aware optimum is the Chinchilla one. The
    loss-contour optimum (closed form), the root-finder with negligible demand, and the compute-optimal
    allocation of the budget that reaches the same loss all agree."""
    target = law.E + 0.3
    n0 = law.loss_optimal_params(target)
    d0 = float(law.tokens_for_loss(n0, target))
    n_c, d_c = law.compute_optimal(6 * n0 * d0)
    assert float(n_c) == pytest.approx(n0, rel=1e-9)
    assert float(d_c) == pytest.approx(d0, rel=1e-9)
    assert law.inference_aware_params(target, 1.0) == pytest.approx(n0, rel=1e-6)
    assert law.inference_aware_params(target, 0.0) == n0


@pytest.mark.parametrize("law", list(SCALING_LAWS.values()), ids=list(SCALING_LAWS))
@pytest.mark.parametrize("d_inf", [1e11, 1e13, 1e15])
def test_inference_aware_matches_brute_force(law, d_inf: float) -> None:
    target = law.E + 0.3
    lo = math.log(law.min_params_for_loss(target) * 1.0001)
    hi = math.log(law.loss_optimal_params(target) * 10)
    res = minimize_scalar(
        lambda x: float(np.log(law.total_flops(math.exp(x), target, d_inf))),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-10},
    )
    n = law.inference_aware_params(target, d_inf)
    assert n == pytest.approx(math.exp(res.x), rel=1e-3)
    assert float(law.total_flops(n, target, d_inf)) <= float(
        law.total_flops(math.exp(res.x), target, d_inf)
    ) * (1 + 1e-9)


@settings(max_examples=60, deadline=None)
@given(
    law_name=st.sampled_from(sorted(SCALING_LAWS)),
    excess=st.floats(min_value=0.05, max_value=1.5),
    log_d1=st.floats(min_value=8, max_value=16),
    factor=st.floats(min_value=1.5, max_value=1e3),
)
def test_more_inference_means_smaller_model_and_more_tokens(
    law_name: str, excess: float, log_d1: float, factor: float
) -> None:
    """Sardana et al.: more inference demand → smaller N, more training tokens, same loss (monotone)."""
    law = SCALING_LAWS[law_name]
    target = law.E + excess
    d1 = 10**log_d1
    n1 = law.inference_aware_params(target, d1)
    n2 = law.inference_aware_params(target, d1 * factor)
    assert n2 < n1 <= law.loss_optimal_params(target) * (1 + 1e-9)
    assert float(law.tokens_for_loss(n2, target)) > float(law.tokens_for_loss(n1, target))
    assert n2 > law.min_params_for_loss(target)


@pytest.mark.parametrize("family", ["llama", "llama3"])
@pytest.mark.parametrize("n", [350e6, 1e9, 7e9, 13e9, 70e9, 405e9])
def test_model_for_params_hits_the_count(family: str, n: float) -> None:
    m = model_for_params(n, family)
    assert count_params(m).total == pytest.approx(n, rel=PARAM_TOLERANCE)
    assert m.mlp == "swiglu" and m.dim_head == 128
    assert m.d_ff % 256 == 0 and m.d_ff >= 8 * m.d_model / 3
    assert m.vocab_size == (32000 if family == "llama" else 128256)
    assert m.n_heads % 8 == 0  # TP up to 8 works for these sizes
    if (
        n >= 1e9
    ):  # smaller sizes trade the aspect for heads divisible by 8 (350m: 1024 × 22, like GPT-2 medium)
        assert 0.5 < m.d_model / m.n_layers / 128 < 2.0


@settings(max_examples=25, deadline=None)
@given(log_n=st.floats(min_value=math.log10(3e8), max_value=12.0))
def test_model_for_params_property(log_n: float) -> None:
    n = 10**log_n
    assert count_params(model_for_params(n, "llama3")).total == pytest.approx(n, rel=PARAM_TOLERANCE)


def test_model_for_params_errors() -> None:
    with pytest.raises(SpecError, match="embeddings"):
        model_for_params(1e7, "llama3")
    with pytest.raises(UnknownNameError):
        model_for_params(1e9, "gpt5")
    with pytest.raises(SpecError):
        model_for_params(-1.0)
