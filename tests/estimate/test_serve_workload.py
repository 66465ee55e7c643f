"""Workloads: request files are validated line by line; distributions keep their mean; seeds repeat."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlcost.errors import SpecError
from mlcost.estimate.serve_workload import Workload, read_request_file, sample_lengths


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        (
            "prompt_tokens,output_tokens\n100,20\n50,-3\n",
            ".csv",
            r"line 3: output_tokens must be a whole number >= 1, got -3",
        ),
        ("prompt_tokens,output_tokens\n100,20.5\n", ".csv", r"line 2: output_tokens .* got '20.5'"),
        ("prompt_tokens,output_tokens\n", ".csv", "no requests"),
        ("", ".csv", "no requests"),
        (
            '{"prompt_tokens": 10, "output_tokens": 5}\n{"prompt_tokens": 1.5, "output_tokens": 5}\n',
            ".jsonl",
            "line 2: prompt_tokens",
        ),
        ('{"prompt_tokens": 10}\n', ".jsonl", "line 1: missing 'output_tokens'"),
        ("prompt,output\n1,2\n", ".csv", "line 1: the header"),
        ("prompt_tokens,output_tokens,arrival_s\n5,5,-1\n", ".csv", "line 2: arrival_s"),
    ],
)
def test_bad_request_files_name_file_and_line(tmp_path: Path, text: str, suffix: str, message: str) -> None:
    f = tmp_path / f"reqs{suffix}"
    f.write_text(text)
    with pytest.raises(SpecError, match=message) as err:
        read_request_file(f)
    assert str(f) in err.value.message


def test_good_files(tmp_path: Path) -> None:
    f = tmp_path / "r.csv"
    f.write_text("prompt_tokens,output_tokens,arrival_s\n100,20,0.5\n50,3,0.1\n")
    r = read_request_file(f)
    assert list(r.prompt_tokens) == [100, 50] and r.arrival_s is not None and list(r.arrival_s) == [0.1, 0.5]
    w = Workload.from_file(r)
    assert w.arrival_s is not None and w.arrival_s[0] == 0.0
    j = tmp_path / "r.jsonl"
    j.write_text('{"prompt_tokens": 7, "output_tokens": 2}\n\n{"prompt_tokens": 9, "output_tokens": 4}\n')
    wl = Workload.poisson(1.0, 5, 1, 1, lengths=read_request_file(j))
    assert list(wl.prompt_tokens) == [7, 9, 7, 9, 7]


@pytest.mark.parametrize("dist", ["fixed", "uniform", "exponential", "lognormal"])
def test_distributions_keep_the_mean(dist: str) -> None:
    x = sample_lengths(np.random.default_rng(0), 200_000, 400, dist)
    assert x.min() >= 1 and x.mean() == pytest.approx(400, rel=0.02)


def test_bad_rates() -> None:
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(SpecError, match="--rps"):
            Workload.poisson(bad, 10, 10, 10)
    with pytest.raises(SpecError, match="--prefix-share"):
        Workload.poisson(1.0, 10, 10, 10, prefix_share=1.0)
