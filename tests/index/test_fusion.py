"""Fusion of result lists: reciprocal rank fusion and normalized linear combination, against hand computations."""

import numpy as np
import pytest

from index import SearchResults
from index.fusion import linear_fusion, reciprocal_rank_fusion


def _res(docs, scores):
    return SearchResults(np.array(docs, dtype=np.int32), np.array(scores, dtype=np.float32))


A = _res([[3, 1, 2, -1]], [[9.0, 5.0, 1.0, -np.inf]])
B = _res([[1, 4, 3, 0]], [[0.9, 0.8, 0.3, 0.1]])


def test_rrf_sums_reciprocal_ranks():
    fused = reciprocal_rank_fusion([A, B], k=5, rank_constant=60)
    expected = {3: 1 / 61 + 1 / 63, 1: 1 / 62 + 1 / 61, 2: 1 / 63, 4: 1 / 62, 0: 1 / 64}
    order = sorted(expected, key=lambda d: (-expected[d], d))
    assert fused.doc_idx[0].tolist() == order
    np.testing.assert_allclose(fused.scores[0], [expected[d] for d in order], rtol=1e-6)


def test_linear_minmax_gives_missing_documents_the_floor():
    fused = linear_fusion([A, B], k=5, weights=[0.5, 0.5])
    a = {3: 1.0, 1: 0.5, 2: 0.0}
    b = {1: 1.0, 4: 0.875, 3: 0.25, 0: 0.0}
    expected = {d: 0.5 * a.get(d, 0.0) + 0.5 * b.get(d, 0.0) for d in {0, 1, 2, 3, 4}}
    order = sorted(expected, key=lambda d: (-expected[d], d))
    assert fused.doc_idx[0].tolist() == order
    np.testing.assert_allclose(fused.scores[0], [expected[d] for d in order], rtol=1e-6)


def test_one_list_alone_keeps_its_order_and_empty_rows_stay_empty():
    empty = _res([[-1, -1]], [[-np.inf, -np.inf]])
    assert linear_fusion([A], k=3, normalization="zscore").doc_idx[0].tolist() == [3, 1, 2]
    assert (reciprocal_rank_fusion([empty, empty], k=2).doc_idx == -1).all()


def test_bad_fusions_are_refused():
    with pytest.raises(ValueError, match="at least one"):
        reciprocal_rank_fusion([], k=3)
    with pytest.raises(ValueError, match="batch sizes"):
        linear_fusion([A, _res([[1], [2]], [[1.0], [1.0]])], k=3)
    with pytest.raises(ValueError, match="weights"):
        linear_fusion([A, B], k=3, weights=[1.0])
    with pytest.raises(ValueError, match="normalization"):
        linear_fusion([A, B], k=3, normalization="softmax")
