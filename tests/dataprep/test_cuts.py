"""The cuts one by one: normalisation and exact hashes, MinHash LSH, quality filters, PII, decontamination,
token counts."""

from __future__ import annotations

import random

import pytest

from mlcost.dataprep import pii
from mlcost.dataprep.decontam import EvalIndex
from mlcost.dataprep.exact import ExactIndex, text_hash
from mlcost.dataprep.normalize import normalize, shingles, words
from mlcost.dataprep.quality import first_failure, load_filters
from mlcost.dataprep.tokens import TokenCounter, resolve_tokenizer
from mlcost.errors import SpecError

from .corpus import lee_texts, synthetic_text


def test_normalize_folds_case_width_and_spaces() -> None:
    assert normalize("  Hello\t\tＷｏｒｌｄ \n") == "hello world"
    assert text_hash(normalize("A  b")) == text_hash(normalize("a b"))
    assert text_hash(normalize("a b")) != text_hash(normalize("a c"))
    assert words("it's 3 o'clock.") == ["it", "s", "3", "o", "clock"]
    assert shingles(["a", "b", "c"], 2) == {b"a b", b"b c"}
    assert shingles(["a"], 3) == {b"a"}


def test_exact_index_keeps_first_id() -> None:
    idx = ExactIndex()
    assert idx.lookup(b"h") is None
    idx.add(b"h", "first")
    idx.add(b"h", "second")
    assert idx.lookup(b"h") == "first" and len(idx) == 1


def test_minhash_config_states_banding_and_validates() -> None:
    pytest.importorskip("datasketch")
    from mlcost.dataprep.minhash import NearDupConfig

    cfg = NearDupConfig()
    b, r = cfg.banding
    assert b * r <= cfg.num_perm and cfg.to_dict()["bands"] == b
    # The S-curve: far below the threshold rarely a candidate, far above almost always.
    assert cfg.candidate_probability(0.2) < 0.05 < 0.95 < cfg.candidate_probability(0.8)
    assert NearDupConfig(bands=16, rows=8).banding == (16, 8)
    with pytest.raises(SpecError, match="--bands"):
        NearDupConfig(bands=20, rows=8)
    with pytest.raises(SpecError, match="--near-threshold"):
        NearDupConfig(threshold=1.5)


def test_minhash_finds_an_edited_copy_of_a_news_text_and_not_other_texts() -> None:
    pytest.importorskip("datasketch")
    from mlcost.dataprep.minhash import NearDupConfig, NearDupIndex, signatures

    texts = lee_texts()[:40]
    rng = random.Random(0)
    toks = words(normalize(texts[5]))
    edited = [w if rng.random() > 0.03 else "zzz" for w in toks]  # 3% substitutions
    cfg = NearDupConfig()
    sets = [shingles(words(normalize(t)), cfg.shingle_size) for t in texts] + [
        shingles(edited, cfg.shingle_size)
    ]
    sigs = signatures(sets, cfg)
    idx = NearDupIndex(cfg)
    hits = [idx.check_add(s, i, f"d{i}") for i, s in enumerate(sigs)]
    assert hits[-1] == (5, "d5")
    # The first 40 news texts hold no duplicate pair (brute-force 3-gram Jaccard < 0.3): none is matched.
    assert all(h is None for h in hits[:40]) and idx.size == 40


def test_quality_filters_have_sources_and_fire() -> None:
    filters = load_filters()
    assert filters and all(f.source and (f.min is not None or f.max is not None) for f in filters)
    good = synthetic_text(random.Random(1), 150)
    assert first_failure(good, filters) is None
    assert first_failure("too short to keep", filters)[0] == "gopher_word_count"  # type: ignore[index]
    code = good + " function f() { return 1; }"
    assert first_failure(code, filters)[0] == "c4_curly_bracket"  # type: ignore[index]
    repeated = "\n".join(["buy cheap watches now and save the money."] * 20 + [good])
    name, value, bound = first_failure(repeated, filters)  # type: ignore[misc]
    assert name.startswith("gopher_") and value > 0 and bound.startswith(">")
    no_stop = " ".join(["market river energy school garden music window history."] * 10)
    assert first_failure(no_stop, filters) is not None


def test_pii_replaces_counts_and_never_drops() -> None:
    text = (
        "Mail jane.doe@example.org, call +1 (415) 555-2671 or 020 7946 0958. Server 192.168.1.20 and "
        "2001:db8::8a2e:370:7334. Card 4111 1111 1111 1111; order 1234 5678 9012 3456 is not a card. "
        "Year 2024, version 1.2.3, price 12.50."
    )
    out, counts = pii.redact(text)
    assert counts == {"email": 1, "phone": 2, "ip_address": 2, "credit_card": 1}
    assert "<EMAIL>" in out and "<CREDIT_CARD>" in out and "1234 5678 9012 3456" in out
    assert "Year 2024, version 1.2.3, price 12.50." in out
    assert pii.luhn_ok("4111111111111111") and not pii.luhn_ok("4111111111111112")
    assert pii.redact("no pii here") == ("no pii here", {})


def test_decontamination_counts_shared_ngrams() -> None:
    ev = EvalIndex.build(
        ["the cat sat on the mat and looked at the dog for a very long time indeed", "short q"], n=13
    )
    assert ev.documents == 2 and ev.short_lengths == {2}
    leaked = words(
        normalize("Intro. The cat sat on the mat and looked at the dog for a very long time. End.")
    )
    assert ev.hits(leaked) >= 1
    assert ev.hits(words("a short q here")) == 1
    assert ev.hits(words("nothing in common with the evaluation set at all here today")) == 0


def test_tokenizer_minilm_and_labelled_byte_fallback() -> None:
    byte = resolve_tokenizer("bytes")
    assert "byte" in byte.label and TokenCounter(byte).count(["héllo"]) == [6]
    choice = resolve_tokenizer("minilm")
    if choice.kind != "tokenizers":
        pytest.skip("MiniLM tokenizer not installed: " + choice.label)
    long = "word " * 2000
    assert TokenCounter(choice).count(["Hello world!", long]) == [3, 2000]  # no truncation, no specials
