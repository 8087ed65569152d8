import math

import numpy as np
import pytest

from index import InvertedIndex
from lsr import load_encoder
from lsr.encoders import EncoderFormatError
from lsr.encoders.bm25 import BM25Encoder, lucene_length

DOCS = ["cat cat dog", "cat", "bird", ""]


def test_weights_computed_by_hand():
    enc = BM25Encoder(k1=0.9, b=0.4)
    d = enc.fit_encode_documents(DOCS)
    assert enc.terms() == ["cat", "dog", "bird"]
    assert enc.n_docs == 3 and enc.avgdl == pytest.approx(5 / 3)  # the empty document is not counted
    idf_cat = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))
    idf_one = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    norm = lambda dl: 0.9 * (1 - 0.4 + 0.4 * dl / (5 / 3))  # noqa: E731
    dense = d.toarray()
    assert dense[0, 0] == pytest.approx(idf_cat * 2 / (2 + norm(3)), rel=1e-6)
    assert dense[0, 1] == pytest.approx(idf_one * 1 / (1 + norm(3)), rel=1e-6)
    assert dense[1, 0] == pytest.approx(idf_cat * 1 / (1 + norm(1)), rel=1e-6)
    assert dense[2, 2] == pytest.approx(idf_one * 1 / (1 + norm(1)), rel=1e-6)
    assert dense[3].sum() == 0
    q = enc.encode_queries(["cat cat bird unknownword", "the"])
    assert q.toarray().tolist() == [[2.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    # the inner product is the BM25 score
    assert (q @ d.T).toarray()[0, 0] == pytest.approx(2 * dense[0, 0])


def test_fit_then_encode_equals_fit_encode():
    a = BM25Encoder().fit_encode_documents(DOCS)
    enc = BM25Encoder().fit(DOCS)
    b = enc.encode_documents(DOCS)
    assert (a != b).nnz == 0


def test_lucene_length_norms():
    dl = np.array([0, 1, 23, 24, 39, 40, 41, 100, 150, 1000])
    assert lucene_length(dl).tolist() == [0, 1, 23, 24, 39, 40, 40, 96, 144, 984]
    x = np.arange(0, 5000)
    q = lucene_length(x)
    assert (q <= x).all() and (np.diff(q) >= 0).all() and (q[:41] == x[:41]).all()
    # four significant bits: the error is below 1/8 of the length
    assert ((x - q)[50:] / x[50:] < 0.125).all()


def test_save_load_roundtrip(tmp_path):
    enc = BM25Encoder(k1=1.2, b=0.75, stemmer="english")
    d = enc.fit_encode_documents(DOCS + ["dogs and cats"])
    enc.save(tmp_path / "bm25")
    again = load_encoder(tmp_path / "bm25")
    assert isinstance(again, BM25Encoder) and again.config() == enc.config()
    assert again.vocabulary == enc.vocabulary
    assert (again.encode_documents(DOCS + ["dogs and cats"]) != d).nnz == 0


def test_broken_encoder_directories(tmp_path):
    enc = BM25Encoder().fit(DOCS)
    path = enc.save(tmp_path / "bm25")
    (path / "df.npy").unlink()
    with pytest.raises(EncoderFormatError, match="df.npy is missing"):
        load_encoder(path)
    path = enc.save(tmp_path / "bm25b")
    (path / "vocab.txt").write_text("cat\ndog\n")
    with pytest.raises(EncoderFormatError, match="2 terms"):
        load_encoder(path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EncoderFormatError, match="neither lsr.json"):
        load_encoder(tmp_path / "empty")


def test_specs_and_errors():
    enc = load_encoder("bm25:k1=1.2,b=0.75,stemmer=english,lucene_norms=false")
    assert (enc.k1, enc.b, enc.analyzer.stemmer_name, enc.lucene_norms) == (1.2, 0.75, "english", False)
    with pytest.raises(EncoderFormatError, match="unknown encoder 'splode'"):
        load_encoder("splode")
    with pytest.raises(ValueError, match="b must be in"):
        load_encoder("bm25:b=2")
    with pytest.raises(ValueError, match="unexpected keyword"):
        load_encoder("bm25:q=1")
    with pytest.raises(ValueError, match="key=value"):
        load_encoder("bm25:k1")
    with pytest.raises(RuntimeError, match="not fitted"):
        BM25Encoder().encode_queries(["x"])


def test_decode_and_vocabulary_guard():
    enc = BM25Encoder()
    d = enc.fit_encode_documents(DOCS)
    assert enc.decode(enc.encode_queries(["bird cat cat"])) == [("cat", 2.0), ("bird", 1.0)]
    idx = InvertedIndex.build(d, vocabulary=enc.vocabulary)
    other = BM25Encoder().fit(["completely different words"])
    q = other.encode_queries(["different"])
    with pytest.raises(ValueError):
        idx.search(q, k=1, vocabulary=other.vocabulary)
