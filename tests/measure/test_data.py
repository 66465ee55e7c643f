from __future__ import annotations

import pytest

from mlcost.errors import SpecError
from mlcost.measure.data import ByteTokenizer, generate_text, gensim_text_path, make_dataset


def test_byte_tokenizer_roundtrip():
    tok = ByteTokenizer()
    ids = tok.encode("héllo")
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert max(ids) < tok.vocab_size == 259
    assert tok.decode(ids) == "héllo"


def test_generated_text_is_deterministic():
    assert generate_text(300, seed=1) == generate_text(300, seed=1)
    assert generate_text(300, seed=1) != generate_text(300, seed=2)


def test_text_needs_byte_vocab(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(generate_text(500))
    with pytest.raises(SpecError):
        make_dataset(vocab_size=128, seq_len=16, path=path)
    with pytest.raises(SpecError):
        make_dataset(vocab_size=512, seq_len=16, path=tmp_path / "missing.txt")


def _text_file(tmp_path):
    real = gensim_text_path()
    if real is not None:
        return real
    path = tmp_path / "corpus.txt"
    path.write_text(generate_text(5000))
    return path


def test_loader_yields_batches_of_text(tmp_path):
    pytest.importorskip("torch")
    from mlcost.measure.data import make_loader

    ds = make_dataset(vocab_size=512, seq_len=32, path=_text_file(tmp_path))
    batch = next(make_loader(ds, micro_batch=4))
    assert tuple(batch.shape) == (4, 32)
    assert int(batch.max()) < 259


def test_synthetic_is_reproducible_and_sharded():
    pytest.importorskip("torch")
    from mlcost.measure.data import make_loader

    ds = make_dataset(vocab_size=100, seq_len=8, seed=3)
    a = next(make_loader(ds, micro_batch=2))
    b = next(make_loader(ds, micro_batch=2))
    assert a.equal(b) and int(a.max()) < 100
    r0 = next(make_loader(ds, micro_batch=1, rank=0, world_size=2))
    r1 = next(make_loader(ds, micro_batch=1, rank=1, world_size=2))
    assert not r0.equal(r1)


def test_loader_with_workers():
    pytest.importorskip("torch")
    from mlcost.measure.data import make_loader

    ds = make_dataset(vocab_size=50, seq_len=8)
    it = make_loader(ds, micro_batch=2, workers=1)
    assert tuple(next(it).shape) == (2, 8)
