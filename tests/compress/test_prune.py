"""Structured pruning removes weights physically; unstructured pruning only zeroes them."""

from typing import Any

import pytest
import torch

from mlcost.compress import prune
from mlcost.compress.examples import digits_cnn
from tests.compress.conftest import tiny_bert_config


def _params(m: Any) -> int:
    return sum(p.numel() for p in m.parameters())


def test_cnn_channel_pruning_shrinks_the_convolutions_and_the_next_layers() -> None:
    torch.manual_seed(0)
    model = digits_cnn(8, 16, 16).eval()
    recipe = prune.structured_plan("cnn", model, 0.5, "channels")
    small = prune.apply_structured("cnn", model, recipe)
    assert small[0].out_channels == 4 and small[2].in_channels == 4 and small[2].out_channels == 8
    assert small[6].in_features == 8 * 16
    assert _params(small) < 0.55 * _params(model)
    x = torch.rand(3, 1, 8, 8)
    assert small(x).shape == (3, 10)


def test_keeping_every_channel_or_head_gives_the_same_outputs() -> None:
    torch.manual_seed(0)
    model = digits_cnn(8, 16, 16).eval()
    same = prune.cnn_apply(model, [list(range(8)), list(range(16))])
    x = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(same(x), model(x))
    from transformers import BertModel

    bert = BertModel(tiny_bert_config()).eval()
    kept = prune.bert_apply(bert, [[0, 1, 2, 3]] * 2, [list(range(64))] * 2)
    ids = torch.randint(0, 1000, (2, 7))
    torch.testing.assert_close(kept(input_ids=ids).last_hidden_state, bert(input_ids=ids).last_hidden_state)


def test_bert_heads_and_ffn_pruning_are_physical_and_keep_the_output_shape() -> None:
    from transformers import BertModel

    torch.manual_seed(0)
    bert = BertModel(tiny_bert_config()).eval()
    heads = prune.structured_plan("bert", bert, 0.5, "heads")
    ffn = prune.structured_plan("bert", bert, 0.5, "ffn")
    assert all(len(h) == 2 for h in heads["heads_keep"]) and all(len(f) == 32 for f in ffn["ffn_keep"])
    small = prune.bert_apply(bert, heads["heads_keep"], ffn["ffn_keep"])
    layer = small.encoder.layer[0]
    assert layer.attention.self.query.out_features == 16 and layer.attention.output.dense.in_features == 16
    assert layer.intermediate.dense.out_features == 32
    ids = torch.randint(0, 1000, (2, 7))
    assert small(input_ids=ids).last_hidden_state.shape == (2, 7, 32)
    assert prune.shape_after("bert", {"x": 1}, {**heads, **ffn}) == {"n_heads": 2, "d_ff": 32}


def test_gpt2_ffn_pruning() -> None:
    from mlcost.compress.examples import tiny_gpt

    torch.manual_seed(0)
    gpt = tiny_gpt(50, 2, 32, 4, 16).eval()
    recipe = prune.structured_plan("gpt2", gpt, 0.25, "ffn")
    small = prune.apply_structured("gpt2", gpt, recipe)
    assert small.transformer.h[0].mlp.c_fc.weight.shape == (32, 96)
    assert small(input_ids=torch.randint(0, 50, (2, 9))).logits.shape == (2, 9, 50)


@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_unstructured_pruning_reports_sparsity_but_keeps_dense_shapes(fraction: float) -> None:
    torch.manual_seed(0)
    model = digits_cnn(8, 16, 16).eval()
    sparse, sparsity = prune.unstructured(model, fraction)
    assert sparsity == pytest.approx(fraction, abs=0.01)
    assert _params(sparse) == _params(model)
