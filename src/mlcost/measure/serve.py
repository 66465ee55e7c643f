"""Measured serving: :func:`run_serving` serves ``requests`` batches (prefill + greedy decode with a KV
cache) through the one lifecycle and step loop (one request = one step) and records TTFT, time per output
token and output tokens/s. Warm-up requests are excluded.

Metrics: ``ttft_s`` (median time to first token), ``time_per_output_token_s`` (median decode time per
token after the first), ``request_time_s`` (median), ``tokens_per_s`` (output tokens per second over all
sequences), the step-time dispersion of requests, peak memory, energy, cost and CO2. The record carries the
estimator's ``predicted`` block for the same run (:func:`mlcost.measure.facts.predict_serve`, same keys).
"""

from __future__ import annotations

import time
from typing import Any

from mlcost.errors import SpecError, require
from mlcost.measure.facts import predict_load, predict_serve
from mlcost.measure.lifecycle import RunLifecycle
from mlcost.measure.meters.stats import summarize_times
from mlcost.measure.options import ServeOptions, ServeShape
from mlcost.measure.steps import ProgressFn, StepLoop, StepOutput
from mlcost.measure.train import model_label, resolve_device, spec_of
from mlcost.measure.validate import validate_serve_options
from mlcost.spec import ModelSpec


def run_serving(
    model: ModelSpec | Any,
    options: ServeOptions | ServeShape | None = None,
    *,
    ledger: Any = None,
    meters: Any = None,
    progress: ProgressFn | None = None,
    **kwargs: Any,
) -> Any:
    """Serve and record one run; ``options`` is :class:`ServeOptions`, or a :class:`ServeShape` with the
    other options as keyword arguments. Returns the RunRecord (re-read from the ledger when given)."""
    if isinstance(options, ServeOptions):
        opts = options
    else:
        opts = ServeOptions(shape=options or ServeShape(), **kwargs)
    validate_serve_options(opts)
    device = resolve_device(opts.device)
    spec = spec_of(model)
    if spec is not None and spec.kind == "encoder":
        raise SpecError(
            "serving measures generation, which needs a decoder model", hint="use a decoder preset"
        )
    if opts.engine == "hf":
        return run_load_serving(model, opts, spec, device, ledger=ledger, meters=meters, progress=progress)
    predicted = predict_serve(spec, opts.shape, device, opts.facts)
    run = RunLifecycle(
        _record(model, opts, spec, device, predicted),
        ledger=ledger,
        meters=meters,
        cost=opts.cost,
        facts=opts.facts,
    )
    with run.active():
        run.open()
        step, timings = _request_fn(run, model, opts, device, progress)
        status = run.loop.drive(step, opts.warmup + opts.requests)
        run.finish(status, _serve_metrics(run.loop, opts, timings))
    return run.record


def _record(
    model: Any, opts: ServeOptions, spec: ModelSpec | None, device: str, predicted: dict[str, Any]
) -> Any:
    from mlcost.measure.provenance import collect_provenance
    from mlcost.measure.record import RunRecord

    return RunRecord(
        kind="serve",
        model=model_label(model, opts.model_name),
        config={
            "shape": opts.shape.to_dict(),
            "requests": opts.requests,
            "warmup": opts.warmup,
            "seed": opts.seed,
            "attn_implementation": opts.attn_implementation,
            "model_spec": spec.to_dict() if spec is not None else None,
        },
        strategy=opts.shape.precision,
        device=device,
        world_size=1,
        predicted=predicted,
        provenance=collect_provenance(import_torch=True),
    )


def _module(torch: Any, model: Any, opts: ServeOptions, device: str) -> Any:
    from mlcost.measure.torch_models import build_model

    if isinstance(model, ModelSpec):
        module = build_model(
            model, attn_implementation=opts.attn_implementation, seed=opts.seed, device=device
        )
    else:
        module = model.to(device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(opts.shape.precision)
    if dtype is not None:
        module = module.to(dtype)
    module.eval()
    config: Any = getattr(module, "config", None)
    if config is not None:
        config.use_cache = True
    return module


def _request_fn(
    run: RunLifecycle, model: Any, opts: ServeOptions, device: str, progress: ProgressFn | None
) -> tuple[Any, dict[str, list[float]]]:
    """One request = prefill ``batch`` prompts, then decode ``output_len - 1`` tokens with the KV cache."""
    torch = require("torch", "mlcost measure", extra="measure")
    from mlcost.measure.torch_models import vocab_size_of

    cuda = device.startswith("cuda")
    sync = (lambda: torch.cuda.synchronize(torch.device(device))) if cuda else None
    loop = StepLoop(
        run, warmup=opts.warmup, checkpoint_every=opts.checkpoint_every, progress=progress, sync=sync
    )
    module = _module(torch, model, opts, device)
    vocab = vocab_size_of(module, 256) or 256
    gen = torch.Generator().manual_seed(opts.seed)
    shape = opts.shape
    timings: dict[str, list[float]] = {"ttft_s": [], "tpot_s": []}

    def now() -> float:
        if sync is not None:
            sync()
        return time.perf_counter()

    def request() -> StepOutput:
        ids = torch.randint(0, vocab, (shape.batch, shape.prompt_len), generator=gen).to(device)
        with torch.inference_mode():
            t0 = now()
            out = module(input_ids=ids, use_cache=True)
            token = out.logits[:, -1:].argmax(-1)
            t1 = now()
            for _ in range(shape.output_len - 1):
                out = module(input_ids=token, past_key_values=out.past_key_values, use_cache=True)
                token = out.logits[:, -1:].argmax(-1)
            t2 = now()
        if loop.steps_done >= opts.warmup:
            timings["ttft_s"].append(t1 - t0)
            if shape.output_len > 1:
                timings["tpot_s"].append((t2 - t1) / (shape.output_len - 1))
        return StepOutput(tokens=shape.batch * shape.output_len)

    return request, timings


def _serve_metrics(loop: StepLoop, opts: ServeOptions, timings: dict[str, list[float]]) -> dict[str, Any]:
    if not loop.meters.timer.times_s():
        return loop.partial_metrics()
    out = loop.summary()
    ttft = summarize_times(timings["ttft_s"])
    out.update(
        requests_measured=out.get("steps_measured"),
        request_time_s=out.get("step_time_s"),
        request_time_p90_s=out.get("step_time_p90_s"),
        ttft_s=ttft["median_s"],
        ttft_p90_s=ttft["p90_s"],
        time_per_output_token_s=summarize_times(timings["tpot_s"])["median_s"] if timings["tpot_s"] else None,
        output_tokens_per_request=opts.shape.batch * opts.shape.output_len,
    )
    return out


def run_load_serving(
    model: Any,
    opts: Any,
    spec: Any,
    device: str,
    *,
    ledger: Any = None,
    meters: Any = None,
    progress: Any = None,
) -> Any:
    """``measure serve --engine hf``: warm the engine with ``opts.warmup`` requests, then play
    ``opts.requests`` Poisson arrivals at ``opts.rps`` through the one lifecycle (the whole load is one
    measured step: energy and memory meters span it). Returns the RunRecord."""
    from mlcost.measure.provenance import collect_provenance
    from mlcost.measure.record import RunRecord
    from mlcost.measure.serve_load import EngineSettings, HfEngine, load_metrics, poisson_requests

    torch = require("torch", "mlcost measure serve --engine hf", extra="measure")
    if device != "cpu":
        raise SpecError(
            f"--engine hf is measured on the CPU here, got --device {device}", hint="use --device cpu"
        )
    shape = opts.shape
    settings = EngineSettings(max_batch_tokens=opts.max_batch_tokens, max_seqs=opts.max_seqs)
    work = poisson_requests(
        float(opts.rps),
        opts.requests,
        prompt_len=shape.prompt_len,
        output_len=shape.output_len,
        seed=opts.seed,
    )
    predicted = predict_load(spec, work, settings, device, shape.precision, opts.facts)
    record = RunRecord(
        kind="serve",
        model=model_label(model, opts.model_name),
        config={
            "shape": shape.to_dict(),
            "engine": "hf",
            "rps": opts.rps,
            "requests": opts.requests,
            "warmup": opts.warmup,
            "seed": opts.seed,
            "arrivals": "poisson",
            "engine_settings": settings.to_dict(),
            "attn_implementation": opts.attn_implementation,
            "model_spec": spec.to_dict() if spec is not None else None,
        },
        strategy="hf-continuous-batching",
        device=device,
        world_size=1,
        predicted=predicted,
        provenance=collect_provenance(import_torch=True),
    )
    run = RunLifecycle(record, ledger=ledger, meters=meters, cost=opts.cost, facts=opts.facts)
    with run.active():
        run.open()
        loop = StepLoop(run, warmup=0, progress=progress)
        module = _module(torch, model, opts, device)
        with HfEngine(module, settings, seed=opts.seed) as engine:
            if opts.warmup:
                warm = poisson_requests(
                    float(opts.rps),
                    opts.warmup,
                    prompt_len=shape.prompt_len,
                    output_len=shape.output_len,
                    seed=opts.seed + 1,
                )
                engine.run(warm)
            loop.begin()
            result = engine.run(work, rate_per_s=float(opts.rps))
            loop.end(StepOutput(tokens=sum(len(r.token_times_s) for r in result.requests)))
            if progress is not None:
                progress(1, 1)
        metrics = {**loop.summary(), **load_metrics(result)}
        run.finish("completed", metrics)
    return run.record
