import numpy as np
import pytest
import scipy.sparse as sp

from index import NO_DOC, brute_force_search


def dense_topk(docs: np.ndarray, queries: np.ndarray, k: int):
    """Reference: dense scores, order by (-score, doc index), only score > 0 counts."""
    scores = queries @ docs.T
    idx = np.full((len(queries), k), NO_DOC)
    val = np.full((len(queries), k), -np.inf, dtype=np.float32)
    for i, row in enumerate(scores):
        order = sorted((j for j in range(len(row)) if row[j] > 0), key=lambda j: (-row[j], j))[:k]
        idx[i, :len(order)] = order
        val[i, :len(order)] = row[order]
    return idx, val


@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("k", [1, 3, 10, 200])
def test_matches_dense_reference(make_csr, rng, integer, k):
    docs = make_csr(rng, 60, 25, 0.15, integer=integer)
    queries = make_csr(rng, 12, 25, 0.2, integer=integer)
    queries = sp.csr_array(np.vstack([queries.toarray(), np.zeros((1, 25), np.float32)]))  # an empty query
    res = brute_force_search(docs, queries, k=k)
    k = min(k, 60)  # k is capped at the number of documents
    ref_idx, ref_val = dense_topk(docs.toarray().astype(np.float64), queries.toarray().astype(np.float64), k)
    assert res.doc_idx.dtype == np.int32 and res.scores.dtype == np.float32
    assert res.doc_idx.shape == (13, k)
    np.testing.assert_array_equal(res.doc_idx, ref_idx)
    np.testing.assert_allclose(res.scores, ref_val, rtol=1e-5)
    assert (res.doc_idx[-1] == NO_DOC).all()  # the empty query matches nothing


def test_ties_broken_by_doc_index():
    docs = sp.csr_array(np.ones((7, 3), np.float32))
    res = brute_force_search(docs, sp.csr_array(np.array([[1.0, 0, 0]])), k=4)
    assert res.doc_idx.tolist() == [[0, 1, 2, 3]]
    assert res.scores.tolist() == [[1.0] * 4]


def test_k_larger_than_corpus_is_capped_and_single_document():
    docs = sp.csr_array(np.array([[0.0, 2.0], [0.0, 0.0], [3.0, 0.0]]))
    res = brute_force_search(docs, sp.csr_array(np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])), k=5_000_000)
    assert res.k == 3  # not 5,000,000 columns: a mistyped k cannot exhaust memory
    assert res.doc_idx.tolist() == [[0, -1, -1], [2, -1, -1], [-1, -1, -1]]
    assert res.n_found().tolist() == [1, 1, 0]
    assert np.isinf(res.scores[2]).all()


def test_batching_does_not_change_results(make_csr, rng):
    docs = make_csr(rng, 40, 20, 0.2, integer=True)
    queries = make_csr(rng, 30, 20, 0.3, integer=True)
    a = brute_force_search(docs, queries, k=7)
    b = brute_force_search(docs, queries, k=7, batch_size=4)
    np.testing.assert_array_equal(a.doc_idx, b.doc_idx)


def test_bad_k_and_dimension_mismatch(make_csr, rng):
    docs = make_csr(rng, 5, 10, 0.5)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        brute_force_search(docs, docs, k=0)
    with pytest.raises(ValueError, match="dimension 11 does not match"):
        brute_force_search(docs, sp.csr_array((1, 11), dtype=np.float32), k=1)


def test_to_run():
    docs = sp.csr_array(np.array([[1.0, 0], [0, 1.0], [2.0, 0]]))
    res = brute_force_search(docs, sp.csr_array(np.array([[1.0, 0]])), k=3)
    assert res.to_run(["q"], ["a", "b", "c"]) == {"q": {"c": 2.0, "a": 1.0}}
    with pytest.raises(ValueError):
        res.to_run(["q", "r"], ["a", "b", "c"])
