"""The exact brute-force oracle: a scipy sparse product followed by an exact top-k.

It is slow by design and simple enough to trust: every faster engine in :mod:`index` is tested
against it. Scores are the inner product of query and document vectors, computed by scipy in
float32; a document matches a query when it shares at least one term with it.

Example:
    >>> import scipy.sparse as sp
    >>> from index import brute_force_search
    >>> docs = sp.csr_array([[1.0, 0, 2.0], [0, 3.0, 0], [1.0, 0, 2.0]])
    >>> res = brute_force_search(docs, sp.csr_array([[1.0, 0, 1.0]]), k=2)
    >>> res.doc_idx.tolist(), res.scores.tolist()     # a tie: the smaller index comes first
    ([[0, 2]], [[3.0, 3.0]])
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from .results import SearchResults, empty_results
from .sparse import as_csr

logger = logging.getLogger(__name__)


def _check_k(k, n_docs: int | None = None) -> int:
    """``k`` validated, and capped at ``n_docs`` when given: no search returns more than every document,
    so a mistyped ``k`` cannot allocate queries x k result buffers beyond the collection."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = int(k)
    if n_docs is not None and k > max(int(n_docs), 1):
        logger.info("k=%d capped at the %d documents of the collection", k, n_docs)
        k = max(int(n_docs), 1)
    return k


def topk_rows(scores: sp.csr_array, k: int, out: SearchResults, row_offset: int = 0) -> None:
    """Write the exact top-k of each row of a sparse score matrix into ``out``.

    Only stored entries with a score > 0 count as matches; ties are broken by the smaller
    column (document) index. Row ``i`` of ``scores`` goes to row ``row_offset + i`` of ``out``.
    """
    indptr, cols, vals = scores.indptr, scores.indices, scores.data
    for i in range(scores.shape[0]):
        lo, hi = indptr[i], indptr[i + 1]
        if lo == hi:
            continue
        c = cols[lo:hi]
        v = vals[lo:hi]
        keep = v > 0
        if not keep.all():
            c, v = c[keep], v[keep]
        if c.size > k:
            # threshold = the k-th largest score; keep everything at or above it, then sort
            # exactly so that ties at the threshold are resolved by document index.
            kth = np.partition(v, c.size - k)[c.size - k]
            sel = v >= kth
            c, v = c[sel], v[sel]
        order = np.lexsort((c, -v))[:k]
        n = order.size
        out.doc_idx[row_offset + i, :n] = c[order]
        out.scores[row_offset + i, :n] = v[order]


def score_topk(queries: sp.csr_array, doc_term_matrix: sp.csr_array, k: int,
               batch_size: int = 256) -> SearchResults:
    """Exact top-k of ``queries @ doc_term_matrix`` (``doc_term_matrix``: ``dim x n_docs``).

    Both arguments must already satisfy the sparse contract; queries are scored in chunks of
    ``batch_size`` rows to bound the memory of the score matrix.
    """
    n_q = queries.shape[0]
    out = empty_results(n_q, k)
    for start in range(0, n_q, batch_size):
        chunk = queries[start:start + batch_size]
        scores = sp.csr_array(chunk @ doc_term_matrix)
        topk_rows(scores, k, out, row_offset=start)
    return out


def brute_force_search(docs, queries, k: int = 10, *, batch_size: int = 256) -> SearchResults:
    """Exact top-k search by a sparse matrix product; the correctness reference.

    Args:
        docs: document vectors, ``n_docs x dim`` (any input :func:`index.sparse.as_csr` accepts).
        queries: query vectors, ``n_queries x dim``.
        k: how many documents to return per query. Fewer than ``k`` matching documents
            leaves ``-1`` / ``-inf`` in the remaining slots.
        batch_size: queries scored per sparse product (memory bound).

    Returns:
        :class:`SearchResults` with ``doc_idx`` int32 and ``scores`` float32, ``[n_queries, k]``.
    """
    d = as_csr(docs, name="documents")
    k = _check_k(k, d.shape[0])
    q = as_csr(queries, dim=d.shape[1], name="queries")
    return score_topk(q, sp.csr_array(d.T), k, batch_size=batch_size)
