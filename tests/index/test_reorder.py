"""BP document reordering: a permutation that groups similar documents, and an index that stays exact."""

import numpy as np
import pytest
import scipy.sparse as sp

from index import InvertedIndex, brute_force_search
from index.errors import IndexFormatError
from index.reorder import bp_order, log_gap_cost


def planted(rng, n=1200, topics=4, per_topic=60, terms=12):
    """Documents of ``topics`` disjoint vocabularies, shuffled: BP should put each topic together."""
    topic = rng.integers(0, topics, n)
    dense = np.zeros((n, topics * per_topic), np.float32)
    for i in range(n):
        cols = rng.choice(per_topic, terms, replace=False) + per_topic * topic[i]
        dense[i, cols] = rng.random(terms).astype(np.float32) + 0.1
    return sp.csr_array(dense), topic


def test_bp_groups_planted_topics(rng):
    docs, topic = planted(rng)
    r = bp_order(docs, threads=2)
    assert np.array_equal(np.sort(r.order), np.arange(docs.shape[0]))
    changes = int((np.diff(topic[r.order]) != 0).sum())
    assert changes < 40  # shuffled input: ~900 changes
    assert r.cost_after < 0.7 * r.cost_before
    assert log_gap_cost(docs, r.order) == pytest.approx(r.cost_after)
    again = bp_order(docs, threads=1)  # segments are independent: the thread count does not matter
    assert np.array_equal(again.order, r.order)


def test_bp_small_and_degenerate_inputs():
    empty_rows = sp.csr_array((5, 7), dtype=np.float32)
    assert np.array_equal(bp_order(empty_rows).order, np.arange(5))
    one = sp.csr_array(np.ones((1, 3), np.float32))
    assert bp_order(one).order.tolist() == [0]
    same = sp.csr_array(np.ones((50, 3), np.float32))  # identical documents: any order, still a permutation
    assert np.array_equal(np.sort(bp_order(same, leaf_size=4).order), np.arange(50))
    with pytest.raises(ValueError, match="iterations"):
        bp_order(one, iterations=0)


def test_reordered_index_is_exact_and_maps_back(rng, tmp_path):
    docs, _ = planted(rng, n=600)
    queries = sp.csr_array(docs[rng.choice(600, 20, replace=False)].toarray() * rng.random((20, docs.shape[1])))
    plain = InvertedIndex.build(docs, block_size=16, block_max=True)
    bp = InvertedIndex.build(docs, block_size=16, block_max=True, reorder="bp")
    order = np.asarray(bp.doc_order)
    assert np.array_equal(np.sort(order), np.arange(600))
    assert [bp.doc_ids[i] for i in range(5)] == [str(x) for x in order[:5]]
    assert bp.manifest["reorder"]["method"] == "bp"
    assert bp.manifest["n_block_entries"] < plain.manifest["n_block_entries"]  # coherent blocks
    ref = brute_force_search(docs[order], queries, k=10)  # the oracle over the reordered rows
    for engine in ("taat", "blockmax"):
        got = bp.search(queries, k=10, engine=engine)
        np.testing.assert_array_equal(got.doc_idx, ref.doc_idx)
        np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-6)
    a = plain.search(queries, k=10).to_run([str(i) for i in range(20)], plain.doc_ids)
    b = bp.search(queries, k=10).to_run([str(i) for i in range(20)], bp.doc_ids)
    for q in a:  # by document id, the same scores as without reordering
        common = set(a[q]) & set(b[q])
        assert len(common) >= 9 and all(a[q][d] == pytest.approx(b[q][d]) for d in common)
    path = bp.save(tmp_path / "idx")
    loaded = InvertedIndex.load(path, verify=True)
    np.testing.assert_array_equal(loaded.doc_order, order)
    assert InvertedIndex.load(plain.save(tmp_path / "plain")).doc_order is None


def test_reordered_index_with_ids_and_corrupt_order(rng, tmp_path):
    docs, _ = planted(rng, n=200)
    ids = [f"doc-{i}" for i in range(200)]
    idx = InvertedIndex.build(docs, doc_ids=ids, reorder="bp")
    assert [idx.doc_ids[i] for i in range(200)] == [ids[j] for j in idx.doc_order]
    with pytest.raises(ValueError, match="reorder"):
        InvertedIndex.build(docs, reorder="random")
    path = idx.save(tmp_path / "idx")
    np.save(path / "doc_order.npy", np.zeros(200, dtype=np.int64))  # same size, not a permutation
    with pytest.raises(IndexFormatError):
        InvertedIndex.load(path, verify=True)
