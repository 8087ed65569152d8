"""SLIM: token vectors, pooling, late interaction against a brute-force reference."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from lsr import build_index  # noqa: E402
from lsr.encoders.models import random_mlm  # noqa: E402
from lsr.encoders.slim import SlimEncoder  # noqa: E402
from lsr.pipeline import Retriever  # noqa: E402

WORDS = "the cat sat on mat dog dogs bark insulin resistance muscle cells fish swim river bank money".split()
DOCS = ["the cat sat on the mat", "dogs bark at the cat", "insulin resistance in muscle cells",
        "fish swim in the river", "the bank has money", "cat and dog and fish"]


@pytest.fixture(scope="module")
def enc(tmp_path_factory):
    from transformers import BertTokenizerFast

    d = tmp_path_factory.mktemp("tok")
    (d / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    tok = BertTokenizerFast(vocab=str(d / "vocab.txt"))
    model = random_mlm(vocab_size=len(tok), hidden=16, layers=1, heads=2, seed=5)
    return SlimEncoder(model, tok, token_top_k=4, rerank=100)


def dense_tokens(enc, texts, max_length):
    """Reference token vectors: full logits, log1p(ReLU), top-k per token, as dense arrays per text."""
    tok = enc.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        w = torch.log1p(torch.relu(enc.model(**tok).logits))
    out = []
    for b in range(len(texts)):
        rows = w[b][tok["attention_mask"][b].bool()]
        vals, idx = torch.topk(rows, enc.token_top_k, dim=1)
        dense = torch.zeros_like(rows).scatter_(1, idx, vals)
        out.append(dense.numpy())
    return out


def test_token_vectors_and_pooling_match_reference(enc):
    store = enc.encode_document_tokens(DOCS)
    ref = dense_tokens(enc, DOCS, enc.doc_max_length)
    assert np.diff(store.offsets).tolist() == [r.shape[0] for r in ref]
    np.testing.assert_allclose(store.tokens.toarray(), np.vstack(ref), rtol=1e-5, atol=1e-6)
    pooled = enc.encode_documents(DOCS).toarray()
    np.testing.assert_allclose(pooled, np.vstack([r.max(axis=0) for r in ref]), rtol=1e-5, atol=1e-6)


def test_search_equals_brute_force_late_interaction(enc, tmp_path):
    r = build_index(list(zip([f"d{i}" for i in range(len(DOCS))], DOCS)), enc, show_progress=False)
    assert r.token_store is not None and len(r.token_store) == len(DOCS)
    queries = ["cat on mat", "muscle insulin", "river fish bank"]
    dref = dense_tokens(enc, DOCS, enc.doc_max_length)
    qref = dense_tokens(enc, queries, enc.query_max_length)
    res = r.search(queries, k=3)
    for i, q in enumerate(qref):
        scores = np.array([(q @ d.T).max(axis=1).clip(min=0).sum() for d in dref])
        # every document is a candidate here (rerank >= corpus), so the ranking is the exhaustive one
        cands = set(np.flatnonzero(scores > 0))
        top = sorted(cands, key=lambda j: (-scores[j], j))[:3]
        got = [int(x) for x in res.doc_idx[i] if x >= 0]
        assert got[: len(top)] == top[: len(got)]
        np.testing.assert_allclose(res.scores[i][: len(got)], scores[got], rtol=1e-4)
    path = r.save(tmp_path / "idx")
    again = Retriever.load(path)
    np.testing.assert_array_equal(again.search(queries, k=3).doc_idx, res.doc_idx)


def test_reordered_index_keeps_token_vectors_with_their_documents(enc):
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(WORDS, 6)) for _ in range(48)]  # more than BP's leaf size
    corpus = list(zip([f"d{i}" for i in range(len(texts))], texts))
    queries = ["cat on mat", "muscle insulin", "river fish bank"]
    plain = build_index(corpus, enc, show_progress=False)
    bp = Retriever.build(corpus, enc, reorder="bp", show_progress=False)
    assert not np.array_equal(bp.index.doc_order, np.arange(len(texts)))
    a = plain.search_run(dict(zip("abc", queries)), k=3)
    b = bp.search_run(dict(zip("abc", queries)), k=3)
    for q in a:
        assert set(a[q]) == set(b[q]) and all(a[q][d] == pytest.approx(b[q][d], rel=1e-5) for d in a[q])


def test_a_slim_index_from_encoding_shards_is_refused_not_built_without_its_second_stage(enc, tmp_path):
    from lsr.encoding import encode_corpus, index_shards

    encode_corpus(enc, list(zip([f"d{i}" for i in range(len(DOCS))], DOCS)), tmp_path / "enc", show_progress=False)
    with pytest.raises(ValueError, match="second stage .* needs each document's token vectors"):
        index_shards(tmp_path / "enc", tmp_path / "idx")
    assert not (tmp_path / "idx").exists()


def test_the_second_stage_runs_after_another_searcher(enc, tmp_path):
    """The reranker is not tied to lsr's index: it re-scores whatever first stage served the query."""
    from index import SearchOptions

    r = build_index(list(zip([f"d{i}" for i in range(len(DOCS))], DOCS)), enc, show_progress=False)
    exact = r.search(["insulin resistance", "cat"], k=3, options=SearchOptions(engine="oracle"))
    auto = r.search(["insulin resistance", "cat"], k=3)
    np.testing.assert_array_equal(exact.doc_idx, auto.doc_idx)
