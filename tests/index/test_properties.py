"""Property-based tests (Hypothesis): random sparse batches through every exact engine against the oracle."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index import InvertedIndex, brute_force_search
from index.errors import InvalidSparseError

WEIGHTS = st.one_of(st.floats(2.0 ** -20, 2.0 ** 20, width=32), st.sampled_from([1.0, 2.0, 0.5]))  # extremes and ties


@st.composite
def batches(draw, max_rows=25, dim=None):
    dim = dim or draw(st.integers(1, 24))
    n = draw(st.integers(1, max_rows))
    entries = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, dim - 1), WEIGHTS), max_size=n * 6))
    rows = np.array([e[0] for e in entries], dtype=np.int64)
    cols = np.array([e[1] for e in entries], dtype=np.int64)
    vals = np.array([e[2] for e in entries], dtype=np.float32)
    # duplicate (row, term) entries are summed by scipy, as the sparse contract says
    return sp.csr_array(sp.coo_array((vals, (rows, cols)), shape=(n, dim)))


@st.composite
def docs_and_queries(draw):
    docs = draw(batches())
    queries = draw(batches(max_rows=6, dim=docs.shape[1]))
    k = draw(st.integers(1, 40))
    block_size = draw(st.sampled_from([1, 2, 4, 64]))
    return docs, queries, k, block_size


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs_and_queries())
def test_every_exact_engine_equals_the_oracle(case):
    docs, queries, k, block_size = case
    ref = brute_force_search(docs, queries, k=k)
    assert ref.k == min(k, docs.shape[0])
    idx = InvertedIndex.build(docs, block_max=True, block_size=block_size)
    for engine in ("auto", "taat", "blockmax", "oracle"):
        res = idx.search(queries, k=k, engine=engine)
        np.testing.assert_array_equal(res.doc_idx, ref.doc_idx, err_msg=engine)
        np.testing.assert_array_equal(res.scores, ref.scores, err_msg=engine)


@settings(max_examples=30, deadline=None)
@given(docs_and_queries())
def test_saved_and_loaded_index_answers_the_same(tmp_path_factory, case):
    docs, queries, k, block_size = case
    idx = InvertedIndex.build(docs, block_max=True, block_size=block_size)
    path = idx.save(tmp_path_factory.mktemp("p") / "idx")
    loaded = InvertedIndex.load(path)
    a, b = idx.search(queries, k=k), loaded.search(queries, k=k)
    np.testing.assert_array_equal(a.doc_idx, b.doc_idx)


@given(st.floats(allow_nan=True, allow_infinity=True, width=32).filter(lambda v: v != v or v < 0 or v == np.inf))
def test_weights_that_break_the_contract_are_refused(bad):
    docs = sp.csr_array(np.array([[1.0, 0.0]], dtype=np.float32))
    with pytest.raises(InvalidSparseError):
        InvertedIndex.build(sp.csr_array((np.array([bad], np.float32), np.array([0]), np.array([0, 1])), shape=(1, 2)))
    with pytest.raises(InvalidSparseError):
        InvertedIndex.build(docs).search(
            sp.csr_array((np.array([bad], np.float32), np.array([1]), np.array([0, 1])), shape=(1, 2)), k=1)
