"""Serving workloads for the continuous-batching simulator: when requests arrive and how long their prompts
and outputs are.

* arrivals: Poisson at ``rate_rps`` (exponential gaps), a closed loop of ``concurrency`` clients (a new
  request the moment one finishes, no think time), or the ``arrival_s`` column of a request file;
* lengths: fixed, or drawn from a distribution with the given mean (:data:`LENGTH_DISTRIBUTIONS`), or the
  rows of a request file (CSV or JSONL, validated line by line: :func:`read_request_file`);
* ``prefix_share``: the share of each prompt found in the prefix cache (its KV is reused, not recomputed).

Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed gives the same requests.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlcost.errors import SpecError

__all__ = [
    "LENGTH_DISTRIBUTIONS",
    "RequestFile",
    "Workload",
    "read_request_file",
    "sample_lengths",
]

#: Length distributions by name: ``fixed`` (the mean every time), ``uniform`` (integers in
#: [1, 2·mean − 1]), ``exponential`` (1 + a geometric count with the given mean), ``lognormal``
#: (σ = 0.5 of the log, mean preserved). All are clipped to [1, cap].
LENGTH_DISTRIBUTIONS: tuple[str, ...] = ("fixed", "uniform", "exponential", "lognormal")
#: σ of log(length) for the ``lognormal`` distribution.
LOGNORMAL_SIGMA = 0.5


def sample_lengths(
    rng: np.random.Generator, n: int, mean: int, dist: str = "fixed", cap: int | None = None
) -> np.ndarray:
    """``n`` integer lengths >= 1 with the given mean and distribution (module docstring)."""
    if dist not in LENGTH_DISTRIBUTIONS:
        raise SpecError(
            f"unknown length distribution {dist!r}", hint=f"choose from {', '.join(LENGTH_DISTRIBUTIONS)}"
        )
    if mean < 1:
        raise SpecError(f"a mean length must be >= 1, got {mean}")
    if dist == "fixed":
        out = np.full(n, mean, dtype=np.int64)
    elif dist == "uniform":
        out = (
            rng.integers(1, 2 * mean, size=n, endpoint=False).astype(np.int64)
            if mean > 1
            else np.ones(n, np.int64)
        )
    elif dist == "exponential":
        out = 1 + rng.geometric(1.0 / mean, size=n).astype(np.int64) - 1 if mean > 1 else np.ones(n, np.int64)
    else:
        mu = math.log(mean) - LOGNORMAL_SIGMA**2 / 2.0
        out = np.maximum(1, np.rint(rng.lognormal(mu, LOGNORMAL_SIGMA, size=n))).astype(np.int64)
    if cap is not None:
        out = np.minimum(out, cap)
    return np.maximum(out, 1)


@dataclass(frozen=True)
class RequestFile:
    """Request lengths read from a file.

    Attributes:
        path: the file.
        prompt_tokens / output_tokens: one entry per request (integers >= 1).
        arrival_s: arrival times (s from the start, sorted), or None when the file has no ``arrival_s``.
    """

    path: str
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    arrival_s: np.ndarray | None


def _whole(value: Any, what: str, where: str, minimum: int) -> int:
    if isinstance(value, bool):
        raise SpecError(f"{where}: {what} must be a whole number >= {minimum}, got {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise SpecError(f"{where}: {what} must be a whole number >= {minimum}, got {value!r}")
        n = int(value)
    else:
        text = str(value).strip()
        try:
            n = int(text)
        except ValueError:
            raise SpecError(
                f"{where}: {what} must be a whole number >= {minimum}, got {text!r}",
                hint="write token counts as integers, e.g. 512",
            ) from None
    if n < minimum:
        raise SpecError(
            f"{where}: {what} must be a whole number >= {minimum}, got {n}",
            hint="token counts are positive integers",
        )
    return n


def _time(value: Any, where: str) -> float:
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{where}: arrival_s must be a number of seconds >= 0, got {value!r}") from None
    if not (math.isfinite(t) and t >= 0):
        raise SpecError(f"{where}: arrival_s must be a number of seconds >= 0, got {value!r}")
    return t


def read_request_file(path: Path | str, flag: str = "--requests-file") -> RequestFile:
    """Read request lengths from a CSV (header ``prompt_tokens,output_tokens[,arrival_s]``) or JSONL file
    (one object per line with those keys). Every value is checked; an error names the file, the line and
    the problem (:class:`~mlcost.errors.SpecError`, exit 2 in the CLI)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{flag} {p}: no such file", hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{flag} {p}: cannot read it as UTF-8 text ({exc})") from None
    prompts: list[int] = []
    outputs: list[int] = []
    arrivals: list[float] = []
    has_arrival: bool | None = None
    is_jsonl = p.suffix.lower() in (".jsonl", ".ndjson") or text.lstrip().startswith("{")
    if is_jsonl:
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{flag} {p} line {i}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SpecError(
                    f"{where}: not valid JSON ({exc.msg})", hint="one JSON object per line"
                ) from None
            if not isinstance(row, dict):
                raise SpecError(f"{where}: expected a JSON object with prompt_tokens and output_tokens")
            for key in ("prompt_tokens", "output_tokens"):
                if key not in row:
                    raise SpecError(
                        f"{where}: missing {key!r}", hint="each line needs prompt_tokens and output_tokens"
                    )
            prompts.append(_whole(row["prompt_tokens"], "prompt_tokens", where, 1))
            outputs.append(_whole(row["output_tokens"], "output_tokens", where, 1))
            here = "arrival_s" in row
            if has_arrival is None:
                has_arrival = here
            elif here != has_arrival:
                raise SpecError(f"{where}: arrival_s must be on every line or on none")
            if here:
                arrivals.append(_time(row["arrival_s"], where))
    else:
        reader = csv.reader(text.splitlines())
        header: list[str] | None = None
        for values in reader:
            line_no = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if header is None:
                header = [h.strip() for h in values]
                for key in ("prompt_tokens", "output_tokens"):
                    if key not in header:
                        raise SpecError(
                            f"{flag} {p} line {line_no}: the header must name prompt_tokens and output_tokens "
                            f"(optional arrival_s), got {','.join(header)!r}",
                            hint="first line: prompt_tokens,output_tokens[,arrival_s]",
                        )
                unknown = [h for h in header if h not in ("prompt_tokens", "output_tokens", "arrival_s")]
                if unknown:
                    raise SpecError(f"{flag} {p} line {line_no}: unknown column {unknown[0]!r}")
                has_arrival = "arrival_s" in header
                continue
            where = f"{flag} {p} line {line_no}"
            if len(values) != len(header):
                raise SpecError(f"{where}: {len(values)} values for {len(header)} columns")
            row = dict(zip(header, values, strict=True))
            prompts.append(_whole(row["prompt_tokens"], "prompt_tokens", where, 1))
            outputs.append(_whole(row["output_tokens"], "output_tokens", where, 1))
            if has_arrival:
                arrivals.append(_time(row["arrival_s"], where))
    if not prompts:
        raise SpecError(
            f"{flag} {p}: no requests in the file",
            hint="CSV: a header prompt_tokens,output_tokens[,arrival_s] and one row per request; or JSONL",
        )
    arr = np.sort(np.asarray(arrivals, dtype=np.float64)) if has_arrival else None
    return RequestFile(
        path=str(p),
        prompt_tokens=np.asarray(prompts, dtype=np.int64),
        output_tokens=np.asarray(outputs, dtype=np.int64),
        arrival_s=arr,
    )


@dataclass(frozen=True, kw_only=True)
class Workload:
    """The requests one replica serves.

    Attributes:
        prompt_tokens / output_tokens: per request (integers >= 1).
        arrival_s: arrival times (s, sorted) of an open-loop workload, or None for a closed loop.
        concurrency: clients of a closed loop (each sends its next request when the previous one ends),
            or None for an open loop.
        prefix_share: share of each prompt served from the prefix cache, in [0, 1).
        rate_rps: the offered Poisson rate (None for a closed loop or file arrivals). Units: requests/s.
        description: what generated it, for the output.
    """

    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    arrival_s: np.ndarray | None = None
    concurrency: int | None = None
    prefix_share: float = 0.0
    rate_rps: float | None = None
    description: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.prompt_tokens)
        if n < 1 or len(self.output_tokens) != n:
            raise SpecError("a workload needs at least one request, with one output length per prompt")
        if (self.arrival_s is None) == (self.concurrency is None):
            raise SpecError(
                "give the arrivals as exactly one of a rate (--rps), a concurrency (--concurrency) or a file "
                "with arrival_s",
            )
        if self.arrival_s is not None and len(self.arrival_s) != n:
            raise SpecError("one arrival time per request")
        if self.concurrency is not None and self.concurrency < 1:
            raise SpecError(f"--concurrency must be >= 1, got {self.concurrency}")
        if not (0.0 <= self.prefix_share < 1.0):
            raise SpecError(f"--prefix-share must be in [0, 1), got {self.prefix_share}")
        if int(np.min(self.prompt_tokens)) < 1 or int(np.min(self.output_tokens)) < 1:
            raise SpecError("prompt and output lengths must be >= 1")

    @property
    def n_requests(self) -> int:
        return len(self.prompt_tokens)

    @classmethod
    def poisson(
        cls,
        rate_rps: float,
        n_requests: int,
        prompt_tokens: int,
        output_tokens: int,
        *,
        seed: int = 0,
        prompt_dist: str = "fixed",
        output_dist: str = "fixed",
        prefix_share: float = 0.0,
        max_context: int | None = None,
        lengths: RequestFile | None = None,
    ) -> Workload:
        """``n_requests`` Poisson arrivals at ``rate_rps``; lengths as :func:`sample_lengths` (or the rows
        of ``lengths`` in order, repeated)."""
        if not (math.isfinite(rate_rps) and rate_rps > 0):
            raise SpecError(f"--rps must be a finite number > 0, got {rate_rps!r}", hint="e.g. --rps 2")
        rng = np.random.default_rng(seed)
        gaps = rng.exponential(1.0 / rate_rps, size=n_requests)
        arrival = np.cumsum(gaps) - gaps[0]
        p, o = _lengths(
            rng, n_requests, prompt_tokens, output_tokens, prompt_dist, output_dist, max_context, lengths
        )
        return cls(
            prompt_tokens=p,
            output_tokens=o,
            arrival_s=arrival,
            prefix_share=prefix_share,
            rate_rps=rate_rps,
            description=_describe(
                "poisson",
                rate_rps,
                None,
                n_requests,
                prompt_tokens,
                output_tokens,
                prompt_dist,
                output_dist,
                prefix_share,
                seed,
                lengths,
            ),
        )

    @classmethod
    def closed_loop(
        cls,
        concurrency: int,
        n_requests: int,
        prompt_tokens: int,
        output_tokens: int,
        *,
        seed: int = 0,
        prompt_dist: str = "fixed",
        output_dist: str = "fixed",
        prefix_share: float = 0.0,
        max_context: int | None = None,
        lengths: RequestFile | None = None,
    ) -> Workload:
        """``concurrency`` clients that together send ``n_requests`` requests back to back (the first
        ``concurrency`` arrive at t = 0)."""
        if concurrency < 1:
            raise SpecError(f"--concurrency must be >= 1, got {concurrency}")
        rng = np.random.default_rng(seed)
        p, o = _lengths(
            rng, n_requests, prompt_tokens, output_tokens, prompt_dist, output_dist, max_context, lengths
        )
        return cls(
            prompt_tokens=p,
            output_tokens=o,
            concurrency=concurrency,
            prefix_share=prefix_share,
            description=_describe(
                "closed-loop",
                None,
                concurrency,
                n_requests,
                prompt_tokens,
                output_tokens,
                prompt_dist,
                output_dist,
                prefix_share,
                seed,
                lengths,
            ),
        )

    @classmethod
    def from_file(cls, requests: RequestFile, *, prefix_share: float = 0.0) -> Workload:
        """The file's requests at the file's arrival times (it must have ``arrival_s``)."""
        if requests.arrival_s is None:
            raise SpecError(
                f"{requests.path} has no arrival_s column",
                hint="add arrival_s, or give --rps or --concurrency to draw arrivals",
            )
        return cls(
            prompt_tokens=requests.prompt_tokens,
            output_tokens=requests.output_tokens,
            arrival_s=requests.arrival_s - float(requests.arrival_s[0]),
            prefix_share=prefix_share,
            description={
                "arrivals": "file",
                "file": requests.path,
                "requests": len(requests.prompt_tokens),
                "mean_prompt_tokens": float(np.mean(requests.prompt_tokens)),
                "mean_output_tokens": float(np.mean(requests.output_tokens)),
                "prefix_share": prefix_share,
            },
        )


def _lengths(
    rng: np.random.Generator,
    n: int,
    prompt: int,
    output: int,
    prompt_dist: str,
    output_dist: str,
    max_context: int | None,
    lengths: RequestFile | None,
) -> tuple[np.ndarray, np.ndarray]:
    if n < 1:
        raise SpecError(f"--requests must be >= 1, got {n}")
    if lengths is not None:
        idx = np.arange(n) % len(lengths.prompt_tokens)
        return lengths.prompt_tokens[idx].copy(), lengths.output_tokens[idx].copy()
    cap_p = None if max_context is None else max(1, max_context - 1)
    p = sample_lengths(rng, n, prompt, prompt_dist, cap_p)
    o = sample_lengths(rng, n, output, output_dist)
    if max_context is not None:
        o = np.maximum(1, np.minimum(o, max_context - p))
    return p, o


def _describe(
    arrivals: str,
    rate: float | None,
    concurrency: int | None,
    n: int,
    prompt: int,
    output: int,
    prompt_dist: str,
    output_dist: str,
    prefix_share: float,
    seed: int,
    lengths: RequestFile | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "arrivals": arrivals,
        "rate_rps": rate,
        "concurrency": concurrency,
        "requests": n,
        "prefix_share": prefix_share,
        "seed": seed,
    }
    if lengths is not None:
        out["lengths_file"] = lengths.path
    else:
        out.update(
            {
                "prompt_tokens": prompt,
                "output_tokens": output,
                "prompt_distribution": prompt_dist,
                "output_distribution": output_dist,
            }
        )
    return out
