"""Count any ``transformers`` architecture on the meta device: the fallback for ``model_type`` values
:mod:`mlcost.spec.hf_config` does not map.

``transformers`` builds the model from its config inside ``with torch.device("meta")`` (no memory, no
weights, no download), so parameters are counted from the real modules; ``torch.utils.flop_counter``'s
``FlopCounterMode`` runs one forward + backward on meta tensors and counts the matrix-multiply FLOPs the
modules issue (eager attention, so QKᵀ and attention·V are plain matmuls it sees; MoE experts in their eager
loop). Heavy imports are lazy, behind the ``hf`` and ``measure`` extras.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlcost.errors import SpecError, require

__all__ = ["MetaCount", "count_on_meta"]


class _Skip(Exception):
    """Parameters only: no forward pass."""


@dataclass(frozen=True)
class MetaCount:
    """What ``transformers`` builds from a config, counted on the meta device.

    Attributes:
        model_class: the class ``AutoModelForCausalLM`` (or ``AutoModel``) chose.
        params: every parameter (count).
        train_flops_per_token: forward + backward FLOPs per token at ``seq_len`` (FLOPs per token), or
            None when ``FlopCounterMode`` could not run the model on meta tensors (``flops_error`` says why).
        seq_len: tokens per sequence of the counted pass.
        flops_error: why FLOPs are missing, else None.
    """

    model_class: str
    params: int
    train_flops_per_token: float | None
    seq_len: int
    flops_error: str | None = None


def count_on_meta(
    config: dict[str, Any], *, seq_len: int = 128, batch: int = 1, flops: bool = True
) -> MetaCount:
    """Build ``config``'s model on the meta device; count parameters and (if ``flops`` and it runs) FLOPs
    per token."""
    torch = require("torch", "counting an unknown architecture on the meta device", extra="measure")
    transformers = require("transformers", "counting an unknown architecture on the meta device", extra="hf")
    from torch.utils.flop_counter import FlopCounterMode

    transformers.logging.set_verbosity_error()  # config sanity warnings are noise for a shape count
    model_type = config.get("model_type")
    try:
        cfg = transformers.AutoConfig.for_model(**config)
    except (ValueError, KeyError) as exc:
        raise SpecError(
            f"transformers does not know model_type {model_type!r}: {exc}",
            hint="upgrade transformers or build a ModelSpec by hand",
        ) from None
    cfg._attn_implementation = "eager"
    cfg._experts_implementation = "eager"
    with torch.device("meta"):
        try:
            model = transformers.AutoModelForCausalLM.from_config(cfg)
        except ValueError:
            model = transformers.AutoModel.from_config(cfg)
        params = sum(p.numel() for p in model.parameters())
        model.train()
        per_token: float | None = None
        error: str | None = None if flops else "not requested"
        try:
            if not flops:
                raise _Skip
            ids = torch.zeros(batch, seq_len, dtype=torch.long)
            with FlopCounterMode(display=False) as counter:
                out = model(input_ids=ids)
                first = out.logits if getattr(out, "logits", None) is not None else out[0]
                first.float().sum().backward()
            per_token = counter.get_total_flops() / (batch * seq_len)
        except _Skip:
            pass
        except Exception as exc:
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return MetaCount(
        model_class=type(model).__name__,
        params=int(params),
        train_flops_per_token=per_token,
        seq_len=seq_len,
        flops_error=error,
    )
