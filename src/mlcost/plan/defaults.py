"""One set of training defaults for a model, shared by ``estimate train``, ``plan train`` and ``tco``.

Sequence length and global batch come from the model preset's pre-training recipe when it lists one
(``train_seq_len`` / ``train_global_batch`` in models.toml, with the recipe's citation in the row's source);
otherwise from one stated rule: the sequence is min(model context, 4096) tokens and the global batch the power
of two nearest ~4M tokens per step for models of ≥ 7B parameters (Llama 2/3 pre-training used ~4M), ~1M
below. Each value carries the source the output's assumptions print.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlcost.errors import SpecError
from mlcost.estimate.params import count_params
from mlcost.spec.model import ModelSpec

#: The largest training sequence length the rule picks. Units: tokens.
DEFAULT_MAX_SEQ_LEN = 4096
#: Tokens per optimizer step the rule aims at for large models (~4M, as Llama 2/3 pre-training used).
DEFAULT_TOKENS_PER_STEP = 4 * 1024 * 1024
#: Below this many parameters the rule aims at 1M tokens per step.
LARGE_MODEL_PARAMS = 7e9
SMALL_TOKENS_PER_STEP = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class TrainDefaults:
    """Sequence length (tokens) and global batch (sequences per step), each with where it came from."""

    seq_len: int
    global_batch: int
    seq_len_source: str
    global_batch_source: str


def rule_global_batch(model_params: float, seq_len: int) -> int:
    """Sequences per step giving ~4M tokens (≥ 7B parameters) or ~1M tokens (smaller models), rounded to a
    power of two."""
    target = DEFAULT_TOKENS_PER_STEP if model_params >= LARGE_MODEL_PARAMS else SMALL_TOKENS_PER_STEP
    return int(2 ** max(0, round(np.log2(max(1.0, target / seq_len)))))


def train_defaults(
    model: ModelSpec, seq_len: int | None = None, global_batch: int | None = None
) -> TrainDefaults:
    """The values a command uses when ``--seq-len`` / ``--global-batch`` are not given (module docstring)."""
    if seq_len is not None:
        seq, seq_src = seq_len, "user"
    elif model.train_seq_len is not None:
        seq = model.train_seq_len
        seq_src = f"model preset {model.name}: pre-training recipe ({model.source})"
    else:
        seq = min(model.max_seq_len, DEFAULT_MAX_SEQ_LEN)
        seq_src = f"default rule: min(model context {model.max_seq_len}, {DEFAULT_MAX_SEQ_LEN}) (mlcost.plan.defaults)"
    if model.position == "learned" and seq > model.max_seq_len:
        raise SpecError(
            f"seq_len {seq} exceeds the {model.max_seq_len} learned positions of {model.name}",
            hint=f"use --seq-len <= {model.max_seq_len}",
        )
    if global_batch is not None:
        gb, gb_src = global_batch, "user"
    elif model.train_global_batch is not None and seq_len is None:
        gb = model.train_global_batch
        gb_src = f"model preset {model.name}: pre-training recipe ({model.source})"
    else:
        params = float(count_params(model).total)
        gb = rule_global_batch(params, seq)
        gb_src = (
            f"default rule: ~{'4M' if params >= LARGE_MODEL_PARAMS else '1M'} tokens per step for a "
            f"{params / 1e9:.2g}B-parameter model, a power of two (mlcost.plan.defaults)"
        )
    return TrainDefaults(seq_len=seq, global_batch=gb, seq_len_source=seq_src, global_batch_source=gb_src)
