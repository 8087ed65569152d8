"""Fusion of several searchers' result lists over one collection (same document indices).

* **Reciprocal rank fusion** (Cormack, Clarke and Büttcher, SIGIR 2009): a document's score is
  ``sum_i w_i / (rank_constant + rank_i)`` over the lists it appears in (ranks from 1; 60 is the paper's
  constant). Scores of different scales need no calibration.
* **Normalized linear combination**: each list's scores are normalized per query (``"minmax"`` to [0, 1], or
  ``"zscore"``), then summed with weights; a document missing from a list gets that list's minimum
  (0 after min-max; the lowest z-score). The weight of a sparse and a dense list is usually chosen on a dev
  split.

Both return :class:`~index.SearchResults`, ties broken by the smaller document index, and refuse lists of
different lengths of batch.

Example:
    >>> fused = reciprocal_rank_fusion([sparse_results, dense_results], k=10)          # doctest: +SKIP
    >>> fused = linear_fusion([sparse_results, dense_results], k=10, weights=[0.7, 0.3])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .results import NO_DOC, SearchResults, empty_results, write_ranked


def _check(results: Sequence[SearchResults], weights, k: int) -> np.ndarray:
    if not results:
        raise ValueError("nothing to fuse: give at least one result list")
    n = results[0].doc_idx.shape[0]
    if any(r.doc_idx.shape[0] != n for r in results):
        raise ValueError(f"result lists of different batch sizes: {[r.doc_idx.shape[0] for r in results]}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    w = np.ones(len(results)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(results),) or not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"weights must be {len(results)} finite non-negative numbers, got {weights!r}")
    return w


def _top(row_docs: list[np.ndarray], row_scores: list[np.ndarray], k: int, out: SearchResults, i: int) -> None:
    docs = np.concatenate(row_docs)
    scores = np.concatenate(row_scores)
    if docs.size == 0:
        return
    uniq, inv = np.unique(docs, return_inverse=True)
    total = np.zeros(uniq.size)
    np.add.at(total, inv, scores)
    write_ranked(out, i, uniq, total)


def reciprocal_rank_fusion(results: Sequence[SearchResults], k: int = 10, *, weights: Sequence[float] | None = None,
                           rank_constant: float = 60.0) -> SearchResults:
    """Reciprocal rank fusion of result lists (see the module docstring)."""
    w = _check(results, weights, k)
    if rank_constant < 0:
        raise ValueError(f"rank_constant must be >= 0, got {rank_constant}")
    n = results[0].doc_idx.shape[0]
    out = empty_results(n, k)
    for i in range(n):
        docs, scores = [], []
        for r, wi in zip(results, w):
            found = r.doc_idx[i] != NO_DOC
            d = r.doc_idx[i][found]
            docs.append(d)
            scores.append(wi / (rank_constant + np.arange(1, d.size + 1)))
        _top(docs, scores, k, out, i)
    return out


def linear_fusion(results: Sequence[SearchResults], k: int = 10, *, weights: Sequence[float] | None = None,
                  normalization: str = "minmax") -> SearchResults:
    """Weighted sum of per-query normalized scores (see the module docstring)."""
    w = _check(results, weights, k)
    if normalization not in ("minmax", "zscore"):
        raise ValueError(f"normalization must be 'minmax' or 'zscore', got {normalization!r}")
    n = results[0].doc_idx.shape[0]
    out = empty_results(n, k)
    for i in range(n):
        lists = []
        for r in results:
            found = r.doc_idx[i] != NO_DOC
            s = r.scores[i][found].astype(np.float64)
            if s.size == 0:
                lists.append((r.doc_idx[i][found], s, 0.0))
                continue
            if normalization == "minmax":
                span = s.max() - s.min()
                s = (s - s.min()) / span if span > 0 else np.ones_like(s)
            else:
                sd = s.std()
                s = (s - s.mean()) / sd if sd > 0 else np.zeros_like(s)
            lists.append((r.doc_idx[i][found], s, float(s.min())))
        all_docs = np.unique(np.concatenate([d for d, _, _ in lists]))
        total = np.zeros(all_docs.size)
        for (d, s, floor), wi in zip(lists, w):
            value = np.full(all_docs.size, floor)  # a document a list did not return gets its lowest score
            value[np.searchsorted(all_docs, d)] = s
            total += wi * value
        write_ranked(out, i, all_docs, total)
    return out
