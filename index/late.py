"""Late-interaction re-scoring of candidates over per-token sparse vectors (SLIM's second stage).

``score(q, d) = sum_i max(0, max_j q_i . d_j)`` over the token vectors ``q_i`` of a query and ``d_j`` of a
document (Li et al., SIGIR 2023, "SLIM: Sparsified Late Interaction for Multi-Vector Retrieval with
Inverted Indexes"). Token vectors are rows of a CSR matrix; ``offsets[t]:offsets[t+1]`` are the rows of
text ``t``.

The kernel runs one query per thread (``prange``). For a query it links, for every vocabulary term, the
query tokens that carry it (a chain through a term-indexed head array), so a document token's sparse
vector is dotted against all query tokens in one pass over its non-zeros: the cost is the candidates'
token non-zeros times the few query tokens sharing each term, with no dense ``tokens x tokens`` matrix.

Example:
    >>> from index.late import late_interaction_scores
    >>> scores = late_interaction_scores(q_offsets, q_tokens, d_offsets, d_tokens, candidates)  # doctest: +SKIP
"""

from __future__ import annotations

import numba as nb
import numpy as np
import scipy.sparse as sp

from .inverted import numba_threads
from .sparse import as_csr


@nb.njit(parallel=True, cache=True)
def _late_interaction_kernel(q_off, q_ptr, q_idx, q_val, d_off, d_ptr, d_idx, d_val, cand, dim, out):
    nq, nc = cand.shape
    for qi in nb.prange(nq):
        t0, t1 = q_off[qi], q_off[qi + 1]
        nt = t1 - t0
        if nt == 0:
            continue
        lo, hi = q_ptr[t0], q_ptr[t1]
        head = np.full(dim, -1, np.int64)        # term -> last query posting carrying it
        nxt = np.empty(hi - lo, np.int64)        # chain to the previous posting of the same term
        owner = np.empty(hi - lo, np.int64)      # posting -> query token (0 .. nt-1)
        for tok in range(nt):
            for p in range(q_ptr[t0 + tok], q_ptr[t0 + tok + 1]):
                e = p - lo
                term = q_idx[p]
                owner[e] = tok
                nxt[e] = head[term]
                head[term] = e
        best = np.zeros(nt, np.float32)
        cur = np.zeros(nt, np.float32)
        for c in range(nc):
            d = cand[qi, c]
            if d < 0:
                continue
            best[:] = 0.0
            for row in range(d_off[d], d_off[d + 1]):
                cur[:] = 0.0
                for p in range(d_ptr[row], d_ptr[row + 1]):
                    e = head[d_idx[p]]
                    w = d_val[p]
                    while e >= 0:
                        cur[owner[e]] += q_val[lo + e] * w
                        e = nxt[e]
                for tok in range(nt):
                    if cur[tok] > best[tok]:
                        best[tok] = cur[tok]
            s = np.float32(0.0)
            for tok in range(nt):
                s += best[tok]
            out[qi, c] = s


def late_interaction_scores(q_offsets, q_tokens, d_offsets, d_tokens, candidates, *,
                            threads: int | None = None) -> np.ndarray:
    """Late-interaction scores of each query's candidate documents.

    Args:
        q_offsets: int64 ``[n_queries + 1]``: query ``i`` owns rows ``q_offsets[i]:q_offsets[i+1]`` of ``q_tokens``.
        q_tokens: CSR token vectors of the queries (``n_query_tokens x dim``).
        d_offsets: int64 ``[n_docs + 1]``, as ``q_offsets`` for the documents.
        d_tokens: CSR token vectors of the documents (may be memory-mapped; used without a copy or a
            full validation when it is already a float32 CSR matrix).
        candidates: int ``[n_queries, n_candidates]`` document indices; ``-1`` marks an empty slot.
        threads: Numba threads (default: all).

    Returns:
        float32 ``[n_queries, n_candidates]``; 0 in empty slots.

    Raises:
        ValueError: on mismatched shapes or a candidate outside the documents.
    """
    qt = as_csr(q_tokens, name="query tokens")
    dt = d_tokens
    if not (sp.issparse(dt) and dt.format == "csr" and dt.data.dtype == np.float32):
        dt = as_csr(d_tokens, name="document tokens")  # a CSR store is used as is: it is large, maybe mapped
    if dt.shape[1] != qt.shape[1]:
        raise ValueError(f"query tokens have dimension {qt.shape[1]}, document tokens {dt.shape[1]}")
    q_off = np.ascontiguousarray(q_offsets, dtype=np.int64)
    d_off = np.ascontiguousarray(d_offsets, dtype=np.int64)
    cand = np.ascontiguousarray(np.atleast_2d(candidates), dtype=np.int64)
    if q_off[-1] != qt.shape[0] or d_off[-1] != dt.shape[0]:
        raise ValueError(f"token offsets end at {q_off[-1]} / {d_off[-1]}, the token matrices have "
                         f"{qt.shape[0]} / {dt.shape[0]} rows")
    if cand.shape[0] != q_off.shape[0] - 1:
        raise ValueError(f"{cand.shape[0]} candidate rows for {q_off.shape[0] - 1} queries")
    n_docs = d_off.shape[0] - 1
    if cand.size and (cand.max() >= n_docs or cand.min() < -1):
        raise ValueError(f"candidate document indices must lie in [0, {n_docs}) (or -1 for none)")
    out = np.zeros(cand.shape, dtype=np.float32)
    with numba_threads(threads):
        _late_interaction_kernel(q_off, qt.indptr, qt.indices, qt.data, d_off, dt.indptr, dt.indices, dt.data,
                                 cand, qt.shape[1], out)
    return out
