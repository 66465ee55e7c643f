"""Quantization variants: dynamic int8 in PyTorch (per-channel and per-tensor weight scales), bf16/fp16
weights where the CPU has units for them, and ONNX Runtime's dynamic int8 (a real CPU inference engine).

* ``torch.ao.quantization.quantize_dynamic`` stores Linear weights in int8 and quantizes activations on the
  fly; it is deprecated in favour of torchao but still present in torch 2.13, and on CPUs it is the path whose
  int8 kernels (fbgemm / onednn) are fast in eager mode. Convolutions stay fp32 (dynamic quantization covers
  Linear layers only); the recipe says so.
* bf16/fp16 cast the weights and run in that precision; they only pay with AVX512_BF16/AMX (fp16: AVX512_FP16
  or AMX-FP16) and are not run on CPUs without them unless forced (the verdict says why).
* ONNX Runtime: the fp32 model is exported with ``torch.onnx.export`` and its MatMul/Gemm weights quantized by
  ``onnxruntime.quantization.quantize_dynamic``; its CPU kernels use VNNI/AMX where present.
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from pathlib import Path
from typing import Any

from mlcost.compress.errors import CompressError
from mlcost.compress.models import ModelBundle
from mlcost.errors import require


def dynamic_int8(module: Any, *, per_channel: bool) -> Any:
    """A copy of ``module`` with its Linear layers quantized to int8 (dynamic activations)."""
    import torch
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig

    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(module), {torch.nn.Linear: qconfig}, dtype=torch.qint8
        )


def cast(module: Any, precision: str) -> Any:
    """A copy of ``module`` with weights in bf16 or fp16 (inputs are cast by the bundle's forward)."""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return copy.deepcopy(module).to(dtype)


class _Exportable:
    """A module whose forward takes the bundle's inputs positionally and returns the scored tensor."""

    @staticmethod
    def wrap(bundle: ModelBundle, module: Any) -> Any:
        import torch

        names = bundle.input_names()

        class Wrapped(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = module

            def forward(self, *tensors: Any) -> Any:
                return bundle.forward(self.inner, dict(zip(names, tensors, strict=True)))

        return Wrapped().eval()


def export_onnx(bundle: ModelBundle, module: Any, example: dict[str, Any], path: Path) -> None:
    """Export ``module`` (fp32) to ONNX with dynamic batch and sequence axes."""
    import torch

    require("onnx", "the ONNX Runtime variant", "compress")
    names = bundle.input_names()
    axes: dict[str, dict[int, str]] = {}
    for n in names:
        axes[n] = {0: "batch"} if n == "pixels" else {0: "batch", 1: "sequence"}
    axes["output"] = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Exportable.wrap(bundle, module),
            tuple(example[n] for n in names),
            str(path),
            input_names=names,
            output_names=["output"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


def quantize_onnx(src: Path, dst: Path, *, per_channel: bool) -> None:
    """ONNX Runtime dynamic int8 quantization of an exported model's weights."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime logs a pre-processing hint as a warning
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel)


def onnx_session(path: Path, threads: int | None = None) -> Any:
    ort = require("onnxruntime", "the ONNX Runtime variant", "compress")
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def onnx_predict(bundle: ModelBundle, session: Any) -> Any:
    """batch -> float32 torch tensor through an ONNX Runtime session."""
    import torch

    names = bundle.input_names()

    def predict(batch: dict[str, Any]) -> Any:
        feeds = {n: batch[n].numpy() for n in names}
        return torch.from_numpy(session.run(None, feeds)[0])

    return predict


def onnx_int8(bundle: ModelBundle, example: dict[str, Any], workdir: Path | None = None) -> tuple[Any, Path]:
    """Export, quantize and open an ONNX Runtime int8 session; returns (session, path of the .onnx file)."""
    require("onnxruntime", "the ONNX Runtime variant", "compress")
    import torch

    workdir = workdir or Path(tempfile.mkdtemp(prefix="mlcost-onnx-"))
    workdir.mkdir(parents=True, exist_ok=True)
    fp32, int8 = workdir / "model-fp32.onnx", workdir / "model-int8.onnx"
    try:
        export_onnx(bundle, bundle.module, example, fp32)
        quantize_onnx(fp32, int8, per_channel=True)
    except Exception as exc:  # exporter or quantizer cannot handle this architecture
        raise CompressError(
            f"ONNX export/quantization of {bundle.name} failed: {type(exc).__name__}: {exc}"
        ) from exc
    return onnx_session(int8, threads=torch.get_num_threads()), int8
