"""Does cleaning data pay? The same tiny language model trained on a corpus with injected duplicates and on
the same corpus after `mlcost data`'s dedup cuts, at EQUAL compute (same number of training tokens), plus
the clean corpus at the same number of epochs (fewer tokens: the time saved).

Corpus: the first 150 of gensim's offline news texts (lee_background.cor; benchmarks/_data_corpus.py), made
duplicate-free by brute force; 10% of the base documents are held out for evaluation (neither they nor copies of them are
trained on). Into the other 90%: 15% of documents get 4 exact copies and 2 near copies (3% token edits),
so about half of the dirty corpus's documents are duplicates (web corpora: Lee et al. 2021 found >10% of
sequences repeated; this is a heavier, deliberately visible rate).

Model: a 2-layer, 128-wide causal transformer over bytes (vocabulary 256, context 64, batch 8), AdamW,
trained on random windows of the concatenated corpus, one torch thread (robust when other jobs share the
cores; OpenMP threads spin badly when the machine is oversubscribed). Metric: held-out per-byte perplexity (and bits per byte).
Time and cost: measured wall time of each run on this CPU; the $ / GPU-hours / kWh saved for a target job
come from the same estimator as `mlcost estimate train` (price_cut), with the kept share measured here
applied to a 1T-token corpus (labelled: an illustration of the estimator path, not a measurement).

Run: python benchmarks/data_dedup_effect.py [--steps 400] [--seeds 1] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data_corpus import edit, load_base_texts, unique_base, write_jsonl
from _provenance import header

CTX = 64
WIDTH = 128
LAYERS = 2
HEADS = 4
BATCH = 8
#: Base news documents used (of lee_background.cor's 300): small enough that the equal-compute budget
#: passes over the dirty corpus about once, where repeats start to cost.
N_BASE = 150


def build(seed: int) -> tuple[list[str], list[str]]:
    """(dirty training documents, held-out documents)."""
    rng = random.Random(seed)
    base = [t for src, t in unique_base(load_base_texts())[0] if src == "lee"][:N_BASE]
    rng.shuffle(base)
    n_held = len(base) // 10
    held, train = base[:n_held], base[n_held:]
    vocab = sorted({w for t in train for w in t.split()})
    dirty = list(train)
    for i in rng.sample(range(len(train)), int(0.15 * len(train))):
        dirty += [train[i]] * 4 + [edit(train[i], 0.03, vocab, rng) for _ in range(2)]
    rng.shuffle(dirty)
    return dirty, held


def to_bytes(docs: list[str]) -> bytes:
    return b"\x00".join(d.encode("utf-8", errors="replace") for d in docs)


def model(torch: object) -> object:
    import torch.nn as nn

    class TinyGPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok = nn.Embedding(256, WIDTH)
            self.pos = nn.Embedding(CTX, WIDTH)
            layer = nn.TransformerEncoderLayer(
                WIDTH, HEADS, 4 * WIDTH, dropout=0.0, batch_first=True, norm_first=True
            )
            self.blocks = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(WIDTH)
            self.head = nn.Linear(WIDTH, 256)

        def forward(self, x):  # type: ignore[no-untyped-def]
            t = x.shape[1]
            mask = nn.Transformer.generate_square_subsequent_mask(t)
            h = self.tok(x) + self.pos.weight[:t]
            return self.head(self.norm(self.blocks(h, mask=mask, is_causal=True)))

    return TinyGPT()


def train(data: bytes, steps: int, seed: int) -> tuple[object, float]:
    import torch

    torch.manual_seed(seed)
    rng = random.Random(seed)
    net = model(torch)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.01)  # type: ignore[attr-defined]
    arr = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
    t0 = time.perf_counter()
    for step in range(steps):
        lr = 3e-3 * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.tensor([rng.randrange(len(arr) - CTX - 1) for _ in range(BATCH)])
        x = torch.stack([arr[i : i + CTX] for i in idx])
        y = torch.stack([arr[i + 1 : i + CTX + 1] for i in idx])
        loss = torch.nn.functional.cross_entropy(net(x).reshape(-1, 256), y.reshape(-1))  # type: ignore[operator]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net, time.perf_counter() - t0


def heldout_ppl(net: object, data: bytes) -> float:
    import torch

    arr = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
    n = (len(arr) - 1) // CTX
    total, count = 0.0, 0
    with torch.no_grad():
        for s in range(0, n, 64):
            rows = range(s, min(n, s + 64))
            x = torch.stack([arr[r * CTX : (r + 1) * CTX] for r in rows])
            y = torch.stack([arr[r * CTX + 1 : (r + 1) * CTX + 1] for r in rows])
            logits = net(x)  # type: ignore[operator]
            total += float(
                torch.nn.functional.cross_entropy(logits.reshape(-1, 256), y.reshape(-1), reduction="sum")
            )
            count += y.numel()
    return math.exp(total / count)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(header("data_dedup_effect: tiny LM on dirty vs deduplicated corpus, equal compute"))
    from mlcost.dataprep import CutConfig, JobTarget, price_cut, run_pipeline

    dirty, held = build(0)
    with tempfile.TemporaryDirectory() as tmp:
        src = write_jsonl(Path(tmp) / "dirty.jsonl", [{"id": i, "text": t} for i, t in enumerate(dirty)])
        res = run_pipeline(src, Path(tmp) / "out", CutConfig(cuts=("exact", "near"), workers=2))
        import json

        clean = [json.loads(x)["text"] for x in (Path(tmp) / "out" / "kept.jsonl").read_text().splitlines()]
    d_bytes, c_bytes, h_bytes = to_bytes(dirty), to_bytes(clean), to_bytes(held)
    print(
        f"dirty corpus {len(dirty):,} docs / {len(d_bytes):,} bytes; clean {len(clean):,} docs / {len(c_bytes):,} bytes "
        f"({res.removed['exact_duplicate']['documents']} exact + {res.removed['near_duplicate']['documents']} near removed); "
        f"held-out {len(held)} docs / {len(h_bytes):,} bytes; MiniLM tokens {res.tokens_before:,} -> {res.tokens_after:,}"
    )
    tokens_per_run = args.steps * BATCH * CTX
    same_epoch_steps = max(1, round(args.steps * len(c_bytes) / len(d_bytes)))
    print(
        f"model: {LAYERS} layers x {WIDTH} wide, byte vocabulary, context {CTX}, batch {BATCH}; equal compute = "
        f"{args.steps} steps = {tokens_per_run:,} training bytes each (dirty: {tokens_per_run / len(d_bytes):.2f} epochs, "
        f"clean: {tokens_per_run / len(c_bytes):.2f} epochs); clean at the dirty run's epochs = {same_epoch_steps} steps"
    )
    runs: dict[str, list[tuple[float, float]]] = {
        "dirty": [],
        "clean_equal_compute": [],
        "clean_same_epochs": [],
    }
    for seed in range(args.seeds):
        # Interleaved per seed so load from other jobs hits all three alike.
        for name, data, steps in (
            ("dirty", d_bytes, args.steps),
            ("clean_equal_compute", c_bytes, args.steps),
            ("clean_same_epochs", c_bytes, same_epoch_steps),
        ):
            net, wall = train(data, steps, seed)
            ppl = heldout_ppl(net, h_bytes)
            runs[name].append((ppl, wall))
            print(
                f"  seed {seed} {name:20s} held-out ppl {ppl:.3f} ({math.log2(ppl):.3f} bits/byte), train {wall:.1f} s"
            )
    print(f"\nmean over {args.seeds} seed(s) (min-max):")
    mean = {}
    for name, rs in runs.items():
        p = [r[0] for r in rs]
        w = [r[1] for r in rs]
        mean[name] = (sum(p) / len(p), sum(w) / len(w))
        print(
            f"  {name:20s} ppl {mean[name][0]:.3f} ({min(p):.3f}-{max(p):.3f}), train {mean[name][1]:.1f} s ({min(w):.1f}-{max(w):.1f})"
        )
    d, c, s = mean["dirty"], mean["clean_equal_compute"], mean["clean_same_epochs"]
    print(
        f"equal compute: clean/dirty held-out ppl = {c[0] / d[0]:.4f} ({'better' if c[0] < d[0] else 'not better'} with cleaning); "
        f"same epochs: clean ppl / dirty ppl = {s[0] / d[0]:.4f} at {s[1] / d[1]:.2f}x the training time "
        f"({d[1] - s[1]:.1f} s saved of {d[1]:.1f} s on this CPU)"
    )
    share = res.tokens_after / res.tokens_before
    p = price_cut(res.tokens_before, res.tokens_after, JobTarget(gpus=64, scale_to_tokens=1e12))
    print(
        f"estimator (same as `mlcost estimate train`), llama-3.1-8b on 64x h100-sxm, a 1T-token corpus with this kept share "
        f"({share:.3f}), same epochs: saves {p.saved['tokens']:.3g} tokens, {p.saved['device_hours']:,.0f} GPU-hours, "
        f"${p.saved['cost_usd']:,.0f}, {p.saved['energy_kwh']:,.0f} kWh, {p.saved['co2_kg']:,.0f} kg CO2e "
        f"(error band ±{p.error_band_relative:.0%}, upper edge wider)"
    )


if __name__ == "__main__":
    main()
