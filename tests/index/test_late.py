"""The late-interaction kernel against a dense brute force, with empty texts, empty slots and bad input."""

import numpy as np
import pytest
import scipy.sparse as sp

from index.late import late_interaction_scores


def _store(rng, lengths, dim, density=0.2):
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n = int(offsets[-1])
    dense = np.where(rng.random((n, dim)) < density, rng.random((n, dim)).astype(np.float32) + 0.01, 0)
    return offsets, sp.csr_array(dense.astype(np.float32))


def _brute(q_off, q, d_off, d, cand):
    qd, dd = q.toarray(), d.toarray()
    out = np.zeros(cand.shape, np.float32)
    for i in range(cand.shape[0]):
        qi = qd[q_off[i]:q_off[i + 1]]
        for c, doc in enumerate(cand[i]):
            if doc < 0 or qi.shape[0] == 0 or d_off[doc + 1] == d_off[doc]:
                continue
            sims = qi @ dd[d_off[doc]:d_off[doc + 1]].T
            out[i, c] = np.maximum(sims.max(axis=1), 0).sum()
    return out


def test_matches_brute_force_with_edge_cases():
    rng = np.random.default_rng(3)
    dim = 40
    q_off, q = _store(rng, [3, 0, 5, 1], dim)          # query 1 has no tokens
    d_off, d = _store(rng, [4, 0, 2, 7, 1, 3], dim)     # document 1 has no tokens
    cand = np.array([[0, 1, 2, 3, 4, 5], [5, 4, -1, -1, -1, -1], [3, 3, 0, -1, 2, 1], [5, 4, 3, 2, 1, 0]])
    got = late_interaction_scores(q_off, q, d_off, d, cand, threads=2)
    np.testing.assert_allclose(got, _brute(q_off, q, d_off, d, cand), rtol=1e-5, atol=1e-6)
    assert (got[1] == 0).all() and got[2, 0] == got[2, 1]


def test_shared_terms_across_query_tokens():
    # every query token carries the same terms: the per-term chain must visit all of them
    q = sp.csr_array(np.array([[1, 2, 0], [3, 0, 1], [1, 1, 1]], dtype=np.float32))
    d = sp.csr_array(np.array([[1, 1, 1], [0, 5, 0]], dtype=np.float32))
    got = late_interaction_scores([0, 3], q, [0, 2], d, [[0]])
    expected = max(3, 10) + max(4, 0) + max(3, 5)
    assert got[0, 0] == pytest.approx(expected)


def test_bad_input_is_refused():
    q = sp.csr_array(np.eye(2, dtype=np.float32))
    with pytest.raises(ValueError, match="candidate document indices"):
        late_interaction_scores([0, 2], q, [0, 1, 2], q, [[2]])
    with pytest.raises(ValueError, match="candidate rows"):
        late_interaction_scores([0, 2], q, [0, 1, 2], q, [[0], [1]])
    with pytest.raises(ValueError, match="offsets"):
        late_interaction_scores([0, 3], q, [0, 1, 2], q, [[0]])
    with pytest.raises(ValueError, match="dimension"):
        late_interaction_scores([0, 2], q, [0, 1], sp.csr_array(np.ones((1, 3), np.float32)), [[0]])
