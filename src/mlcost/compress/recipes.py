"""Methods → variants, and saving/loading a variant.

Method names (``--methods``, comma-separated; ``NAME:VALUE`` sets the method's parameter):

=========================  ==============================================================================
``int8-dynamic``           PyTorch dynamic int8, per-channel weight scales (Linear layers)
``int8-dynamic-per-tensor`` the same with one scale per weight tensor
``bf16`` / ``fp16``         weights and compute in bf16 / fp16 (run only where the CPU has units; ``--force``)
``onnx-int8``              ONNX Runtime dynamic int8 (per-channel) of the exported model
``prune-heads:F``          remove fraction F of the attention heads per layer (BERT-like)
``prune-ffn:F``            remove fraction F of the FFN neurons per layer (BERT-like, GPT-2)
``prune-channels:F``       remove fraction F of the output channels of each conv layer (sequential CNN)
``unstructured:F``         zero the fraction F smallest weights (global magnitude), dense storage
``distill:L``              a student keeping L of the teacher's layers, trained to match the teacher
=========================  ==============================================================================

A variant is rebuilt from the original plus its recipe (quantize again, re-apply the kept indices or layers)
and its saved state dict, so a saved variant reloads into exactly the same model; ONNX variants are saved as
the engine's own ``.onnx`` file.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcost.compress import distill, prune, quantize
from mlcost.compress.errors import CompressError
from mlcost.compress.hardware import CpuIsa
from mlcost.compress.models import ModelBundle
from mlcost.compress.tasks import Task
from mlcost.compress.variants import Variant, not_run

METHODS: dict[str, str] = {
    "int8-dynamic": "dynamic int8, per-channel (PyTorch)",
    "int8-dynamic-per-tensor": "dynamic int8, per-tensor (PyTorch)",
    "bf16": "bf16 weights and compute",
    "fp16": "fp16 weights and compute",
    "onnx-int8": "ONNX Runtime dynamic int8",
    "prune-heads": "structured: attention heads removed",
    "prune-ffn": "structured: FFN neurons removed",
    "prune-channels": "structured: conv channels removed",
    "unstructured": "unstructured magnitude pruning (dense storage)",
    "distill": "distilled student with fewer layers",
}
DEFAULT_FRACTION = 0.5
#: What dynamic int8 leaves in fp32 (it quantizes Linear layers only).
KEPT_FP32 = {"cnn": "convolutions stay fp32", "bert": "embeddings stay fp32", "gpt2": "embeddings stay fp32"}
FORMAT_VERSION = 1


def default_methods(bundle: ModelBundle) -> list[str]:
    common = ["int8-dynamic", "int8-dynamic-per-tensor", "bf16", "fp16", "onnx-int8"]
    if bundle.family == "bert":
        return [*common, "prune-heads:0.5", "prune-ffn:0.5", "unstructured:0.5"]
    if bundle.family == "gpt2":
        return [*common, "prune-ffn:0.5", "unstructured:0.5"]
    if bundle.family == "cnn":
        return ["int8-dynamic", "bf16", "fp16", "onnx-int8", "prune-channels:0.5", "unstructured:0.5"]
    return [*common, "unstructured:0.5"]


def parse_methods(text: str, *, flag: str = "--methods") -> list[str]:
    out = []
    for raw in [t.strip() for t in text.split(",") if t.strip()]:
        name, _, value = raw.partition(":")
        if name not in METHODS:
            from mlcost.errors import UnknownNameError

            raise UnknownNameError("method", name, METHODS, extra_hint=f"in {flag}")
        if value:
            try:
                v = float(value)
            except ValueError as exc:
                raise CompressError(f"{flag} {raw!r}: {value!r} is not a number") from exc
            if name == "distill":
                if v < 1 or v != int(v):
                    raise CompressError(f"{flag} {raw!r}: distill:L needs a whole number of layers >= 1")
            elif not 0 < v < 1:
                raise CompressError(f"{flag} {raw!r}: the fraction must be between 0 and 1 (exclusive)")
        out.append(raw)
    if not out:
        raise CompressError(f"{flag} is empty", hint=f"choose among {', '.join(METHODS)}")
    return out


@dataclass
class BuildContext:
    """What building variants needs besides the model."""

    isa: CpuIsa
    task: Task
    force: bool = False
    recover_steps: int = 0
    distill_steps: int = 200
    train_batch: int = 32
    lr: float = 5e-5
    price_usd_per_h: float | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mlcost-compress-")))


def torch_predict(bundle: ModelBundle, module: Any) -> Any:
    return lambda batch: bundle.forward(module, batch)


def _name(method: str) -> str:
    return method.replace(":", "-")


def rebuild(bundle: ModelBundle, recipe: dict[str, Any]) -> Any:
    """The module structure of a recipe, built from the original (weights to be loaded next)."""
    m = recipe["method"]
    if m == "original":
        return bundle.module
    if m in ("int8-dynamic", "int8-dynamic-per-tensor"):
        base = rebuild(bundle, recipe["base"]) if recipe.get("base") else bundle.module
        return quantize.dynamic_int8(base, per_channel=recipe["per_channel"])
    if m in ("bf16", "fp16"):
        return quantize.cast(bundle.module, m)
    if m in ("prune-heads", "prune-ffn", "prune-channels"):
        return prune.apply_structured(bundle.family, bundle.module, recipe)
    if m == "unstructured":
        import copy

        return copy.deepcopy(bundle.module)
    if m == "distill":
        return distill.student_from_teacher(bundle, recipe["layers"])
    raise CompressError(f"unknown recipe method {m!r}", hint="the variant was saved by a newer mlcost?")


def build(bundle: ModelBundle, method: str, ctx: BuildContext) -> Variant:
    """One variant; methods the hardware or model cannot run come back as ``not run`` with the reason."""
    name, _, value = method.partition(":")
    vname = _name(method)
    start = time.perf_counter()
    try:
        v = _build(bundle, name, value, vname, ctx)
    except CompressError as exc:
        return not_run(vname, name, str(exc))
    except Exception as exc:  # a method failing on one architecture must not stop the others
        return Variant(
            name=vname,
            method=name,
            recipe={"method": name},
            status="failed",
            reason=f"{type(exc).__name__}: {exc}",
        )
    v.build_time_s = time.perf_counter() - start
    return v


def _build(bundle: ModelBundle, name: str, value: str, vname: str, ctx: BuildContext) -> Variant:
    frac = float(value) if value else DEFAULT_FRACTION
    if name in ("int8-dynamic", "int8-dynamic-per-tensor"):
        per_channel = name == "int8-dynamic"
        recipe = {"method": name, "per_channel": per_channel, "layers": "torch.nn.Linear", "dtype": "qint8"}
        module = quantize.dynamic_int8(bundle.module, per_channel=per_channel)
        notes = [KEPT_FP32[bundle.family]] if bundle.family in KEPT_FP32 else []
        return Variant(vname, "quantize", recipe, module, torch_predict(bundle, module), "int8", notes=notes)
    if name in ("bf16", "fp16"):
        missing = ctx.isa.unit_for(name)
        if missing and not ctx.force:
            return not_run(
                vname, "quantize", f"{missing}; emulated {name} runs several times slower (--force runs it)"
            )
        module = quantize.cast(bundle.module, name)
        notes = [missing] if missing else []
        return Variant(
            vname, "quantize", {"method": name}, module, torch_predict(bundle, module), name, notes=notes
        )
    if name == "onnx-int8":
        example = ctx.task.bench_batch(2)
        session, path = quantize.onnx_int8(bundle, example, ctx.workdir / vname)
        recipe = {"method": name, "per_channel": True, "weight_type": "QInt8", "engine": "onnxruntime"}
        return Variant(
            vname,
            "quantize",
            recipe,
            None,
            quantize.onnx_predict(bundle, session),
            "int8",
            artifacts={"onnx_path": str(path)},
        )
    if name in ("prune-heads", "prune-ffn", "prune-channels"):
        what = {"prune-heads": "heads", "prune-ffn": "ffn", "prune-channels": "channels"}[name]
        recipe = prune.structured_plan(bundle.family, bundle.module, frac, what)
        module = prune.apply_structured(bundle.family, bundle.module, recipe)
        training = None
        if ctx.recover_steps > 0:
            batches = ctx.task.train_batches(ctx.recover_steps, ctx.train_batch, seed=1)
            if batches is not None:
                training = distill.train(
                    bundle,
                    module,
                    bundle.module,
                    batches,
                    steps=ctx.recover_steps,
                    lr=ctx.lr,
                    price_usd_per_h=ctx.price_usd_per_h,
                )
                recipe["recovery_steps"] = ctx.recover_steps
        shape = prune.shape_after(bundle.family, bundle.hf_config, recipe)
        return Variant(
            vname,
            "prune",
            recipe,
            module,
            torch_predict(bundle, module),
            "fp32",
            shape=shape,
            training=training,
        )
    if name == "unstructured":
        module, sparsity = prune.unstructured(bundle.module, frac)
        recipe = {"method": name, "fraction": frac, "scope": "global L1 over Linear and Conv2d weights"}
        return Variant(
            vname,
            "prune",
            recipe,
            module,
            torch_predict(bundle, module),
            "fp32",
            notes=[
                f"{sparsity:.0%} of the weights are zero but stored dense: dense kernels do the same work"
            ],
        )
    if name == "distill":
        holder, attr, _key = distill.layer_list(bundle, bundle.module)
        n = len(getattr(holder, attr))
        keep = int(value) if value else max(1, n // 2)
        if keep >= n:
            raise CompressError(f"distill:{keep} keeps all {n} layers of {bundle.name}; choose fewer")
        layers = distill.keep_every_other(n, keep)
        module = distill.student_from_teacher(bundle, layers)
        batches = ctx.task.train_batches(ctx.distill_steps, ctx.train_batch, seed=2)
        training = distill.train(
            bundle,
            module,
            bundle.module,
            batches,
            steps=ctx.distill_steps,
            lr=ctx.lr * 4,
            price_usd_per_h=ctx.price_usd_per_h,
        )
        recipe = {
            "method": name,
            "layers": layers,
            "steps": ctx.distill_steps,
            "batch": ctx.train_batch,
            "loss": distill.loss_name(bundle.kind),
        }
        shape = {"n_layers": len(layers)}
        return Variant(
            vname,
            "distill",
            recipe,
            module,
            torch_predict(bundle, module),
            "fp32",
            shape=shape,
            training=training,
        )
    raise CompressError(f"unknown method {name!r}")


def original(bundle: ModelBundle) -> Variant:
    return Variant(
        "fp32",
        "original",
        {"method": "original"},
        bundle.module,
        torch_predict(bundle, bundle.module),
        "fp32",
    )


# ---------------------------------------------------------------- save / load
def save_variant(variant: Variant, directory: str | Path) -> Path:
    """Write ``recipe.json`` and the weights (``weights.pt`` state dict, or ``model.onnx``) into ``directory``;
    written to a temporary directory first and renamed, so a failure leaves nothing half-written."""
    import torch

    if variant.status != "ok":
        raise CompressError(f"variant {variant.name} was not built ({variant.reason}); nothing to save")
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mlcost-save-", dir=target.parent))
    try:
        meta = {
            "format_version": FORMAT_VERSION,
            "name": variant.name,
            "method": variant.method,
            "precision": variant.precision,
            "recipe": variant.recipe,
        }
        (tmp / "recipe.json").write_text(json.dumps(meta, indent=2))
        if variant.module is None:
            shutil.copyfile(variant.artifacts["onnx_path"], tmp / "model.onnx")
        else:
            torch.save(variant.module.state_dict(), tmp / "weights.pt")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load_variant(bundle: ModelBundle, directory: str | Path) -> Variant:
    """A saved variant, rebuilt from ``bundle`` (the original it was made from) and its recipe."""
    import torch

    d = Path(directory)
    try:
        meta = json.loads((d / "recipe.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CompressError(f"{d}: not a saved variant (recipe.json missing or invalid: {exc})") from exc
    if (d / "model.onnx").is_file():
        session = quantize.onnx_session(d / "model.onnx", threads=torch.get_num_threads())
        return Variant(
            meta["name"],
            meta["method"],
            meta["recipe"],
            None,
            quantize.onnx_predict(bundle, session),
            meta["precision"],
            artifacts={"onnx_path": str(d / "model.onnx")},
        )
    module = rebuild(bundle, meta["recipe"])
    state = torch.load(d / "weights.pt", weights_only=False)
    module.load_state_dict(state)
    module.eval()
    return Variant(
        meta["name"], meta["method"], meta["recipe"], module, torch_predict(bundle, module), meta["precision"]
    )
