"""What JAX keeps for the backward of a MaxText-like scanned decoder under each remat policy, checked on a
CPU with ``jax.ad_checkpoint.print_saved_residuals`` and XLA's compiled ``memory_analysis()``.

Not a test and not a dependency: run it by hand after ``pip install jax`` (CPU wheel). It backs the facts
behind mlcost's ``--recompute matmuls`` and the ``maxtext`` family's memory terms (docs/estimate.md,
"Recompute policies"): which tensors ``checkpoint_dots_with_no_batch_dims`` saves per layer, that full
remat saves only the scanned carry, and how many fp32 [b, s, V] buffers MaxText's loss holds.

The model follows AI-Hypercomputer/maxtext@76bd53b0f MaxText/layers/models.py DecoderLayer: one RMSNorm
feeding attention and a ReLU MLP in parallel, residual add, layers under ``nn.scan`` with ``nn.remat``;
logits through the tied embedding in fp32 (``attend_dtype=jnp.float32``) and the custom-VJP cross
entropy of MaxText/max_utils.py. Usage: python benchmarks/jax_remat_residuals.py
"""

from __future__ import annotations

import io
import re
from contextlib import redirect_stdout

import jax
import jax.ad_checkpoint
import jax.numpy as jnp

B, S, D, H, HD, F, V, L = 2, 256, 256, 4, 64, 1024, 4096, 4
BF16 = jnp.bfloat16


def rmsnorm(x: jax.Array, w: jax.Array) -> jax.Array:
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + 1e-6)
    return (y * w).astype(BF16)


def layer(x: jax.Array, p: dict[str, jax.Array]) -> jax.Array:
    lnx = rmsnorm(x, p["norm"])
    q = jnp.einsum("bsd,dhk->bshk", lnx, p["wq"].astype(BF16))
    k = jnp.einsum("bsd,dhk->bshk", lnx, p["wk"].astype(BF16))
    v = jnp.einsum("bsd,dhk->bshk", lnx, p["wv"].astype(BF16))
    scores = jnp.einsum("bqhk,bshk->bhqs", q, k) / HD**0.5  # batch dims b, h: not saved by 'minimal'
    mask = jnp.tril(jnp.ones((S, S), dtype=bool))
    probs = jax.nn.softmax(jnp.where(mask, scores.astype(jnp.float32), -1e9), axis=-1).astype(BF16)
    attn = jnp.einsum("bhqs,bshk->bqhk", probs, v)
    attn_out = jnp.einsum("bshk,hkd->bsd", attn, p["wo"].astype(BF16))
    hidden = jnp.einsum("bsd,df->bsf", lnx, p["wi"].astype(BF16))
    mlp_out = jnp.einsum("bsf,fd->bsd", jax.nn.relu(hidden), p["wout"].astype(BF16))
    return x + attn_out + mlp_out


@jax.custom_vjp
def xent(logits: jax.Array, targets: jax.Array) -> jax.Array:
    return -jnp.sum(targets * jax.nn.log_softmax(logits), axis=-1)


def _xent_fwd(logits: jax.Array, targets: jax.Array):  # type: ignore[no-untyped-def]
    # MaxText max_utils._cross_entropy_with_logits_fwd (z_loss 0): the same residuals
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp_shifted = jnp.exp(shifted)
    sum_exp = jnp.sum(exp_shifted, axis=-1, keepdims=True)
    log_softmax = shifted - jnp.log(sum_exp)
    return -jnp.sum(targets * log_softmax, axis=-1), (logits, targets, exp_shifted, sum_exp, log_softmax)


def _xent_bwd(res, g):  # type: ignore[no-untyped-def]
    logits, targets, exp_shifted, sum_exp, log_softmax = res
    g_logits = jnp.expand_dims(g, -1) * (exp_shifted / sum_exp - targets)
    return jnp.asarray(g_logits, logits.dtype), -jnp.expand_dims(g, -1) * log_softmax


xent.defvjp(_xent_fwd, _xent_bwd)


def make_loss(policy: str, V: int = V):  # type: ignore[no-untyped-def]
    body = layer
    if policy == "minimal":
        body = jax.checkpoint(layer, policy=jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims)
    elif policy == "full":
        body = jax.checkpoint(layer)

    def loss(params: dict[str, jax.Array], tokens: jax.Array) -> jax.Array:
        emb = params["emb"]
        x = emb[tokens].astype(BF16)
        x, _ = jax.lax.scan(lambda c, p: (body(c, p), None), x, params["layers"])
        y = rmsnorm(x, params["final_norm"])
        logits = jnp.einsum("bsd,vd->bsv", y.astype(jnp.float32), emb)  # fp32, tied embedding
        targets = jax.nn.one_hot(tokens, V)
        return jnp.mean(xent(logits, targets))

    return loss


def init(L: int = L, V: int = V) -> tuple[dict, jax.Array]:  # type: ignore[type-arg]
    k = jax.random.split(jax.random.PRNGKey(0), 8)
    n = jax.random.normal
    layers = {
        "norm": jnp.ones((L, D)),
        "wq": n(k[0], (L, D, H, HD)) * 0.02,
        "wk": n(k[1], (L, D, H, HD)) * 0.02,
        "wv": n(k[2], (L, D, H, HD)) * 0.02,
        "wo": n(k[3], (L, H, HD, D)) * 0.02,
        "wi": n(k[4], (L, D, F)) * 0.02,
        "wout": n(k[5], (L, F, D)) * 0.02,
    }
    params = {"emb": n(k[6], (V, D)) * 0.02, "final_norm": jnp.ones(D), "layers": layers}
    return params, jax.random.randint(k[7], (B, S), 0, V)


def _saved_units(per_layer: list[str]) -> float:
    """Bytes of the stacked activation residuals of one layer, in bf16 [B, S, D] units."""
    total = 0.0
    for ln in per_layer:
        m = re.match(r"\s*(\w+)\[([\d,]+)\]", ln)
        if not m or "argument" in ln:
            continue
        size = {"bf16": 2, "f32": 4, "bool": 1}.get(m.group(1), 4)
        n = 1
        for dim in m.group(2).split(","):
            n *= int(dim)
        total += n * size / L
    return total / (B * S * D * 2)


def residuals(policy: str) -> list[str]:
    params, tokens = init()
    buf = io.StringIO()
    with redirect_stdout(buf):
        jax.ad_checkpoint.print_saved_residuals(make_loss(policy), params, tokens)
    return [line for line in buf.getvalue().splitlines() if line.strip()]


def temp_bytes(policy: str, layers: int, vocab: int) -> float:
    """XLA's temporary bytes for one gradient step of the model (CPU compile)."""
    params, tokens = init(layers, vocab)
    mem = jax.jit(jax.grad(make_loss(policy, vocab))).lower(params, tokens).compile().memory_analysis()
    return float(mem.temp_size_in_bytes) if mem is not None else float("nan")


def main() -> None:
    print(f"jax {jax.__version__}; B={B} S={S} D={D} heads={H}x{HD} mlp={F} vocab={V} layers={L}")
    unit = B * S * D * 2  # one bf16 [B, S, D] tensor
    slope: dict[str, float] = {}
    for policy in ("none", "minimal", "full"):
        lines = residuals(policy)
        per_layer = [ln for ln in lines if re.search(rf"\[{L},", ln)]
        print(f"\n== {policy}: {len(lines)} residuals, {len(per_layer)} stacked over the {L} scanned layers")
        for ln in per_layer:
            print("  ", ln[:150])
        for ln in lines:
            if ln not in per_layer and "from the argument" not in ln:
                print("   (outside the layers)", ln[:110])
        # Slopes of XLA's temporary memory per scanned layer and per fp32 [B, S, V] logit buffer (the
        # embedding's fp32 gradient, V·D·4 bytes, taken out), in units of one bf16 [B, S, D].
        slope[policy] = (temp_bytes(policy, 2 * L, V) - temp_bytes(policy, L, V)) / L / unit
        per_logits = (temp_bytes(policy, L, 2 * V) - temp_bytes(policy, L, V) - 4.0 * V * D) / (B * S * V * 4)
        print(
            f"   residuals listed per layer: {_saved_units(per_layer):.2f} x bf16[B,S,D]; XLA temp per layer "
            f"{slope[policy]:+.2f} units; per fp32 [B,S,V]: {per_logits:.2f} buffers"
        )
    print(f"\nXLA temp per layer, minimal - full: {slope['minimal'] - slope['full']:.2f} units")


if __name__ == "__main__":
    main()
