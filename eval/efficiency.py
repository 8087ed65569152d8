"""Efficiency statistics: latency percentiles, throughput, vector lengths, FLOPS, sizes.

All functions take plain numbers or numpy arrays, so they serve every encoder and engine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def latency_stats(seconds: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean, p50, p95 and p99 of per-query latencies, in milliseconds, plus the query count.

    Percentiles use numpy's default (linear) interpolation.
    """
    s = np.asarray(seconds, dtype=np.float64) * 1e3
    if s.size == 0:
        raise ValueError("no latencies to summarise")
    p50, p95, p99 = np.percentile(s, [50, 95, 99])
    return {
        "mean_ms": float(s.mean()),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "max_ms": float(s.max()),
        "n": int(s.size),
    }


def throughput(n_queries: int, seconds: float) -> float:
    """Queries per second of a batch that took ``seconds``."""
    return float(n_queries) / seconds if seconds > 0 else float("inf")


def vector_length_stats(indptr: np.ndarray) -> dict[str, float]:
    """Non-zeros per vector (mean, median, p99, max) from CSR row pointers."""
    nnz = np.diff(np.asarray(indptr))
    if nnz.size == 0:
        return {"mean": 0.0, "median": 0.0, "p99": 0.0, "max": 0}
    return {
        "mean": float(nnz.mean()),
        "median": float(np.median(nnz)),
        "p99": float(np.percentile(nnz, 99)),
        "max": int(nnz.max()),
    }


def flops(query_indices: np.ndarray, n_queries: int, doc_freq: np.ndarray, n_docs: int) -> float:
    """Expected multiplications per query-document pair, as SPLADE reports FLOPS.

    ``FLOPS = sum_j p_q(j) * p_d(j)`` where ``p_d(j) = df_j / n_docs`` is the probability that
    a document activates term ``j`` and ``p_q(j)`` the fraction of queries that activate it
    (Paria et al., 2020, "Minimizing FLOPs to Learn Efficient Sparse Representations";
    Formal et al., 2021, SPLADE). Equivalently, the mean over queries of
    ``sum_{j in q} df_j / n_docs``.

    Args:
        query_indices: the term ids of all query vectors (CSR ``indices``, one entry per non-zero).
        n_queries: number of queries.
        doc_freq: document frequency of each term (``[dim]``).
        n_docs: number of documents.
    """
    if n_queries == 0 or n_docs == 0:
        return 0.0
    df = np.asarray(doc_freq, dtype=np.float64)
    return float(df[np.asarray(query_indices, dtype=np.int64)].sum() / (n_docs * n_queries))
