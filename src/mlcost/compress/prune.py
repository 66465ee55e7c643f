"""Pruning variants.

Structured pruning removes whole units and **physically shrinks** the weight matrices, so the dense kernels
do less work: attention heads and FFN neurons of BERT-like encoders (the same number per layer, so the model
keeps a uniform shape the estimator can price), FFN neurons of GPT-2 blocks, and output channels of the
convolutions of a sequential CNN (the next layer's inputs shrink with them). Units are ranked by weight
magnitude (the product of the norms of the weights into and out of each unit; Li et al. 2017 for filters,
Michel et al. 2019 show heads can go with little loss). The kept indices are part of the recipe, so a saved
variant is rebuilt exactly. transformers 5 dropped ``prune_heads``, so heads are sliced here.

Unstructured magnitude pruning (``torch.nn.utils.prune.global_unstructured`` with L1 ranking) zeroes the
smallest weights but keeps dense tensors; PyTorch's maintainers note it gives no speed or size gain with dense
kernels. It is measured and reported as sparsity so the table shows that.
"""

from __future__ import annotations

import copy
from typing import Any

from mlcost.compress.errors import CompressError


def _keep(scores: Any, fraction: float) -> Any:
    """Indices (sorted) of the ``1 − fraction`` highest scores; at least one is kept."""
    import torch

    n = scores.numel()
    k = max(1, round(n * (1.0 - fraction)))
    return torch.sort(torch.topk(scores, k).indices).values


def _slice_linear(layer: Any, idx: Any, dim: int) -> Any:
    """A new ``nn.Linear`` keeping rows (``dim=0``: outputs) or columns (``dim=1``: inputs) ``idx``."""
    import torch

    w = layer.weight.detach().index_select(dim, idx).clone()
    bias = layer.bias is not None
    new = torch.nn.Linear(w.shape[1], w.shape[0], bias=bias)
    new.weight = torch.nn.Parameter(w)
    if bias:
        b = layer.bias.detach()
        new.bias = torch.nn.Parameter((b.index_select(0, idx) if dim == 0 else b).clone())
    return new


# ---------------------------------------------------------------- BERT-like encoders
def _bert_layers(model: Any) -> Any:
    base = getattr(model, "bert", None) or getattr(model, "roberta", None) or model
    enc = getattr(base, "encoder", None)
    if enc is None or not hasattr(enc, "layer"):
        raise CompressError("structured pruning of this encoder needs a BERT-like model.encoder.layer list")
    return enc.layer


def bert_head_scores(model: Any) -> list[Any]:
    """Per layer, one magnitude score per attention head."""
    import torch

    scores = []
    for layer in _bert_layers(model):
        att = layer.attention
        d = att.self.attention_head_size
        h = att.self.query.out_features // d
        v = att.self.value.weight.detach().reshape(h, d, -1).pow(2).sum((1, 2)).sqrt()
        o = att.output.dense.weight.detach().reshape(-1, h, d).pow(2).sum((0, 2)).sqrt()
        scores.append(v * o + torch.arange(h) * 0.0)
    return scores


def bert_ffn_scores(model: Any) -> list[Any]:
    scores = []
    for layer in _bert_layers(model):
        w_in = layer.intermediate.dense.weight.detach()
        w_out = layer.output.dense.weight.detach()
        scores.append(w_in.norm(dim=1) * w_out.norm(dim=0))
    return scores


def bert_apply(model: Any, heads_keep: list[list[int]] | None, ffn_keep: list[list[int]] | None) -> Any:
    """A copy of ``model`` keeping these heads / FFN neurons per layer (physically sliced)."""
    import torch

    new = copy.deepcopy(model)
    for i, layer in enumerate(_bert_layers(new)):
        if heads_keep is not None:
            att = layer.attention
            d = att.self.attention_head_size
            heads = torch.tensor(heads_keep[i], dtype=torch.long)
            idx = (heads[:, None] * d + torch.arange(d)[None, :]).reshape(-1)
            for name in ("query", "key", "value"):
                setattr(att.self, name, _slice_linear(getattr(att.self, name), idx, 0))
            att.output.dense = _slice_linear(att.output.dense, idx, 1)
            att.self.num_attention_heads = len(heads_keep[i])
            att.self.all_head_size = len(idx)
        if ffn_keep is not None:
            idx = torch.tensor(ffn_keep[i], dtype=torch.long)
            layer.intermediate.dense = _slice_linear(layer.intermediate.dense, idx, 0)
            layer.output.dense = _slice_linear(layer.output.dense, idx, 1)
    return new.eval()


# ---------------------------------------------------------------- GPT-2 FFN
def gpt2_ffn_scores(model: Any) -> list[Any]:
    scores = []
    for block in model.transformer.h:
        w_in = block.mlp.c_fc.weight.detach()  # Conv1D: (d, 4d)
        w_out = block.mlp.c_proj.weight.detach()  # (4d, d)
        scores.append(w_in.norm(dim=0) * w_out.norm(dim=1))
    return scores


def gpt2_apply(model: Any, ffn_keep: list[list[int]]) -> Any:
    import torch

    new = copy.deepcopy(model)
    for i, block in enumerate(new.transformer.h):
        idx = torch.tensor(ffn_keep[i], dtype=torch.long)
        fc, proj = block.mlp.c_fc, block.mlp.c_proj
        fc.weight = torch.nn.Parameter(fc.weight.detach().index_select(1, idx).clone())
        fc.bias = torch.nn.Parameter(fc.bias.detach().index_select(0, idx).clone())
        fc.nf = len(idx)
        proj.weight = torch.nn.Parameter(proj.weight.detach().index_select(0, idx).clone())
    return new.eval()


# ---------------------------------------------------------------- sequential CNNs
def cnn_conv_indices(model: Any) -> list[int]:
    """Positions of the Conv2d layers whose outputs can be pruned (all but a conv that is the last layer)."""
    import torch

    return [i for i, m in enumerate(model) if isinstance(m, torch.nn.Conv2d)]


def cnn_scores(model: Any) -> list[Any]:
    """Per conv layer, the L1 norm of each output filter (Li et al. 2017)."""
    return [model[i].weight.detach().abs().sum((1, 2, 3)) for i in cnn_conv_indices(model)]


def cnn_apply(model: Any, keep: list[list[int]]) -> Any:
    """A copy of a sequential CNN keeping these output channels of each conv layer; the next conv's (or the
    first linear layer's, after Flatten) inputs are sliced to match."""
    import torch
    from torch import nn

    if not isinstance(model, nn.Sequential):
        raise CompressError("channel pruning supports nn.Sequential CNNs (conv → … → flatten → linear)")
    new: Any = copy.deepcopy(model)
    convs = cnn_conv_indices(new)
    for ci, pos in enumerate(convs):
        idx = torch.tensor(keep[ci], dtype=torch.long)
        conv: Any = new[pos]
        c = nn.Conv2d(
            conv.in_channels,
            len(idx),
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
            bias=conv.bias is not None,
        )
        c.weight = nn.Parameter(conv.weight.detach().index_select(0, idx).clone())
        if conv.bias is not None:
            c.bias = nn.Parameter(conv.bias.detach().index_select(0, idx).clone())
        new[pos] = c
        # Follow the channels to the next layer that consumes them.
        flat = False
        for nxt in range(pos + 1, len(new)):
            m: Any = new[nxt]
            if isinstance(m, nn.BatchNorm2d):
                bn = nn.BatchNorm2d(len(idx))
                bn.weight = nn.Parameter(m.weight.detach()[idx].clone())
                bn.bias = nn.Parameter(m.bias.detach()[idx].clone())
                stats: Any = (m.running_mean, m.running_var)
                bn.running_mean, bn.running_var = stats[0][idx].clone(), stats[1][idx].clone()
                new[nxt] = bn
            elif isinstance(m, nn.Conv2d):
                m.weight = nn.Parameter(m.weight.detach().index_select(1, idx).clone())
                m.in_channels = len(idx)
                break
            elif isinstance(m, nn.Flatten):
                flat = True
            elif isinstance(m, nn.Linear) and flat:
                per = m.in_features // conv.out_channels
                cols = (idx[:, None] * per + torch.arange(per)[None, :]).reshape(-1)
                new[nxt] = _slice_linear(m, cols, 1)
                break
    return new.eval()


# ---------------------------------------------------------------- plans
def structured_plan(family: str, model: Any, fraction: float, what: str) -> dict[str, Any]:
    """The recipe of a structured cut: which units each layer keeps (``what``: heads, ffn or channels)."""
    if family == "bert" and what == "heads":
        keep = [_keep(s, fraction).tolist() for s in bert_head_scores(model)]
        return {"method": "prune-heads", "fraction": fraction, "heads_keep": keep}
    if family == "bert" and what == "ffn":
        keep = [_keep(s, fraction).tolist() for s in bert_ffn_scores(model)]
        return {"method": "prune-ffn", "fraction": fraction, "ffn_keep": keep}
    if family == "gpt2" and what == "ffn":
        keep = [_keep(s, fraction).tolist() for s in gpt2_ffn_scores(model)]
        return {"method": "prune-ffn", "fraction": fraction, "ffn_keep": keep}
    if family == "cnn" and what == "channels":
        scores = cnn_scores(model)
        keep = [_keep(s, fraction).tolist() for s in scores[:-1]] if len(scores) > 1 else []
        # The last conv feeds the classifier head through Flatten: prune it too.
        keep.append(_keep(scores[-1], fraction).tolist())
        return {"method": "prune-channels", "fraction": fraction, "channels_keep": keep}
    raise CompressError(f"structured pruning of {what} is not supported for a {family} model")


def apply_structured(family: str, model: Any, recipe: dict[str, Any]) -> Any:
    """The original ``model`` cut as ``recipe`` says (also used to rebuild a saved variant)."""
    if family == "bert":
        return bert_apply(model, recipe.get("heads_keep"), recipe.get("ffn_keep"))
    if family == "gpt2":
        return gpt2_apply(model, recipe["ffn_keep"])
    if family == "cnn":
        return cnn_apply(model, recipe["channels_keep"])
    raise CompressError(f"structured pruning is not supported for a {family} model")


def shape_after(family: str, config: dict[str, Any] | None, recipe: dict[str, Any]) -> dict[str, int] | None:
    """The transformer shape after a structured cut (uniform per layer), for the estimator."""
    if not config:
        return None
    shape: dict[str, int] = {}
    if recipe.get("heads_keep"):
        shape["n_heads"] = len(recipe["heads_keep"][0])
    if recipe.get("ffn_keep"):
        shape["d_ff"] = len(recipe["ffn_keep"][0])
    return shape


# ---------------------------------------------------------------- unstructured
def prunable(model: Any) -> list[tuple[Any, str]]:
    import torch

    return [
        (m, "weight")
        for m in model.modules()
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) and m.weight.dim() > 1
    ]


def unstructured(model: Any, fraction: float) -> tuple[Any, float]:
    """A copy with the ``fraction`` smallest-magnitude weights (globally, over Linear and Conv2d) set to zero;
    returns it and the measured sparsity of those weights. The zeros stay in dense tensors."""
    import torch
    from torch.nn.utils import prune

    new = copy.deepcopy(model)
    params = prunable(new)
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=fraction)
    for m, name in params:
        prune.remove(m, name)
    total = sum(m.weight.numel() for m, _ in params)
    zeros = sum(int((m.weight == 0).sum()) for m, _ in params)
    with torch.no_grad():
        pass
    return new.eval(), zeros / max(total, 1)
