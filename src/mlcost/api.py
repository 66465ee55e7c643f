"""The notebook API: the CLI's commands as functions with the same names and defaults.

>>> import mlcost
>>> est = mlcost.estimate_train(model="llama-3.1-8b", device="h100-sxm", gpus=64, tokens="1T")
>>> est.to_dict()["cost_usd"]  # the same object as `mlcost estimate train ... --json`

Results wrap the command's JSON object: ``to_dict()``, ``to_pandas()`` (when pandas is installed) and
``_repr_html_`` (the HTML report's renderer), so a notebook shows the same tables as the report.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Result", "cli_options", "estimate_serve", "estimate_train", "plan_train", "runs"]


@dataclass(frozen=True)
class Result:
    """One command's result: ``data`` is exactly its ``--json`` object (docs/json.md)."""

    kind: str
    data: Any
    _view: Callable[[Any], Any]
    _rows: str | None = None  # key of the list that to_pandas() turns into rows

    def to_dict(self) -> Any:
        return self.data

    def to_pandas(self) -> Any:
        """A DataFrame: one row per plan/run, or one row of the scalar fields of an estimate."""
        from mlcost.errors import require

        pd = require("pandas", "Result.to_pandas()")
        if self._rows is not None:
            return pd.json_normalize(self.data[self._rows])
        flat = {k: v for k, v in self.data.items() if not isinstance(v, (dict, list))}
        return pd.DataFrame([flat])

    def _repr_html_(self) -> str:
        from mlcost.report.view import to_html

        return to_html(self._view(self.data), explain=False)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


def estimate_train(
    model: str = "llama-3.1-8b",
    device: str = "h100-sxm",
    gpus: int | None = None,
    tokens: str | float | None = None,
    *,
    gpus_per_node: int | None = None,
    tp: int = 1,
    pp: int = 1,
    virtual_stages: int = 1,
    micro_batch: int = 1,
    global_batch: int | None = None,
    seq_len: int | None = None,
    recompute: str = "none",
    sequence_parallel: bool = False,
    zero: int = 1,
    flash_attention: bool = True,
    overlap_grad_reduce: bool = True,
    fused_elementwise: bool = True,
    goodput: float = 1.0,
    precision: str = "bf16",
    optimizer: str = "adamw",
    provider: str | None = None,
    region: str | None = None,
    pricing: str = "on-demand",
    price_usd_per_h: float | None = None,
    pue: float | None = None,
    carbon_kg_per_kwh: float | None = None,
    catalog: list[str] | None = None,
    **options: Any,
) -> Result:
    """``mlcost estimate train`` (same defaults: 8 GPUs, 20 tokens per parameter, ≈1M tokens per step).

    ``options``: any other flag of the command by its Python name — ``framework="nemo"``, ``ep=8``,
    ``ep_overlap=0.335``, ``moe_dispatcher="deepep"``, ``schedule="dualpipe"``, ``fp8_params=True``,
    ``objective="mlm"`` (:func:`cli_options` lists them)."""
    args = [
        "estimate",
        "train",
        "--model",
        model,
        "--device",
        device,
        "--tp",
        str(tp),
        "--pp",
        str(pp),
        "--virtual-stages",
        str(virtual_stages),
        "--micro-batch",
        str(micro_batch),
        "--recompute",
        recompute,
        "--zero",
        str(zero),
        "--goodput",
        repr(goodput),
        "--precision",
        precision,
        "--optimizer",
        optimizer,
        "--pricing",
        pricing,
    ]
    args += _flag(sequence_parallel, "--sequence-parallel", None)
    args += _flag(flash_attention, "--flash-attention", "--no-flash-attention")
    args += _flag(overlap_grad_reduce, "--overlap-grad-reduce", "--no-overlap-grad-reduce")
    args += _flag(fused_elementwise, "--fused-elementwise", "--eager-elementwise")
    args += _opt("--gpus", gpus) + _opt("--tokens", tokens) + _opt("--gpus-per-node", gpus_per_node)
    args += _opt("--global-batch", global_batch) + _opt("--seq-len", seq_len) + _opt("--provider", provider)
    args += _opt("--region", region) + _opt("--price-usd-per-h", price_usd_per_h) + _opt("--pue", pue)
    args += _opt("--carbon-kg-per-kwh", carbon_kg_per_kwh) + _many("--catalog", catalog)
    args += _options(("estimate", "train"), "estimate_train", options, args)
    from mlcost.report.estimate import train_view

    return Result("estimate-train", _run_json(args), train_view)


def estimate_serve(
    model: str = "llama-3.1-8b",
    device: str = "h100-sxm",
    gpus: int | None = None,
    *,
    gpus_per_node: int | None = None,
    tp: int = 1,
    batch: int = 1,
    prompt_len: int = 1024,
    output_len: int = 256,
    weight_precision: str = "bf16",
    kv_precision: str = "bf16",
    provider: str | None = None,
    region: str | None = None,
    pricing: str = "on-demand",
    price_usd_per_h: float | None = None,
    pue: float | None = None,
    carbon_kg_per_kwh: float | None = None,
    catalog: list[str] | None = None,
    engine: str | None = None,
    rps: float | None = None,
    concurrency: int | None = None,
    requests: int | None = None,
    **options: Any,
) -> Result:
    """``mlcost estimate serve`` (one replica of ``tp`` devices unless ``gpus`` is given); with ``rps`` or
    ``concurrency`` the continuous-batching simulator answers (docs/serve.md). ``options``: any other flag
    of the command by its Python name (:func:`cli_options`)."""
    args = [
        "estimate",
        "serve",
        "--model",
        model,
        "--device",
        device,
        "--tp",
        str(tp),
        "--batch",
        str(batch),
        "--prompt-len",
        str(prompt_len),
        "--output-len",
        str(output_len),
        "--weight-precision",
        weight_precision,
        "--kv-precision",
        kv_precision,
        "--pricing",
        pricing,
    ]
    args += _opt("--gpus", gpus) + _opt("--gpus-per-node", gpus_per_node) + _opt("--provider", provider)
    args += _opt("--region", region) + _opt("--price-usd-per-h", price_usd_per_h) + _opt("--pue", pue)
    args += _opt("--carbon-kg-per-kwh", carbon_kg_per_kwh) + _many("--catalog", catalog)
    args += _opt("--engine", engine) + _opt("--rps", rps) + _opt("--concurrency", concurrency)
    args += _opt("--requests", requests)
    args += _options(("estimate", "serve"), "estimate_serve", options, args)
    from mlcost.report.estimate import serve_view

    return Result("estimate-serve", _run_json(args), serve_view)


def plan_train(
    model: str,
    tokens: str | float,
    *,
    deadline: str | None = None,
    budget_usd: float | None = None,
    max_devices: int = 1024,
    devices: str | None = None,
    providers: str | None = None,
    regions: str | None = None,
    spot: bool = False,
    max_co2_kg: float | None = None,
    objective: str = "cost",
    weights: str | None = None,
    top: int = 5,
    seq_len: int | None = None,
    global_batch: int | None = None,
    precisions: str = "bf16,fp8",
    counts: str | None = None,
    **options: Any,
) -> Result:
    """``mlcost plan train``; ``to_pandas()`` gives one row per top plan. Lists are comma-separated strings,
    as on the command line (``devices="h100-sxm,a100-80gb"``). ``options``: any other flag of the command by
    its Python name (:func:`cli_options`)."""
    args = [
        "plan",
        "train",
        "--model",
        model,
        "--tokens",
        str(tokens),
        "--max-devices",
        str(max_devices),
        "--objective",
        objective,
        "--top",
        str(top),
        "--precisions",
        precisions,
    ]
    args += _flag(spot, "--spot", "--no-spot")
    args += _opt("--deadline", deadline) + _opt("--budget-usd", budget_usd) + _opt("--devices", devices)
    args += _opt("--providers", providers) + _opt("--regions", regions) + _opt("--max-co2-kg", max_co2_kg)
    args += _opt("--weights", weights) + _opt("--seq-len", seq_len) + _opt("--global-batch", global_batch)
    args += _opt("--counts", counts)
    args += _options(("plan", "train"), "plan_train", options, args)
    from mlcost.report.plan import train_view

    return Result("plan-train", _run_json(args), train_view, "plans")


def runs(
    ledger: str | None = None,
    *,
    limit: int = 50,
    status: str | None = None,
    model: str | None = None,
    kind: str | None = None,
) -> Result:
    """``mlcost runs``: the ledger's most recent runs; ``to_pandas()`` gives one row per run."""
    args = ["runs", "--limit", str(limit), *_opt("--ledger", ledger), *_opt("--status", status)]
    args += _opt("--model", model) + _opt("--kind", kind)
    from mlcost.report.runs import list_view

    return Result("runs", _run_json(args), list_view, "runs")


#: Options the functions set themselves (the result is always the command's JSON object).
_OUTPUT_OPTIONS = ("json_out", "as_json", "help")


@functools.lru_cache(maxsize=8)
def _command(path: tuple[str, ...]) -> Any:
    """The click command behind ``mlcost <path>`` (only its module is imported; built once per path)."""
    import typer

    from mlcost.cli.main import build_app

    cmd: Any = typer.main.get_command(build_app(list(path)))
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def cli_options(*path: str) -> dict[str, str]:
    """The Python names of a command's options and their flags, e.g. ``cli_options("estimate", "train")``
    -> ``{"ep_overlap": "--ep-overlap", ...}``: what the functions above accept as keywords."""
    return {
        p.name: p.opts[0]
        for p in _command(path).params
        if p.param_type_name == "option" and p.name not in _OUTPUT_OPTIONS
    }


def _options(path: tuple[str, ...], function: str, options: dict[str, Any], given: list[str]) -> list[str]:
    """Command-line words for ``options`` (Python names of the command's flags): a bool flag is given or
    its ``--no-`` form, a list repeats the flag, None is left out. An unknown name, or one whose flag the
    function's own arguments already gave (``given``), is a TypeError that names the closest option, as
    Python does for a wrong keyword."""
    if not options:
        return []
    import difflib

    params = {
        p.name: p
        for p in _command(path).params
        if p.param_type_name == "option" and p.name not in _OUTPUT_OPTIONS
    }
    args: list[str] = []
    for name, value in options.items():
        param = params.get(name)
        if param is None:
            close = difflib.get_close_matches(name, list(params), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(
                f"{function}() got an unexpected keyword argument {name!r}{hint} "
                f"(mlcost.api.cli_options{path!r} lists the options)"
            )
        if any(flag in given for flag in (*param.opts, *param.secondary_opts)):
            raise TypeError(
                f"{function}() got {name!r} twice: it is {param.opts[0]}, which an argument already sets"
            )
        if value is None:
            continue
        if param.is_flag:
            args += _flag(bool(value), param.opts[0], (param.secondary_opts or [None])[0])
        elif isinstance(value, (list, tuple)):
            args += _many(param.opts[0], [str(v) for v in value])
        else:
            args += _opt(param.opts[0], value)
    return args


def _flag(value: bool, on: str, off: str | None) -> list[str]:
    return [on] if value else ([off] if off else [])


def _many(flag: str, values: list[str] | None) -> list[str]:
    return [x for v in values or [] for x in (flag, str(v))]


def _opt(flag: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    return [flag, str(value)]


def _run_json(args: list[str]) -> Any:
    """Run the CLI command in-process with --json and return its object; a user error raises the same
    MlcostError the CLI prints."""
    import contextlib
    import io
    import json

    from mlcost.cli.main import build_app

    buf = io.StringIO()
    app = build_app(args)
    with contextlib.redirect_stdout(buf):
        app(args=[*args, "--json"], standalone_mode=False, prog_name="mlcost")
    return json.loads(buf.getvalue())
