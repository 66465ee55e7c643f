"""Build a :class:`~mlcost.spec.model.ModelSpec` from a live model object.

Only Hugging Face ``PreTrainedModel`` instances are supported: their ``.config`` is read and mapped by
:func:`mlcost.spec.hf_config.model_from_hf_config` (so a model built on the meta device works and costs
nothing). No torch import here: the object is only inspected.
"""

from __future__ import annotations

from typing import Any

from mlcost.errors import SpecError
from mlcost.spec.hf_config import SUPPORTED_MODEL_TYPES, model_from_hf_config
from mlcost.spec.model import ModelSpec

__all__ = ["model_from_torch_module"]


def model_from_torch_module(module: Any, name: str | None = None) -> ModelSpec:
    """A :class:`ModelSpec` from a Hugging Face ``PreTrainedModel`` (via its ``.config``).

    Raises :class:`SpecError` for objects without a Hugging Face config (e.g. a plain ``torch.nn.Module``)
    and for unsupported model types."""
    cls = type(module).__name__
    config = getattr(module, "config", None)
    to_dict = getattr(config, "to_dict", None)
    if config is None or not callable(to_dict):
        raise SpecError(
            f"cannot read the shape of a {cls}: it has no Hugging Face .config",
            hint=(
                "pass a transformers PreTrainedModel (model types: "
                + ", ".join(SUPPORTED_MODEL_TYPES)
                + "), a config.json path, a preset name, or build a ModelSpec by hand"
            ),
        )
    data = to_dict()
    if not isinstance(data, dict):
        raise SpecError(f"{cls}.config.to_dict() did not return a dict")
    label = name or data.get("_name_or_path") or cls
    spec = model_from_hf_config(
        data, name=str(label), source=f"{cls}.config (model_type {data.get('model_type')!r})"
    )
    # A bare backbone (BertModel, LlamaModel) has no vocabulary head; *ForMaskedLM / *ForCausalLM do.
    if cls.endswith("Model") and not cls.endswith("LMHeadModel") and cls != "PreTrainedModel":
        return spec.replace(objective="none")
    return spec
