"""Synthetic sparse vectors matched to published learned-sparse statistics (numpy only).

* Vocabulary of 30,522 terms (BERT's WordPiece), term popularity Zipf-like (rank^-a).
* Documents: 120-200 non-zeros (SPLADE on MS MARCO passages averages ~150-200).
* SPLADE-like queries: 20-40 non-zeros, weights like documents.
* Inference-free queries: 5-15 non-zeros weighted by IDF computed on the generated documents.

Weights are integers in [1, 255] (8-bit impacts, as quantized indexes store them), so every engine,
including the integer-only anchors, sees exactly the same vectors and exact scores.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

VOCAB = 30_522


def _term_cdf(dim: int, exponent: float) -> np.ndarray:
    p = 1.0 / np.arange(1, dim + 1, dtype=np.float64) ** exponent
    cdf = np.cumsum(p)
    return cdf / cdf[-1]


def _rows(rng, n: int, lo: int, hi: int, cdf: np.ndarray, perm: np.ndarray, chunk: int = 100_000) -> sp.csr_array:
    """n rows of lo..hi term draws by popularity (repeated draws merge); log-normal integer weights."""
    parts = []
    dim = perm.size
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        lengths = rng.integers(lo, hi + 1, size=m)
        terms = perm[np.minimum(np.searchsorted(cdf, rng.random(int(lengths.sum()))), dim - 1)]
        rows = np.repeat(np.arange(m, dtype=np.int32), lengths)
        w = np.clip(np.rint(rng.lognormal(mean=3.6, sigma=0.8, size=terms.size)), 1, 255).astype(np.float32)
        part = sp.csr_array((w, (rows, terms)), shape=(m, dim))
        part.sum_duplicates()  # a term drawn twice keeps the sum, capped like any 8-bit impact
        np.minimum(part.data, 255, out=part.data)
        parts.append(part)
    return sp.csr_array(sp.vstack(parts, format="csr"))


def generate(n_docs: int, n_queries: int, seed: int = 0, dim: int = VOCAB, exponent: float = 0.7):
    """Documents, SPLADE-like queries and inference-free queries (three ``csr_array``)."""
    rng = np.random.default_rng(seed)
    cdf = _term_cdf(dim, exponent)
    perm = rng.permutation(dim).astype(np.int32)  # popular terms scattered over the id space
    docs = _rows(rng, n_docs, 120, 200, cdf, perm)
    splade_q = _rows(rng, n_queries, 20, 40, cdf, perm)
    short = _rows(rng, n_queries, 5, 15, cdf, perm)
    df = np.bincount(docs.indices, minlength=dim)
    idf = np.log((n_docs + 1) / (df + 1)) + 1e-3
    w = np.clip(np.rint(idf[short.indices] / idf.max() * 255), 1, 255).astype(np.float32)
    inf_free_q = sp.csr_array((w, short.indices, short.indptr), shape=short.shape)
    return docs, splade_q, inf_free_q


def flops(docs: sp.csr_array, queries: sp.csr_array) -> float:
    df = np.bincount(docs.indices, minlength=docs.shape[1]).astype(np.float64)
    return float(df[queries.indices].sum() / (docs.shape[0] * queries.shape[0]))
