"""Synthetic sparse vectors matched to published learned-sparse statistics (numpy only).

* Vocabulary of 30,522 terms (BERT's WordPiece), term popularity Zipf-like (rank^-a).
* Documents: 120-200 non-zeros (SPLADE on MS MARCO passages averages ~150-200).
* SPLADE-like queries: 20-40 non-zeros, weights like documents.
* Inference-free queries: 5-15 non-zeros weighted by IDF computed on the generated documents.

Weights are integers in [1, 255] (8-bit impacts, as quantized indexes store them), so every engine,
including the integer-only anchors, sees exactly the same vectors and exact scores.

Two kinds of collection:

* :func:`generate` draws every document independently from one Zipf vocabulary (no structure);
* :func:`generate_topical` gives the collection topics, the structure real learned-sparse collections
  have and that clustered (Seismic) and block-bounded (BMP, block-max) indexes exploit: latent topics own
  regions of the vocabulary, each document mixes one or two topics with background terms, and each query
  is derived from a source document (some of its terms, more of its topic, a little background).
"""

from __future__ import annotations

from typing import NamedTuple

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


class TopicalCollection(NamedTuple):
    """A topic-structured synthetic collection (:func:`generate_topical`)."""

    docs: sp.csr_array
    splade_queries: sp.csr_array
    inference_free_queries: sp.csr_array
    doc_topics: np.ndarray        # [n_docs, 2] topic ids (the second equals the first for one-topic documents)
    query_sources: np.ndarray     # [n_queries] the document each query was derived from


def _weights(rng, n: int, mean: float = 3.6) -> np.ndarray:
    return np.clip(np.rint(rng.lognormal(mean=mean, sigma=0.8, size=n)), 1, 255).astype(np.float32)


def _merge(rows, terms, weights, m: int, dim: int) -> sp.csr_array:
    part = sp.csr_array((weights, (rows, terms)), shape=(m, dim))
    part.sum_duplicates()
    np.minimum(part.data, 255, out=part.data)
    return part


class _Topics(NamedTuple):
    """The latent structure of a topical collection: who owns which terms, and each document's topics."""

    dim: int
    cdf: np.ndarray            # background term popularity (cumulative)
    perm: np.ndarray           # background popularity rank -> term id
    owned: np.ndarray          # [n_topics, topic_terms] term ids each topic owns
    topic_cdf: np.ndarray      # popularity of a topic's own terms (cumulative)
    doc_topics: np.ndarray     # [n_docs, 2]
    topic_share: float

    def topic_draw(self, rng, topics: np.ndarray) -> np.ndarray:
        idx = np.minimum(np.searchsorted(self.topic_cdf, rng.random(topics.size)), self.owned.shape[1] - 1)
        return self.owned[topics, idx]

    def background_draw(self, rng, k: int) -> np.ndarray:
        return self.perm[np.minimum(np.searchsorted(self.cdf, rng.random(k)), self.dim - 1)]

    def documents(self, rng, start: int, m: int) -> sp.csr_array:
        """Documents ``start .. start + m - 1``: 150-240 term draws each, topic terms weighted a little higher."""
        lengths = rng.integers(150, 241, size=m)
        rows = np.repeat(np.arange(m, dtype=np.int32), lengths)
        is_topic = rng.random(rows.size) < self.topic_share
        pick = self.doc_topics[start + rows, rng.integers(0, 2, size=rows.size)]
        terms = np.where(is_topic, self.topic_draw(rng, pick), self.background_draw(rng, rows.size))
        weights = _weights(rng, rows.size) * np.where(is_topic, 1.3, 1.0).astype(np.float32)
        return _merge(rows, terms, np.clip(np.rint(weights), 1, 255), m, self.dim)

    def queries(self, rng, sources: np.ndarray, source_rows: sp.csr_array, df: np.ndarray, n_docs: int):
        """SPLADE-like and inference-free queries, one per source document (``source_rows``: their vectors,
        in the order of ``sources``; ``df``: the collection's document frequencies, for the IDF weights)."""
        n_queries = sources.size

        def from_source(rows_q: np.ndarray) -> np.ndarray:
            lo, hi = source_rows.indptr[rows_q], source_rows.indptr[rows_q + 1]
            return source_rows.indices[lo + (rng.random(rows_q.size) * (hi - lo)).astype(np.int64)]

        lengths = rng.integers(28, 46, size=n_queries)
        rows = np.repeat(np.arange(n_queries, dtype=np.int32), lengths)
        kind = rng.random(rows.size)
        terms = np.where(kind < 0.25, from_source(rows),
                         np.where(kind < 0.75, self.topic_draw(rng, self.doc_topics[sources[rows], 0]),
                                  self.background_draw(rng, rows.size)))
        splade_q = _merge(rows, terms, _weights(rng, rows.size), n_queries, self.dim)
        lengths = rng.integers(6, 11, size=n_queries)
        rows = np.repeat(np.arange(n_queries, dtype=np.int32), lengths)
        terms = np.where(rng.random(rows.size) < 0.5, from_source(rows),
                         self.topic_draw(rng, self.doc_topics[sources[rows], 0]))
        short = _merge(rows, terms, np.ones(rows.size, dtype=np.float32), n_queries, self.dim)
        idf = np.log((n_docs + 1) / (df + 1)) + 1e-3
        w = np.clip(np.rint(idf[short.indices] / idf.max() * 255), 1, 255).astype(np.float32)
        return splade_q, sp.csr_array((w, short.indices, short.indptr), shape=short.shape)


def _topics(rng, n_docs: int, dim: int, n_topics: int | None, topic_terms: int, topic_share: float,
            two_topic_share: float, exponent: float) -> _Topics:
    n_topics = int(n_topics or max(20, n_docs // 1000))
    cdf = _term_cdf(dim, exponent)
    perm = rng.permutation(dim).astype(np.int32)
    # each topic: topic_terms distinct terms, from ranks skewed toward the middle of the popularity order
    ranks = np.minimum((rng.beta(1.2, 3.0, size=(n_topics, topic_terms * 2)) * dim).astype(np.int64), dim - 1)
    owned = np.empty((n_topics, topic_terms), dtype=np.int32)
    for t in range(n_topics):
        u = np.unique(perm[ranks[t]])
        if u.size < topic_terms:
            u = np.unique(np.concatenate([u, perm[rng.integers(0, dim, size=topic_terms * 2)]]))
        owned[t] = rng.permutation(u)[:topic_terms]
    first = rng.integers(0, n_topics, size=n_docs).astype(np.int32)
    second = np.where(rng.random(n_docs) < two_topic_share, rng.integers(0, n_topics, size=n_docs), first)
    doc_topics = np.stack([first, second.astype(np.int32)], axis=1)
    return _Topics(dim, cdf, perm, owned, _term_cdf(topic_terms, 0.8), doc_topics, topic_share)


def generate_topical(n_docs: int, n_queries: int, seed: int = 0, dim: int = VOCAB, *, n_topics: int | None = None,
                     topic_terms: int = 500, topic_share: float = 0.6, two_topic_share: float = 0.3,
                     exponent: float = 0.7, chunk: int = 100_000) -> TopicalCollection:
    """A topic-structured collection with SPLADE-on-MS-MARCO-like statistics.

    Args:
        n_topics: latent topics (default ``max(20, n_docs // 1000)``: about a thousand documents each).
        topic_terms: vocabulary terms each topic owns (drawn mid-frequency-heavy from the background order,
            so topics share some popular terms, as real topics do), used with a Zipf order of their own.
        topic_share: fraction of a document's term draws from its topic(s); the rest is background.
        two_topic_share: fraction of documents mixing two topics (their topic draws split evenly).

    Documents: 150-240 term draws (~150-200 non-zeros after merging repeats), topic terms weighted a
    little higher than background ones. SPLADE-like queries: 28-45 draws (~30-40 non-zeros), a quarter from
    the source document's own terms, half from its first topic, a quarter background. Inference-free queries:
    6-10 distinct terms (half from the source document, half from its topic), weighted by the collection's
    IDF. Returns a :class:`TopicalCollection`. :func:`topical_shards` streams the same kind of collection.
    """
    rng = np.random.default_rng(seed)
    model = _topics(rng, n_docs, dim, n_topics, topic_terms, topic_share, two_topic_share, exponent)
    parts = [model.documents(rng, start, min(chunk, n_docs - start)) for start in range(0, n_docs, chunk)]
    docs = sp.csr_array(sp.vstack(parts, format="csr"))
    sources = rng.integers(0, n_docs, size=n_queries)
    df = np.bincount(docs.indices, minlength=dim)
    splade_q, inf_free_q = model.queries(rng, sources, sp.csr_array(docs[sources]), df, n_docs)
    return TopicalCollection(docs, splade_q, inf_free_q, model.doc_topics, sources)


def topical_shards(n_docs: int, n_queries: int, seed: int = 0, dim: int = VOCAB, *, shard_size: int = 100_000,
                   n_topics: int | None = None, topic_terms: int = 500, topic_share: float = 0.6,
                   two_topic_share: float = 0.3, exponent: float = 0.7):
    """:func:`generate_topical` as a stream, for collections larger than memory: yields ``("docs", start,
    shard)`` for each shard of ``shard_size`` documents, then ``("queries", splade, inference_free,
    sources)`` (the queries need the whole collection's document frequencies). Same statistics; a random
    stream of its own (not the documents :func:`generate_topical` gives for the same seed)."""
    rng = np.random.default_rng(seed)
    model = _topics(rng, n_docs, dim, n_topics, topic_terms, topic_share, two_topic_share, exponent)
    q_rng = np.random.default_rng([seed, 1])
    sources = q_rng.integers(0, n_docs, size=n_queries)
    order = np.argsort(sources, kind="stable")
    kept: list[sp.csr_array] = []
    df = np.zeros(dim, dtype=np.int64)
    for start in range(0, n_docs, shard_size):
        m = min(shard_size, n_docs - start)
        shard = model.documents(rng, start, m)
        df += np.bincount(shard.indices, minlength=dim)
        lo, hi = np.searchsorted(sources[order], [start, start + m])
        if hi > lo:
            kept.append(sp.csr_array(shard[sources[order[lo:hi]] - start]))
        yield "docs", start, shard
    rows = sp.csr_array(sp.vstack(kept, format="csr")) if kept else sp.csr_array((0, dim), dtype=np.float32)
    source_rows = sp.csr_array(rows[np.argsort(order)])  # back in the order of ``sources``
    splade_q, inf_free_q = model.queries(q_rng, sources, source_rows, df, n_docs)
    yield "queries", splade_q, inf_free_q, sources


def describe(docs: sp.csr_array, queries: dict[str, sp.csr_array]) -> dict:
    """Mean non-zeros of documents and of each query set, and each set's FLOPS (for tables and checks)."""
    out = {"doc_nnz": float(np.diff(docs.indptr).mean())}
    for name, q in queries.items():
        out[f"{name}_nnz"] = float(np.diff(q.indptr).mean())
        out[f"{name}_flops"] = flops(docs, q)
    return out
