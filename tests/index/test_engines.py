"""Every Numba engine against the scipy oracle on small random and adversarial inputs."""

import numpy as np
import pytest
import scipy.sparse as sp

from index import Approx, InvertedIndex, SparseBatch, brute_force_search
from index.quantize import dequantize, quantize

ENGINES = ["taat", "blockmax", "auto"]


def assert_same(res, ref):
    np.testing.assert_array_equal(res.doc_idx, ref.doc_idx)
    np.testing.assert_array_equal(res.scores, ref.scores)


def zipf_csr(rng, n, dim, nnz_lo, nnz_hi, integer=False, a=1.1):
    """Rows with Zipf-like term choice; integer weights make many ties."""
    rows, cols, vals = [], [], []
    p = 1.0 / np.arange(1, dim + 1) ** a
    p /= p.sum()
    for i in range(n):
        m = int(rng.integers(nnz_lo, nnz_hi + 1))
        terms = np.unique(rng.choice(dim, size=min(m, dim), p=p))
        w = rng.integers(1, 4, size=terms.size) if integer else rng.random(terms.size) * 3 + 0.01
        rows += [i] * terms.size
        cols += terms.tolist()
        vals += w.tolist()
    return sp.csr_array((np.array(vals, np.float32), (rows, cols)), shape=(n, dim))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("block_size", [1, 3, 16, 64])
@pytest.mark.parametrize("integer", [False, True])
def test_exact_engines_equal_oracle(engine, block_size, integer):
    rng = np.random.default_rng(block_size * 7 + integer)
    docs = zipf_csr(rng, 300, 80, 5, 30, integer=integer)
    queries = zipf_csr(rng, 40, 80, 1, 25, integer=integer)
    idx = InvertedIndex.build(docs, block_max=True, block_size=block_size)
    for k in (1, 10, 500):
        assert_same(idx.search(queries, k=k, engine=engine), brute_force_search(docs, queries, k=k))


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_do_not_change_results(threads):
    rng = np.random.default_rng(3)
    docs = zipf_csr(rng, 500, 60, 5, 20, integer=True)
    queries = zipf_csr(rng, 33, 60, 1, 15, integer=True)
    idx = InvertedIndex.build(docs, block_max=True, block_size=8)
    ref = brute_force_search(docs, queries, k=7)
    for engine in ENGINES:
        assert_same(idx.search(queries, k=7, engine=engine, threads=threads), ref)


def test_empty_queries_empty_postings_single_document():
    docs = sp.csr_array(np.array([[0, 2.0, 0, 0, 1.0]], np.float32))  # terms 0, 2, 3 have no postings
    idx = InvertedIndex.build(docs, block_max=True, block_size=4)
    queries = np.array([[0, 0, 0, 0, 0], [1.0, 0, 1.0, 0, 0], [0, 1.0, 0, 0, 0], [0, 1.0, 0, 0, 3.0]], np.float32)
    for engine in ENGINES:
        res = idx.search(queries, k=3, engine=engine)  # k capped at the one document
        assert res.doc_idx.tolist() == [[-1], [-1], [0], [0]]
        assert res.scores[3, 0] == 5.0 and np.isinf(res.scores[0]).all()


def test_duplicate_query_terms_are_summed():
    rng = np.random.default_rng(5)
    docs = zipf_csr(rng, 100, 30, 3, 10)
    idx = InvertedIndex.build(docs, block_max=True, block_size=8)
    dup = SparseBatch(np.array([0, 3]), np.array([2, 2, 5]), np.array([1.0, 0.5, 2.0]), dim=30)
    merged = sp.csr_array(np.eye(30, dtype=np.float32)[[2]] * 1.5 + np.eye(30, dtype=np.float32)[[5]] * 2.0)
    for engine in ENGINES:
        assert_same(idx.search(dup, k=5, engine=engine), brute_force_search(docs, merged, k=5))


def test_bad_query_input_is_refused():
    idx = InvertedIndex.build(sp.csr_array(np.ones((3, 4), np.float32)))
    with pytest.raises(ValueError, match="term id 9 is outside the dimension"):
        idx.search(SparseBatch(np.array([0, 1]), np.array([9]), np.array([1.0]), dim=4), k=2)
    for bad in (np.nan, -1.0):
        with pytest.raises(ValueError, match="weight"):
            idx.search(np.array([[bad, 0, 0, 0]]), k=2)


@pytest.mark.parametrize("engine", ENGINES)
def test_adversarial_all_equal_weights(engine):
    docs = sp.csr_array((np.random.default_rng(0).random((200, 12)) < 0.4).astype(np.float32))
    idx = InvertedIndex.build(docs, block_max=True, block_size=8)
    queries = sp.csr_array(np.ones((3, 12), np.float32))
    assert_same(idx.search(queries, k=25, engine=engine), brute_force_search(docs, queries, k=25))


@pytest.mark.parametrize("engine", ENGINES)
def test_adversarial_one_huge_weight(engine):
    rng = np.random.default_rng(1)
    dense = (rng.random((256, 20)) < 0.3) * rng.random((256, 20)).astype(np.float32)
    dense[250, 7] = 1e6  # one document dominates one term, in the last block
    docs = sp.csr_array(dense.astype(np.float32))
    idx = InvertedIndex.build(docs, block_max=True, block_size=16)
    queries = sp.csr_array(np.vstack([np.eye(20, dtype=np.float32)[7] * 1e-3 + 0.5, rng.random(20) + 0.1]).astype(np.float32))
    assert_same(idx.search(queries, k=10, engine=engine), brute_force_search(docs, queries, k=10))


@pytest.mark.parametrize("quantization", ["uint8", "uint16"])
def test_quantized_search_is_exact_for_dequantized_impacts(quantization):
    rng = np.random.default_rng(11)
    docs = zipf_csr(rng, 400, 50, 5, 25)
    queries = zipf_csr(rng, 30, 50, 2, 20)
    idx = InvertedIndex.build(docs, quantization=quantization, block_size=16, block_max=True)
    assert idx.arrays["posting_impacts"].dtype == np.dtype(quantization)
    codes, scale = quantize(docs.data, quantization)
    deq = sp.csr_array((dequantize(codes, scale), docs.indices, docs.indptr), shape=docs.shape)
    ref = brute_force_search(deq, queries, k=10)
    for engine in ENGINES + ["oracle"]:
        assert_same(idx.search(queries, k=10, engine=engine), ref)


@pytest.mark.parametrize("quantization,bits", [("uint8", 8), ("uint16", 16)])
def test_quantization_error_bound(quantization, bits):
    x = np.random.default_rng(2).random(10_000).astype(np.float32) * 7 + 1e-6
    codes, scale = quantize(x, quantization)
    assert np.isclose(scale, x.max() / (2**bits - 1), rtol=1e-6)
    err = np.abs(dequantize(codes, scale) - x)
    big = x >= scale / 2
    assert (err[big] <= scale / 2 * (1 + 1e-5)).all()
    assert (err <= scale).all() and (codes >= 1).all()


def test_approximate_knobs():
    rng = np.random.default_rng(4)
    docs = zipf_csr(rng, 2000, 200, 20, 60)
    queries = zipf_csr(rng, 50, 200, 10, 40)
    idx = InvertedIndex.build(docs, block_max=True, block_size=32)
    exact = brute_force_search(docs, queries, k=10)
    # neutral knobs are exact
    assert_same(idx.search(queries, k=10, approx=Approx()), exact)
    # a budget covering every block is exact
    assert_same(idx.search(queries, k=10, approx=Approx(max_blocks=10_000)), exact)
    # tighter settings trade recall for work
    full = idx.search_detailed(queries, k=10, engine="blockmax")
    cheap = idx.search_detailed(queries, k=10, approx=Approx(max_blocks=4, query_terms=5, alpha=0.8))
    assert cheap.stats.postings.sum() < full.stats.postings.sum()
    assert (cheap.stats.blocks <= 4).all()
    hits = sum(len(set(a) & set(b)) for a, b in zip(cheap.results.doc_idx, exact.doc_idx))
    assert 0 < hits < exact.doc_idx.size
    with pytest.raises(ValueError, match="alpha"):
        idx.search(queries, k=10, approx=Approx(alpha=0))
    with pytest.raises(ValueError, match="block-max engine"):
        idx.search(queries, k=10, engine="taat", approx=Approx(max_blocks=3))


@pytest.mark.parametrize("quantization", [None, "uint8"])
def test_query_term_pruning_with_rescoring(quantization):
    rng = np.random.default_rng(14)
    docs = zipf_csr(rng, 2000, 200, 20, 60)
    queries = zipf_csr(rng, 50, 200, 10, 40)
    idx = InvertedIndex.build(docs, quantization=quantization)  # needs no block-max metadata
    exact = idx.search(queries, k=10, engine="oracle")
    # all terms kept and enough candidates: exact, scores included
    assert_same(idx.search(queries, k=10, approx=Approx(query_terms=1000, candidates=10)), exact)
    cheap = idx.search_detailed(queries, k=10, approx=Approx(query_terms=4, candidates=50))
    assert (cheap.stats.engine == 3).all()
    assert cheap.stats.postings.sum() < idx.search_detailed(queries, k=10).stats.postings.sum()
    found = cheap.results
    # every returned score is the exact score of that document
    dense = (queries @ idx._posting_matrix()).toarray()
    for i in range(queries.shape[0]):
        hit = found.doc_idx[i] >= 0
        np.testing.assert_allclose(found.scores[i][hit], dense[i, found.doc_idx[i][hit]], rtol=1e-6)
    hits = sum(len(set(a) & set(b)) for a, b in zip(found.doc_idx, exact.doc_idx))
    assert 0.5 * exact.doc_idx.size < hits < exact.doc_idx.size


@pytest.mark.parametrize("quantization", [None, "uint8"])
def test_static_pruning_keeps_each_terms_highest_impacts(quantization):
    rng = np.random.default_rng(15)
    docs = zipf_csr(rng, 1500, 120, 10, 50, integer=quantization is None)  # integer weights: ties at the cut
    idx = InvertedIndex.build(docs, quantization=quantization)
    off, pdocs, pimp = idx.static_pruned(40)
    full_off = idx.arrays["term_offsets"]
    for t in range(idx.dim):
        d_full = np.asarray(idx.arrays["posting_docs"][full_off[t]:full_off[t + 1]])
        i_full = np.asarray(idx.arrays["posting_impacts"][full_off[t]:full_off[t + 1]])
        d, i = pdocs[off[t]:off[t + 1]], pimp[off[t]:off[t + 1]]
        assert d.size == min(40, d_full.size)
        assert (np.diff(d) > 0).all()  # still in document order
        # the kept impacts are the highest ones; ties at the cut go to the smaller document index
        order = np.lexsort((d_full, -i_full.astype(np.float64)))[:40]
        np.testing.assert_array_equal(d, np.sort(d_full[order]))
        np.testing.assert_array_equal(i, i_full[np.searchsorted(d_full, d)])
    assert idx.static_pruned(0)[1] is idx._k["posting_docs"]  # no pruning: the index's own arrays
    with pytest.raises(ValueError, match="max_postings"):
        idx.static_pruned(-1)


def test_static_pruning_search():
    rng = np.random.default_rng(16)
    docs = zipf_csr(rng, 3000, 150, 20, 60)
    queries = zipf_csr(rng, 40, 150, 10, 30)
    idx = InvertedIndex.build(docs, quantization="uint8")
    exact = idx.search(queries, k=10, engine="oracle")
    longest = int(np.diff(idx.arrays["term_offsets"]).max())
    # lists no shorter than the longest one: the candidate lists are the full lists
    assert_same(idx.search(queries, k=10, approx=Approx(max_postings=longest, candidates=3000)), exact)
    cheap = idx.search_detailed(queries, k=10, approx=Approx(max_postings=100, candidates=100))
    full = idx.search_detailed(queries, k=10, approx=Approx(query_terms=1000, candidates=100))
    assert cheap.stats.postings.sum() < full.stats.postings.sum()
    dense = (queries @ idx._posting_matrix()).toarray()
    for i in range(queries.shape[0]):  # re-scored against the full lists: exact scores
        hit = cheap.results.doc_idx[i] >= 0
        np.testing.assert_allclose(cheap.results.scores[i][hit], dense[i, cheap.results.doc_idx[i][hit]],
                                   rtol=1e-6)
        # bit for bit the exact engines' score where both return a document
        ref = dict(zip(exact.doc_idx[i].tolist(), exact.scores[i].tolist()))
        for d, sc in zip(cheap.results.doc_idx[i].tolist(), cheap.results.scores[i].tolist()):
            if d in ref:
                assert sc == ref[d]
    hits = sum(len(set(a) & set(b)) for a, b in zip(cheap.results.doc_idx, exact.doc_idx))
    assert 0.5 * exact.doc_idx.size < hits < exact.doc_idx.size
    with pytest.raises(ValueError, match="does not combine"):
        idx.search(queries, k=10, approx=Approx(max_postings=10, max_blocks=4))


def test_auto_routes_by_cost(monkeypatch):
    import index.inverted as inv

    rng = np.random.default_rng(9)
    docs = zipf_csr(rng, 3000, 100, 10, 40)
    queries = zipf_csr(rng, 20, 100, 1, 30)
    idx = InvertedIndex.build(docs, block_max=True, block_size=64)
    monkeypatch.setattr(inv, "AUTO_MIN_POSTINGS", 0)
    monkeypatch.setattr(inv, "AUTO_MAX_TERMS", 1000)
    det = idx.search_detailed(queries, k=10)
    assert det.stats.engine.all()  # every query to block-max under these settings
    assert_same(det.results, brute_force_search(docs, queries, k=10))
    monkeypatch.setattr(inv, "AUTO_MIN_POSTINGS", 10**12)  # no query long enough
    assert not idx.search_detailed(queries, k=10).stats.engine.any()
    monkeypatch.setattr(inv, "AUTO_MIN_POSTINGS", 0)
    monkeypatch.setattr(inv, "AUTO_MAX_TERMS", 8)  # only short queries to block-max
    det = idx.search_detailed(queries, k=10)
    n_terms = np.diff(idx.check_queries(queries).indptr)
    np.testing.assert_array_equal(det.stats.engine.astype(bool), n_terms <= 8)
    assert 0 < det.stats.engine.sum() < len(n_terms)
    assert_same(det.results, brute_force_search(docs, queries, k=10))
    no_blocks = InvertedIndex.build(docs, block_max=False)  # nothing to prune with: TAAT
    assert not no_blocks.search_detailed(queries, k=10).stats.engine.any()


def test_memory_mapped_index_searches(tmp_path):
    rng = np.random.default_rng(8)
    docs = zipf_csr(rng, 500, 70, 5, 20)
    queries = zipf_csr(rng, 10, 70, 2, 10)
    path = InvertedIndex.build(docs, quantization="uint8", block_size=16, block_max=True).save(tmp_path / "i")
    idx = InvertedIndex.load(path, verify=True)
    ref = InvertedIndex.build(docs, quantization="uint8", block_size=16, block_max=True)
    for engine in ENGINES:
        assert_same(idx.search(queries, k=10, engine=engine), ref.search(queries, k=10, engine="oracle"))


# ------------------------------------------------------------------ streamed build
@pytest.mark.parametrize("quantization", [None, "uint8"])
def test_builder_from_shards_equals_in_memory_build(tmp_path, quantization):
    from index import IndexBuilder

    rng = np.random.default_rng(21)
    docs = zipf_csr(rng, 700, 90, 5, 25)
    ids = [f"d{i}" for i in range(700)]
    with IndexBuilder(tmp_path / "idx", dim=90, quantization=quantization, block_size=16, block_max=True) as b:
        for lo in range(0, 700, 150):
            b.add(docs[lo:lo + 150], doc_ids=ids[lo:lo + 150])
    built = b.index
    ref = InvertedIndex.build(docs, doc_ids=ids, quantization=quantization, block_size=16, block_max=True)
    for name in ("term_offsets", "posting_docs", "posting_impacts", "bm_offsets", "bm_blocks", "bm_max",
                 "bm_start", "term_max", "doc_nnz", "docid_offsets"):
        np.testing.assert_array_equal(np.asarray(built.arrays[name]), ref.arrays[name], err_msg=name)
    assert built.doc_ids[699] == "d699" and built.manifest["shards"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]  # spill files gone
    InvertedIndex.load(tmp_path / "idx", verify=True)
    queries = zipf_csr(rng, 10, 90, 3, 12)
    assert_same(built.search(queries, k=10), ref.search(queries, k=10))


def test_builder_errors_leave_nothing(tmp_path):
    from index import IndexBuilder

    with pytest.raises(ValueError, match="dimension 5 does not match the expected 6"):
        with IndexBuilder(tmp_path / "idx", dim=6) as b:
            b.add(np.ones((2, 6)))
            b.add(np.ones((2, 5)))
    assert list(tmp_path.iterdir()) == []
    b = IndexBuilder(tmp_path / "idx", dim=6)
    b.add(np.ones((2, 6)), doc_ids=["a", "b"])
    with pytest.raises(ValueError, match="every shard or for none"):
        b.add(np.ones((2, 6)))
    b.abort()
    with pytest.raises(ValueError, match="no documents"):
        IndexBuilder(tmp_path / "idx", dim=6).finish()
    assert list(tmp_path.iterdir()) == []


def test_tune_approximate_reaches_target_or_returns_exact():
    from index import recall_at_k, tune_approximate

    rng = np.random.default_rng(12)
    docs = zipf_csr(rng, 3000, 150, 20, 50)
    queries = zipf_csr(rng, 60, 150, 10, 30)
    idx = InvertedIndex.build(docs, block_max=True, block_size=32)
    tuned = tune_approximate(idx, queries[:30], target_recall=0.9, k=10, repeats=1)
    assert tuned.recall >= 0.9 and tuned.trials
    exact = idx.search(queries, k=10)
    assert recall_at_k(idx.search(queries, k=10, approx=tuned.approx), exact) > 0.7
    if tuned.approx == Approx():
        assert tuned.ms_per_query == tuned.exact_ms_per_query
    else:  # the winner was re-timed against exact search in turns, and won
        confirmed = [t for t in tuned.trials if "confirmed_ms_per_query" in t]
        assert 1 <= len(confirmed) <= 3 and tuned.ms_per_query < tuned.exact_ms_per_query
        assert tuned.ms_per_query == min(t["confirmed_ms_per_query"] for t in confirmed)
    with pytest.raises(ValueError, match="target_recall"):
        tune_approximate(idx, queries, target_recall=1.5)
    with pytest.raises(ValueError, match="finalists_kept"):
        tune_approximate(idx, queries, finalists_kept=0)
    with pytest.raises(ValueError, match="confidence"):
        tune_approximate(idx, queries, confidence=-1)


def test_tuner_qualifies_settings_on_a_confidence_bound():
    from index import tune_approximate
    from index.tuning import _Trials

    rng = np.random.default_rng(23)
    docs = zipf_csr(rng, 4000, 200, 20, 50)
    queries = zipf_csr(rng, 80, 200, 8, 30)
    idx = InvertedIndex.build(docs, block_max=True, block_size=32)
    q = idx.check_queries(queries)
    exact = idx.search(q, k=10)
    settings = [Approx(query_terms=t, candidates=c) for t in (2, 4, 8) for c in (10, 50, 200)]
    outcomes = {}
    for z in (0.0, 1.64):
        tr = _Trials(idx, q, exact, 10, 0.9, z, first=20)
        outcomes[z] = []
        for ap in settings:
            tr.best_ms = float("inf")  # no trial stops on time here: recall alone decides
            outcomes[z].append(tr.run(ap))
        for t, out in zip(tr.log, outcomes[z]):
            if out == "ok":  # the bound (the mean less z standard errors) reached the target, on every query
                assert 0.9 <= t["recall_bound"] <= t["recall"] and t["queries"] == 80
                assert t["recall_bound"] == pytest.approx(t["recall"]) if z == 0 else True
            elif "stopped" in t:  # a first slice clearly below the target ends the trial there
                assert t["stopped"] == "recall" and t["queries"] == 20 and t["recall"] < 0.9
            else:
                assert t["recall_bound"] < 0.9
    assert "ok" in outcomes[0.0] and "low" in outcomes[0.0]
    # the bound is stricter than the mean: whatever it lets through, the mean lets through
    assert all(a == "ok" for a, b in zip(outcomes[0.0], outcomes[1.64]) if b == "ok")
    tuned = tune_approximate(idx, queries, target_recall=0.9, k=10, repeats=1, confirm_turns=1)
    assert tuned.seconds > 0 and tuned.trials


def test_per_query_recall():
    from index import SearchResults
    from index.tuning import per_query_recall, recall_at_k

    exact = SearchResults(np.array([[1, 2, 3], [4, -1, -1], [-1, -1, -1]], np.int32), np.zeros((3, 3), np.float32))
    found = SearchResults(np.array([[3, 9, 1], [-1, -1, -1], [5, 6, 7]], np.int32), np.zeros((3, 3), np.float32))
    np.testing.assert_allclose(per_query_recall(found, exact), [2 / 3, 0.0])  # no exact hit: left out
    assert recall_at_k(found, exact) == pytest.approx(1 / 3)
    wide = np.arange(200, dtype=np.int32)[None, :]  # k above 64 takes the other path
    shifted = SearchResults(wide + 50, np.zeros((1, 200), np.float32))
    np.testing.assert_allclose(per_query_recall(shifted, SearchResults(wide, np.zeros((1, 200), np.float32))),
                               [150 / 200])


def test_block_max_auto_drops_incoherent_metadata(tmp_path):
    rng = np.random.default_rng(13)
    docs = zipf_csr(rng, 2000, 20000, 20, 40, a=0.5)  # rare terms, random order: a block entry per posting
    auto = InvertedIndex.build(docs, block_size=64)
    full = InvertedIndex.build(docs, block_size=64, block_max=True)
    assert not auto.has_block_max and full.has_block_max
    assert auto.manifest["block_entry_ratio"] == full.manifest["block_entry_ratio"] > 0.25
    assert auto.size_bytes() < full.size_bytes()
    q = zipf_csr(rng, 5, 20000, 5, 10, a=0.5)
    assert_same(auto.search(q, k=10), full.search(q, k=10))
    with pytest.raises(ValueError, match="without block-max metadata"):
        auto.search(q, k=10, engine="blockmax")
    with pytest.raises(ValueError, match="without block-max metadata"):
        InvertedIndex.load(auto.save(tmp_path / "a")).search(q, k=10, approx=Approx(max_blocks=3))
    # documents sorted so that blocks hold similar documents: the metadata is kept
    ordered = sp.csr_array(np.repeat(np.eye(8, 20000, dtype=np.float32), 64, axis=0))
    assert InvertedIndex.build(ordered, block_size=64).has_block_max


@pytest.mark.parametrize("slice_docs", [None, 100, 4096])
def test_sparse_and_dense_queries_reuse_scratch_and_equal_oracle(monkeypatch, slice_docs):
    """Queries with few postings (the drain visits only the chunks they mark), some (only the documents they
    list) and many (every chunk), in one batch and call after call on one index (its scratch accumulators are
    reused), with and without a document mask, whole or a slice of documents at a time (100 rounds up to 128:
    slices end inside the postings of most terms): always the oracle's top-k."""
    import index.inverted as inv

    if slice_docs is not None:
        monkeypatch.setattr(inv, "TAAT_SLICE_DOCS", slice_docs)
    rng = np.random.default_rng(21)
    n, dim = 9000, 400
    docs = zipf_csr(rng, n, dim, 3, 12, integer=True, a=0.8)
    common = zipf_csr(rng, 12, dim, 5, 40, a=0.8)          # thousands of postings: dense
    df = np.bincount(docs.indices, minlength=dim)
    rare_terms = np.flatnonzero((df > 0) & (df < 40))
    rows = [rng.choice(rare_terms, size=3, replace=False) for _ in range(12)]
    rare = sp.csr_array((np.ones(36, np.float32), np.concatenate(rows), np.arange(0, 37, 3)), shape=(12, dim))
    rare.sort_indices()
    # a few hundred to ~1,800 postings (n / 32 <= postings < n / 5): scored documents are listed as they are
    # added and only those drained (LIST_POSTINGS), unless the documents go a slice at a time
    mid_terms = np.flatnonzero((df >= 60) & (df < 200))
    rows = []
    while len(rows) < 12:
        row = np.sort(rng.choice(mid_terms, size=int(rng.integers(3, 9)), replace=False))
        if n // 32 <= df[row].sum() < n // 5:
            rows.append(row)
    mid = sp.csr_array((rng.uniform(0.1, 2.0, sum(map(len, rows))).astype(np.float32), np.concatenate(rows),
                        np.concatenate([[0], np.cumsum([len(r) for r in rows])])), shape=(12, dim))
    mixed = sp.csr_array(sp.vstack([rare, common, mid, rare]))
    mask = rng.random(n) < 0.7
    idx = InvertedIndex.build(docs, block_max=True, block_size=32)
    masked_docs = sp.csr_array(docs.multiply(mask[:, None]).tocsr())
    for threads in (1, 2):
        for k in (1, 10, 64, 200):
            for q in (rare, common, mid, mixed):
                assert_same(idx.search(q, k=k, engine="taat", threads=threads), brute_force_search(docs, q, k=k))
                assert_same(idx.search(q, k=k, engine="blockmax", threads=threads),
                            brute_force_search(docs, q, k=k))
                got = idx.search(q, k=k, engine="taat", allow=mask, threads=threads)
                want = brute_force_search(masked_docs, q, k=k)
                np.testing.assert_array_equal(got.doc_idx, want.doc_idx)
    assert idx._scratch.size_bytes() > 0  # the accumulators were kept for the next call


def test_scratch_pool_lends_zeroed_arrays_and_drops_them_after_an_error():
    from index.scratch import ScratchPool

    pool = ScratchPool()
    with pool.zeros((3, 5), np.float32) as a:
        assert a.shape == (3, 5) and not a.any()
    with pool.zeros((3, 5), np.float32) as b:
        assert b is a  # returned, then lent again
        with pool.zeros((3, 5), np.float32) as c:
            assert c is not b  # concurrent borrowers get their own
    with pytest.raises(RuntimeError):
        with pool.zeros((3, 5), np.float32) as d:
            d[0, 0] = 1.0
            raise RuntimeError("a kernel failed half-way")
    with pool.zeros((3, 5), np.float32) as e:
        assert not e.any() and e is not d
    assert pool.size_bytes() == 60  # of the two arrays made, the one that saw the error is gone
    with pool.empty((3, 5), np.float32) as f:  # any content allowed: never lent as a zeroed array
        f[:] = 7.0
    with pool.zeros((3, 5), np.float32) as g, pool.empty((3, 5), np.float32) as h:
        assert not g.any() and g is not f and h is f
    assert pool.size_bytes() == 120
    pool.clear()
    assert pool.size_bytes() == 0


def test_forward_index_refuses_lengths_that_do_not_fit_the_postings():
    from index.errors import IndexFormatError

    rng = np.random.default_rng(22)
    docs = zipf_csr(rng, 200, 50, 3, 10)
    idx = InvertedIndex.build(docs)
    fptr, fterms, fimp = idx.forward_index()
    np.testing.assert_array_equal(fptr, docs.indptr)
    np.testing.assert_array_equal(fterms, docs.indices)
    arrays = dict(idx.arrays)
    nnz = np.array(arrays["doc_nnz"]).copy()
    i, j = np.flatnonzero(nnz != nnz[0])[0], 0
    nnz[i], nnz[j] = nnz[j], nnz[i]  # same total, wrong rows
    arrays["doc_nnz"] = nnz
    bad = InvertedIndex(arrays, idx.manifest)
    with pytest.raises(IndexFormatError, match="posting counts"):
        bad.forward_index()
