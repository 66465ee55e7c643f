"""Evaluation tasks and their quality metrics, each with a bootstrap interval over the evaluation examples.

Metrics come from scikit-learn (``accuracy_score``, ``f1_score(average="macro")``, ``LogisticRegression`` with
``StratifiedKFold`` cross-validation): a maintained, numpy-native library whose definitions are the reference
most papers use, cheap enough to recompute on 1,000 bootstrap resamples. Perplexity is exp(mean token NLL),
computed from torch's cross-entropy. Embedding fidelity is the cosine of each example's embedding to the
original model's and the agreement of their top-k nearest neighbours within the evaluation set.

A task turns a model's outputs into per-example arrays once; every metric is then a function of a set of
example indices, which is what the bootstrap resamples.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlcost.compress.errors import CompressError
from mlcost.compress.models import ModelBundle
from mlcost.compress.stats import Interval, metric_interval, paired_delta_interval

Batch = dict[str, Any]
Predict = Callable[[Batch], Any]
#: Evaluation batch size (quality only; speed is measured at the batch sizes asked for).
EVAL_BATCH = 32


@dataclass(frozen=True)
class Metric:
    """A quality metric: its name, direction, display scale and its aggregate over example indices."""

    name: str
    higher_is_better: bool
    #: ``fraction`` (shown in % and points), ``ratio`` (shown raw) or ``perplexity``.
    scale: str
    fn: Callable[[dict[str, np.ndarray], np.ndarray], float]
    description: str


@dataclass
class MetricResult:
    name: str
    value: Interval
    delta: Interval
    higher_is_better: bool
    scale: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value.value,
            "low": self.value.low,
            "high": self.value.high,
            "delta": self.delta.value,
            "delta_low": self.delta.low,
            "delta_high": self.delta.high,
            "higher_is_better": self.higher_is_better,
            "scale": self.scale,
        }


class Task:
    """Base class: evaluation batches, how to collect outputs, per-example arrays, metrics."""

    name: str = "task"
    primary: str = ""
    metrics: tuple[Metric, ...] = ()

    def eval_batches(self) -> list[Batch]:
        raise NotImplementedError

    def collect(self, bundle: ModelBundle, predict: Predict) -> np.ndarray:
        """Run every evaluation batch and keep what the metrics need, per example."""
        import torch

        outs = []
        with torch.inference_mode():
            for batch in self.eval_batches():
                outs.append(np.asarray(self.reduce(batch, predict(batch))))
        return np.concatenate(outs)

    def reduce(self, batch: Batch, out: Any) -> np.ndarray:
        return np.asarray(_numpy(out))

    def per_example(self, out: np.ndarray, ref: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def bench_batch(self, batch_size: int) -> Batch:
        """A representative input of ``batch_size`` examples for timing."""
        raise NotImplementedError

    def train_batches(self, steps: int, batch_size: int, seed: int) -> Iterator[Batch] | None:
        """Training batches for recovery fine-tunes and distillation, or None when the task has none."""
        return None

    def evaluate(self, out: np.ndarray, ref: np.ndarray, *, n_boot: int = 1000) -> dict[str, MetricResult]:
        """Every metric of ``out`` with its interval, and its paired delta to ``ref`` (the original)."""
        variant, original = self.per_example(out, ref), self.per_example(ref, ref)
        n = len(next(iter(variant.values())))
        results = {}
        for m in self.metrics:

            def fv(idx: np.ndarray, m: Metric = m) -> float:
                return m.fn(variant, idx)

            def fo(idx: np.ndarray, m: Metric = m) -> float:
                return m.fn(original, idx)

            results[m.name] = MetricResult(
                name=m.name,
                value=metric_interval(fv, n, n_boot=n_boot),
                delta=paired_delta_interval(fv, fo, n, n_boot=n_boot),
                higher_is_better=m.higher_is_better,
                scale=m.scale,
            )
        return results

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "primary_metric": self.primary,
            "metrics": {m.name: m.description for m in self.metrics},
        }


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().float().cpu().numpy()  # type: ignore[no-any-return]
    return np.asarray(x)


# ---------------------------------------------------------------- classification
def _accuracy(d: dict[str, np.ndarray], idx: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(d["y"][idx], d["pred"][idx]))


def _macro_f1(d: dict[str, np.ndarray], idx: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(d["y"][idx], d["pred"][idx], average="macro", labels=d["classes"], zero_division=0))


class ClassificationTask(Task):
    """Labelled examples scored by the model's arg-max class: accuracy and macro-F1."""

    primary = "accuracy"
    metrics = (
        Metric("accuracy", True, "fraction", _accuracy, "share of examples whose arg-max class is the label"),
        Metric("macro_f1", True, "fraction", _macro_f1, "unweighted mean of per-class F1 (scikit-learn)"),
    )

    def __init__(
        self,
        name: str,
        inputs: list[Batch],
        labels: np.ndarray,
        *,
        n_classes: int,
        train: tuple[Any, Any] | None = None,
        make_batch: Callable[[Any], Batch] | None = None,
    ) -> None:
        self.name = name
        self._batches = inputs
        self.labels = np.asarray(labels)
        self.n_classes = n_classes
        self._train = train
        self._make_batch = make_batch

    def eval_batches(self) -> list[Batch]:
        return self._batches

    def reduce(self, batch: Batch, out: Any) -> np.ndarray:
        logits = _numpy(out)
        if logits.ndim != 2 or logits.shape[1] != self.n_classes:
            raise CompressError(
                f"the model outputs {logits.shape[-1]} classes but the task has {self.n_classes} labels",
                hint="give labelled data whose labels are the model's classes",
            )
        return logits.argmax(1)

    def per_example(self, out: np.ndarray, ref: np.ndarray) -> dict[str, np.ndarray]:
        return {"y": self.labels, "pred": out, "classes": np.arange(self.n_classes)}

    def bench_batch(self, batch_size: int) -> Batch:
        return _take(self._batches, batch_size)

    def train_batches(self, steps: int, batch_size: int, seed: int) -> Iterator[Batch] | None:
        if self._train is None or self._make_batch is None:
            return None
        x, y = self._train
        return _minibatches(x, y, steps, batch_size, seed, self._make_batch)


def _minibatches(
    x: Any, y: Any, steps: int, batch_size: int, seed: int, make: Callable[[Any], Batch]
) -> Iterator[Batch]:
    import torch

    rng = np.random.default_rng(seed)
    for _ in range(steps):
        idx = rng.choice(len(x), size=min(batch_size, len(x)), replace=False)
        batch = make([x[i] for i in idx] if isinstance(x, list) else x[idx])
        if y is not None:
            batch["labels"] = torch.as_tensor(np.asarray(y)[idx]).long()
        yield batch


def _take(batches: list[Batch], n: int) -> Batch:
    """The first ``n`` examples of the evaluation batches (cycled when there are fewer), as one batch."""
    import torch

    keys = list(batches[0])
    rows: dict[str, list[Any]] = {k: [] for k in keys}
    total = 0
    while total < n:
        for b in batches:
            for k in keys:
                rows[k].extend(list(b[k]))
            total += len(b[keys[0]])
            if total >= n:
                break
    out = {}
    for k in keys:
        items = rows[k][:n]
        if items[0].dim() == 1 and k in ("input_ids", "attention_mask"):
            out[k] = torch.nn.utils.rnn.pad_sequence(items, batch_first=True)
        else:
            out[k] = torch.stack(items)
    return out


def tensor_classification_task(
    name: str, x: Any, y: Any, *, n_classes: int, train: tuple[Any, Any] | None = None
) -> ClassificationTask:
    """A classification task over tensor inputs (images): batches of :data:`EVAL_BATCH` under ``pixels``."""
    import torch

    def make(xs: Any) -> Batch:
        return {"pixels": torch.as_tensor(np.asarray(xs))}

    batches = [make(x[i : i + EVAL_BATCH]) for i in range(0, len(x), EVAL_BATCH)]
    return ClassificationTask(name, batches, np.asarray(y), n_classes=n_classes, train=train, make_batch=make)


# ---------------------------------------------------------------- text helpers
def tokenize(bundle: ModelBundle, texts: list[str]) -> Batch:
    tok = bundle.tokenizer
    enc = tok(texts, padding=True, truncation=True, max_length=bundle.max_length, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def text_batches(bundle: ModelBundle, texts: list[str]) -> list[Batch]:
    return [tokenize(bundle, texts[i : i + EVAL_BATCH]) for i in range(0, len(texts), EVAL_BATCH)]


def text_classification_task(
    bundle: ModelBundle, texts: list[str], labels: np.ndarray, *, name: str
) -> ClassificationTask:
    assert bundle.labels is not None
    return ClassificationTask(
        name,
        text_batches(bundle, texts),
        labels,
        n_classes=len(bundle.labels),
        train=None,
        make_batch=lambda xs: tokenize(bundle, list(xs)),
    )


# ---------------------------------------------------------------- embeddings
def _cosine(d: dict[str, np.ndarray], idx: np.ndarray) -> float:
    return float(np.mean(d["cos"][idx]))


def _knn(d: dict[str, np.ndarray], idx: np.ndarray) -> float:
    return float(np.mean(d["knn"][idx]))


def _downstream(d: dict[str, np.ndarray], idx: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(d["y"][idx], d["pred"][idx]))


def neighbours(emb: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's ``k`` nearest rows by cosine (rows are L2-normalised), excluding itself."""
    sims = emb @ emb.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def cv_predictions(emb: np.ndarray, labels: np.ndarray, *, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold predictions of a logistic regression on the embeddings (stratified k-fold, fixed seed)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    counts = np.bincount(np.unique(labels, return_inverse=True)[1])
    k = int(min(folds, counts.min()))
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return cross_val_predict(LogisticRegression(max_iter=2000, C=10.0), emb, labels, cv=cv)  # type: ignore[no-any-return]


class EmbeddingTask(Task):
    """Sentence embeddings: fidelity to the original (cosine, top-k neighbour agreement) and a downstream
    score: logistic-regression accuracy on the embeddings with stratified 5-fold cross-validation."""

    primary = "downstream_accuracy"

    def __init__(
        self,
        name: str,
        bundle: ModelBundle,
        texts: list[str],
        labels: np.ndarray,
        *,
        k: int = 10,
        train_texts: list[str] | None = None,
    ) -> None:
        self.name = name
        self.bundle = bundle
        self.texts = texts
        self.labels = np.asarray(labels)
        self.k = k
        self.train_texts = train_texts
        self._batches = text_batches(bundle, texts)
        self.metrics = (
            Metric(
                "downstream_accuracy",
                True,
                "fraction",
                _downstream,
                "logistic regression on the embeddings, stratified 5-fold cross-validated accuracy",
            ),
            Metric(
                "cosine_to_original",
                True,
                "ratio",
                _cosine,
                "mean cosine of each embedding to the original's",
            ),
            Metric(
                f"top{k}_agreement",
                True,
                "fraction",
                _knn,
                f"share of each example's {k} nearest neighbours that the original model also ranks top-{k}",
            ),
        )

    def eval_batches(self) -> list[Batch]:
        return self._batches

    def per_example(self, out: np.ndarray, ref: np.ndarray) -> dict[str, np.ndarray]:
        out, ref = out.astype(np.float64), ref.astype(np.float64)
        out_n = out / np.linalg.norm(out, axis=1, keepdims=True).clip(1e-12)
        ref_n = ref / np.linalg.norm(ref, axis=1, keepdims=True).clip(1e-12)
        nn_o, nn_r = neighbours(out_n, self.k), neighbours(ref_n, self.k)
        knn = np.array([len(set(a) & set(b)) / self.k for a, b in zip(nn_o, nn_r, strict=True)])
        return {
            "cos": np.sum(out_n * ref_n, axis=1),
            "knn": knn,
            "y": self.labels,
            "pred": cv_predictions(out_n, self.labels),
        }

    def bench_batch(self, batch_size: int) -> Batch:
        return tokenize(self.bundle, [self.texts[i % len(self.texts)] for i in range(batch_size)])

    def train_batches(self, steps: int, batch_size: int, seed: int) -> Iterator[Batch] | None:
        if not self.train_texts:
            return None
        return _minibatches(
            self.train_texts, None, steps, batch_size, seed, lambda xs: tokenize(self.bundle, xs)
        )


# ---------------------------------------------------------------- language modelling
def _perplexity(d: dict[str, np.ndarray], idx: np.ndarray) -> float:
    return float(np.exp(d["nll"][idx].sum() / d["tokens"][idx].sum()))


class PerplexityTask(Task):
    """Held-out text cut into windows; perplexity = exp(total next-token NLL / predicted tokens)."""

    primary = "perplexity"
    metrics = (
        Metric(
            "perplexity", False, "perplexity", _perplexity, "exp of the mean next-token NLL on held-out text"
        ),
    )

    def __init__(self, name: str, windows: Any, *, train_ids: Any = None, seq_len: int = 128) -> None:
        self.name = name
        self.windows = windows  # (N, seq_len) long tensor
        self.train_ids = train_ids
        self.seq_len = seq_len

    def eval_batches(self) -> list[Batch]:
        return [
            {"input_ids": self.windows[i : i + EVAL_BATCH]} for i in range(0, len(self.windows), EVAL_BATCH)
        ]

    def reduce(self, batch: Batch, out: Any) -> np.ndarray:
        import torch.nn.functional as F

        ids = batch["input_ids"]
        nll = F.cross_entropy(out[:, :-1].transpose(1, 2).float(), ids[:, 1:], reduction="none").sum(1)
        return np.stack([nll.numpy(), np.full(len(ids), ids.shape[1] - 1)], axis=1)

    def per_example(self, out: np.ndarray, ref: np.ndarray) -> dict[str, np.ndarray]:
        return {"nll": out[:, 0], "tokens": out[:, 1]}

    def bench_batch(self, batch_size: int) -> Batch:
        import torch

        idx = torch.arange(batch_size) % len(self.windows)
        return {"input_ids": self.windows[idx]}

    def train_batches(self, steps: int, batch_size: int, seed: int) -> Iterator[Batch] | None:
        if self.train_ids is None:
            return None
        import torch

        gen = torch.Generator().manual_seed(seed)
        ids = self.train_ids

        def it() -> Iterator[Batch]:
            for _ in range(steps):
                off = torch.randint(0, len(ids) - self.seq_len - 1, (batch_size,), generator=gen)
                yield {"input_ids": torch.stack([ids[o : o + self.seq_len] for o in off])}

        return it()


def windows_of(ids: Any, seq_len: int) -> Any:
    n = len(ids) // seq_len
    return ids[: n * seq_len].reshape(n, seq_len)


# ---------------------------------------------------------------- user data files
def read_labelled_file(path: str | Path, *, flag: str = "--data") -> tuple[list[str], list[str]]:
    """(texts, labels) from a JSONL file (one ``{"text": ..., "label": ...}`` per line) or a CSV file with a
    header holding ``text`` and ``label`` columns."""
    p = Path(path)
    if not p.is_file():
        raise CompressError(
            f"{flag} {path}: no such file", hint="give a .jsonl or .csv file of labelled text"
        )
    try:
        raw = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CompressError(f"{flag} {path}: cannot read it as UTF-8 text ({exc})") from exc
    if not raw.strip():
        raise CompressError(
            f"{flag} {path}: the file is empty", hint="it needs labelled examples, one per line"
        )
    texts: list[str] = []
    labels: list[str] = []
    if p.suffix.lower() == ".csv":
        reader = csv.DictReader(raw.splitlines())
        fields = reader.fieldnames or []
        if "text" not in fields or "label" not in fields:
            raise CompressError(
                f"{flag} {path}: the CSV header must name 'text' and 'label' columns (found {fields})"
            )
        for lineno, row in enumerate(reader, start=2):
            text, label = (row.get("text") or "").strip(), (row.get("label") or "").strip()
            if not text or not label:
                raise CompressError(f"{flag} {path}: line {lineno} has an empty text or label")
            texts.append(text)
            labels.append(label)
    elif p.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        for lineno, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CompressError(
                    f"{flag} {path}: line {lineno} is not valid JSON ({exc.msg})",
                    hint='each line must be an object like {"text": "...", "label": "..."}',
                ) from exc
            if not isinstance(row, dict) or "text" not in row or "label" not in row:
                raise CompressError(f'{flag} {path}: line {lineno} needs "text" and "label" keys')
            if not str(row["text"]).strip():
                raise CompressError(f"{flag} {path}: line {lineno} has an empty text")
            texts.append(str(row["text"]))
            labels.append(str(row["label"]))
    else:
        raise CompressError(f"{flag} {path}: unknown file type {p.suffix!r}", hint="use .jsonl or .csv")
    if len(texts) < 2:
        raise CompressError(f"{flag} {path}: {len(texts)} example(s); at least 2 are needed")
    return texts, labels


def task_from_file(bundle: ModelBundle, path: str | Path, *, flag: str = "--data") -> Task:
    """A task over a user's labelled file, checked against what the model outputs."""
    texts, labels = read_labelled_file(path, flag=flag)
    if bundle.tokenizer is None:
        raise CompressError(f"{flag}: labelled text needs a text model with a tokenizer, not {bundle.name}")
    if bundle.kind == "classifier":
        names = bundle.labels or []
        index = {name: i for i, name in enumerate(names)}
        index.update({str(i): i for i in range(len(names))})
        unknown = sorted({lab for lab in labels if lab not in index})
        if unknown:
            raise CompressError(
                f"{flag} {path}: labels {', '.join(unknown[:5])} are not among the model's outputs "
                f"({', '.join(names)})",
                hint="use the model's label names (config id2label) or class indices",
            )
        return text_classification_task(
            bundle, texts, np.array([index[lab] for lab in labels]), name=Path(path).name
        )
    if bundle.kind == "encoder":
        classes, y = np.unique(np.array(labels), return_inverse=True)
        counts = np.bincount(y)
        if len(classes) < 2 or counts.min() < 2:
            raise CompressError(
                f"{flag} {path}: the downstream score needs at least 2 classes with 2 examples each "
                f"(found {dict(zip(classes.tolist(), counts.tolist(), strict=True))})"
            )
        return EmbeddingTask(Path(path).name, bundle, texts, y)
    raise CompressError(
        f"{flag}: labelled data does not fit a language model",
        hint="language models are scored by perplexity on their example's held-out text",
    )


# ---------------------------------------------------------------- the examples' tasks
def example_task(bundle: ModelBundle, example: str) -> Task:
    """The evaluation task that goes with a built-in example."""
    from mlcost.compress import examples

    if example == "digits-cnn":
        x_train, x_test, y_train, y_test = examples.digits_split()
        return tensor_classification_task(
            "digits test split (599 images)", x_test, y_test, n_classes=10, train=(x_train, y_train)
        )
    if example == "minilm":
        texts, labels = examples.movie_review_sentences()
        train = [
            s.strip() + "." for d in examples.lee_documents() for s in d.split(". ") if len(s.split()) > 3
        ]
        return EmbeddingTask(
            "200 labelled movie-review sentences (gensim pang_lee_polarity)",
            bundle,
            texts,
            np.array(labels),
            train_texts=train,
        )
    import torch

    train_text, held_out = examples.tiny_gpt_text()
    tok = bundle.tokenizer
    seq = examples.TINY_GPT["seq_len"]
    windows = windows_of(torch.tensor(tok.encode(held_out), dtype=torch.long), seq)
    return PerplexityTask(
        f"held-out Lee news text ({len(windows)} windows of {seq} characters)",
        windows,
        train_ids=torch.tensor(tok.encode(train_text), dtype=torch.long),
        seq_len=seq,
    )
