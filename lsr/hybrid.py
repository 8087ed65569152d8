"""Hybrid search: a sparse retriever and a dense one over the same corpus, their result lists fused.

The sparse side is any :class:`~lsr.pipeline.Retriever` (BM25, SPLADE, an inference-free model, on any
engine); the dense side a :class:`~lsr.encoders.dense.DenseEncoder` with a :class:`~lsr.dense.FaissIndex`.
Each retrieves ``candidates`` documents per query; :mod:`index.fusion` combines them: reciprocal rank
fusion (default) or a normalized linear combination whose weight is best chosen on a dev split
(:func:`choose_weight`). Results are in the sparse index's document indices.

Example:
    >>> h = HybridRetriever.build(ds.corpus, "bm25")                   # BM25 + all-MiniLM-L6-v2       # doctest: +SKIP
    >>> h.search(["insulin resistance"], k=10)                         # RRF                            # doctest: +SKIP
    >>> h = h.with_fusion("linear", weight=choose_weight(h, dev.queries, dev.qrels))                    # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from index import SearchResults
from index.fusion import linear_fusion, reciprocal_rank_fusion
from index.oracle import _check_k
from index.searcher import SearchOptions

FUSIONS = ("rrf", "linear")


@dataclasses.dataclass
class HybridRetriever:
    """A sparse :class:`~lsr.pipeline.Retriever` and a dense encoder + faiss index, fused.

    Attributes:
        sparse: the sparse retriever (its index's document indices are the results').
        dense_encoder, dense: the dense encoder and its :class:`~lsr.dense.FaissIndex`.
        fusion: ``"rrf"`` or ``"linear"``; ``weight``: the dense list's weight in ``[0, 1]`` (linear fusion:
            the sparse list gets ``1 - weight``; RRF: both 1 unless given); ``candidates``: documents each side
            retrieves per query; ``normalization``: ``"minmax"`` or ``"zscore"`` for linear fusion.
    """

    sparse: object
    dense_encoder: object
    dense: object
    fusion: str = "rrf"
    weight: float | None = None
    candidates: int = 100
    normalization: str = "minmax"

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.weight is not None and not 0 <= self.weight <= 1:
            raise ValueError(f"weight must be in [0, 1], got {self.weight}")
        if self.candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")
        ids = self.sparse.index.doc_ids
        pos = np.array([ids.position(d) for d in self.dense.doc_ids], dtype=object)
        if any(p is None for p in pos) or len(pos) != self.sparse.index.n_docs:
            raise ValueError("the sparse and dense sides index different documents; build both from one corpus")
        self._to_sparse = pos.astype(np.int64)  # dense document index -> sparse document index

    @classmethod
    def build(cls, corpus, sparse_encoder, *, dense_model: str = "all-MiniLM-L6-v2", index_type: str = "flat",
              show_progress: bool = True, **settings) -> HybridRetriever:
        """Encode ``corpus`` (re-iterable ``(doc_id, text)`` pairs) with both encoders and index both sides."""
        from .dense import FaissIndex
        from .encoders.dense import DenseEncoder
        from .pipeline import Retriever

        sparse = Retriever.build(corpus, sparse_encoder, show_progress=show_progress)
        pairs = list(corpus)
        encoder = DenseEncoder(dense_model)
        emb = encoder.embed([t for _, t in pairs], show_progress=show_progress)
        dense = FaissIndex.build([d for d, _ in pairs], emb, index_type=index_type, encoder=encoder.describe())
        return cls(sparse, encoder, dense, **settings)

    def with_fusion(self, fusion: str, weight: float | None = None, normalization: str = "minmax") -> HybridRetriever:
        return dataclasses.replace(self, fusion=fusion, weight=weight, normalization=normalization)

    def search_parts(self, texts: Sequence[str], k: int, options: SearchOptions | None = None
                     ) -> tuple[SearchResults, SearchResults]:
        """Each side's own top ``max(k, candidates)``, both in the sparse index's document indices."""
        n = max(k, self.candidates)
        sparse = self.sparse.search(list(texts), n, options)
        dense = self.dense.search(self.dense_encoder.embed(list(texts)), n)
        mapped = np.where(dense.doc_idx >= 0, self._to_sparse[np.maximum(dense.doc_idx, 0)], -1).astype(np.int32)
        return sparse, SearchResults(mapped, dense.scores)

    def fuse(self, sparse: SearchResults, dense: SearchResults, k: int) -> SearchResults:
        if self.fusion == "rrf":
            weights = None if self.weight is None else [1 - self.weight, self.weight]
            return reciprocal_rank_fusion([sparse, dense], k, weights=weights)
        w = 0.5 if self.weight is None else self.weight
        return linear_fusion([sparse, dense], k, weights=[1 - w, w], normalization=self.normalization)

    def search(self, texts: Sequence[str], k: int = 10, options: SearchOptions | None = None) -> SearchResults:
        """Top-k fused documents of query texts (document indices of the sparse index)."""
        if isinstance(texts, str):
            texts = [texts]
        k = _check_k(k, self.sparse.index.n_docs)
        return self.fuse(*self.search_parts(texts, k, options), k)

    def describe(self) -> dict:
        return {"kind": "hybrid", "sparse": self.sparse.encoder.describe(), "dense": self.dense.describe(),
                "fusion": self.fusion, "weight": self.weight, "candidates": self.candidates,
                "normalization": self.normalization if self.fusion == "linear" else None}


def choose_weight(hybrid: HybridRetriever, queries: dict[str, str], qrels: dict, *, measure: str = "nDCG@10",
                  grid: Sequence[float] = tuple(np.round(np.linspace(0, 1, 11), 2)), k: int = 100) -> float:
    """The dense weight of linear fusion that maximises ``measure`` on a dev split (ties: the smaller weight).

    Each side is searched once; only the fusion is repeated for every weight on the grid.
    """
    from eval import evaluate

    qids = [q for q in queries if q in qrels]
    sparse, dense = hybrid.search_parts([queries[q] for q in qids], k)
    best, best_w = -1.0, 0.0
    for w in grid:
        fused = dataclasses.replace(hybrid, fusion="linear", weight=float(w)).fuse(sparse, dense, k)
        value = evaluate(fused.to_run(qids, hybrid.sparse.index.doc_ids), qrels, [measure]).aggregate[measure]
        if value > best + 1e-12:
            best, best_w = value, float(w)
    return best_w
