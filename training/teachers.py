"""Teachers: retrievers that mine hard negatives and score (query, document) pairs for distillation.

* :class:`SparseTeacher` — any lsr encoder (``bm25``, ``splade-tiny``, a trained model directory)
  over lsr's own inverted index: search for mining, exact dot products for scores.
* ``self`` — the model under training (a :class:`SparseTeacher` over its current weights).
* :class:`DenseTeacher` — a mean-pooled, normalised sentence embedder (the packaged
  all-MiniLM-L6-v2 by default) searched with faiss (exact inner product, ``IndexFlatIP``).

Both expose ``search(queries, k) -> SearchResults`` (row-aligned with the queries, document
positions in corpus order) and ``score(query_index, doc_positions) -> np.ndarray``.

Example:
    >>> t = make_teacher("bm25", corpus_ids, corpus_texts)             # doctest: +SKIP
    >>> t.prepare_queries(["what causes insulin resistance"])          # doctest: +SKIP
    >>> t.search(k=100).doc_idx[0][:5]                                  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from index import InvertedIndex, SearchResults
from lsr.encoders import load_encoder

logger = logging.getLogger(__name__)

SPARSE_SPECS = {"bm25": "bm25", "splade": "splade-tiny"}


class SparseTeacher:
    """A sparse lsr encoder (a spec or an encoder object) over the corpus, searched with lsr's exact engine."""

    def __init__(self, name: str, spec, texts: Sequence[str], show_progress: bool = True):
        self.name = name
        self.encoder = load_encoder(spec) if isinstance(spec, str) else spec
        if self.encoder.needs_fit:
            self.docs = self.encoder.fit_encode_documents(texts, show_progress=show_progress)
        else:
            self.docs = self.encoder.encode_documents(texts, show_progress=show_progress)
        self.index = InvertedIndex.build(self.docs, vocabulary=self.encoder.vocabulary, block_max=False)
        self.queries = None

    def prepare_queries(self, texts: Sequence[str]) -> None:
        self.queries = self.encoder.encode_queries(list(texts))

    def search(self, k: int) -> SearchResults:
        return self.index.search(self.queries, k=k)

    def score(self, qi: int, docs: np.ndarray) -> np.ndarray:
        q = self.queries[[qi]]
        return np.asarray((self.docs[np.asarray(docs, dtype=np.int64)] @ q.T).toarray()).ravel().astype(np.float32)


class DenseTeacher:
    """Mean-pooled, L2-normalised embeddings (:class:`lsr.encoders.dense.DenseEncoder`, the same encoder hybrid
    search uses), searched exactly with faiss."""

    def __init__(self, name: str, model: str, texts: Sequence[str], *, max_length: int = 256, batch_size: int = 32,
                 show_progress: bool = True):
        from lsr.encoders.dense import DenseEncoder

        self.name = name
        self.encoder = DenseEncoder(model, max_length=max_length, batch_size=batch_size)
        self.docs = self.embed(texts, show_progress=show_progress)
        import faiss

        self.index = faiss.IndexFlatIP(self.docs.shape[1])
        self.index.add(self.docs)
        self.queries = None

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self.encoder.embed(texts, show_progress=show_progress, desc=f"{self.name} embeddings")

    def prepare_queries(self, texts: Sequence[str]) -> None:
        self.queries = self.embed(texts)

    def search(self, k: int) -> SearchResults:
        k = min(k, self.docs.shape[0])
        scores, idx = self.index.search(self.queries, k)
        return SearchResults(idx.astype(np.int32), scores.astype(np.float32))

    def score(self, qi: int, docs: np.ndarray) -> np.ndarray:
        return (self.docs[np.asarray(docs, dtype=np.int64)] @ self.queries[qi]).astype(np.float32)


def make_teacher(name: str, texts: Sequence[str], *, dense_model: str = "all-MiniLM-L6-v2",
                 show_progress: bool = True, self_encoder=None):
    """A teacher by name: ``bm25``, ``splade`` (the packaged splade-tiny), ``dense`` (``dense_model``) or
    ``self`` (``self_encoder``: the model under training, as it is when mining starts — self-mining, e.g.
    a second round of training from a first round's model as SPLADE++ does)."""
    if name == "self":
        if self_encoder is None:
            raise ValueError("the 'self' teacher needs the model under training (self_encoder)")
        return SparseTeacher(name, self_encoder, texts, show_progress=show_progress)
    if name == "dense":
        return DenseTeacher(name, dense_model, texts, show_progress=show_progress)
    if name in SPARSE_SPECS:
        return SparseTeacher(name, SPARSE_SPECS[name], texts, show_progress=show_progress)
    raise ValueError(f"unknown teacher {name!r}; choose bm25, splade, dense or self")
