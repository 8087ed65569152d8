"""SLIM: sparsified late interaction (Li et al., SIGIR 2023, "SLIM: Sparsified Late Interaction for
Multi-Vector Retrieval with Inverted Indexes").

Every token of a text gets its own sparse vector over the vocabulary (the MLM head's
``log(1 + ReLU(logits))``, cut to its ``token_top_k`` heaviest terms). Retrieval has two stages:

1. **candidates** from the inverted index over the pooled approximation (the max over a document's
   token vectors, which is also what :meth:`SlimEncoder.encode_documents` returns, so SLIM runs
   through every lsr index and engine unchanged);
2. **late interaction re-scoring** of the candidates:
   ``score(q, d) = sum_i max_j  q_i . d_j`` over query tokens ``i`` and document tokens ``j``.

The per-token vectors are kept compactly in a :class:`TokenStore` (CSR over all tokens plus
per-document token offsets) saved beside the index.

Example:
    >>> enc = load_encoder("slim:model=splade-tiny,token_top_k=20")         # doctest: +SKIP
    >>> r = build_index(ds.corpus, enc)          # index + token store        # doctest: +SKIP
    >>> r.search(["what causes insulin resistance"], k=10)   # re-scored      # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from index.late import late_interaction_scores
from index.sparse import as_csr
from index.storage import MANIFEST, atomic_dir

from .projection import token_weights
from .splade import SpladeEncoder, torch_threads

TOKEN_STORE = "slim"


class TokenStore(NamedTuple):
    """Per-token sparse vectors of many texts: text ``i`` owns rows ``offsets[i]:offsets[i+1]`` of ``tokens``."""

    offsets: np.ndarray
    tokens: sp.csr_array

    def __len__(self) -> int:
        return int(self.offsets.shape[0]) - 1

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        path = Path(path)
        with atomic_dir(path, overwrite=overwrite, kind="token-store") as tmp:
            (tmp / MANIFEST).write_text(json.dumps({"format": "lsr-token-store", "texts": len(self)}) + "\n",
                                        encoding="utf-8")
            np.save(tmp / "offsets.npy", self.offsets)
            np.save(tmp / "indptr.npy", self.tokens.indptr)
            np.save(tmp / "indices.npy", self.tokens.indices)
            np.save(tmp / "data.npy", self.tokens.data)
            np.save(tmp / "shape.npy", np.asarray(self.tokens.shape, dtype=np.int64))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> TokenStore:
        path = Path(path)
        try:
            arrays = {n: np.load(path / f"{n}.npy", mmap_mode="r") for n in ("offsets", "indptr", "indices", "data",
                                                                               "shape")}
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: not a readable SLIM token store ({e}); rebuild the index") from None
        shape = tuple(int(x) for x in arrays["shape"])
        tokens = sp.csr_array((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
        if arrays["offsets"][-1] != shape[0]:
            raise ValueError(f"{path}: token offsets do not match the token rows; rebuild the index")
        return cls(np.asarray(arrays["offsets"]), tokens)

    def rows(self, docs: np.ndarray) -> tuple[sp.csr_array, np.ndarray]:
        """The token rows of ``docs`` stacked, and the boundaries of each document's rows."""
        starts = self.offsets[docs]
        ends = self.offsets[docs + 1]
        take = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(docs) else np.zeros(0, int)
        bounds = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(ends - starts, out=bounds[1:])
        return self.tokens[take], bounds


def late_interaction_batch(queries: TokenStore, docs: TokenStore, candidates: np.ndarray,
                           threads: int | None = None) -> np.ndarray:
    """Late-interaction scores ``[n_queries, n_candidates]`` of every query's candidates (``-1``: none).

    Runs :func:`index.late.late_interaction_scores`, a Numba kernel parallel over queries.
    """
    return late_interaction_scores(queries.offsets, queries.tokens, docs.offsets, docs.tokens, candidates,
                                   threads=threads)


class SlimEncoder(SpladeEncoder):
    """SLIM over a masked LM: per-token sparse vectors, pooled for the index, late interaction to re-score.

    Args:
        token_top_k: terms kept per token vector (default 20).
        rerank: candidates from the index re-scored by late interaction (default 100).
        other arguments: as :class:`~lsr.encoders.splade.SpladeEncoder` (pooling is always max here).
    """

    kind = "slim"

    def __init__(self, model="splade-tiny", tokenizer=None, *, token_top_k: int = 20, rerank: int = 100, **kwargs):
        kwargs["pooling"] = "max"
        super().__init__(model, tokenizer, **kwargs)
        if int(token_top_k) < 1 or int(rerank) < 1:
            raise ValueError("token_top_k and rerank must be >= 1")
        self.token_top_k = int(token_top_k)
        self.rerank = int(rerank)

    def config(self) -> dict:
        cfg = super().config()
        cfg.pop("pooling", None)
        return {**cfg, "token_top_k": self.token_top_k, "rerank": self.rerank}

    def _token_vectors(self, model, texts: list[str], max_length: int) -> TokenStore:
        import torch

        offsets = [0]
        parts = []
        with torch.inference_mode(), torch_threads(self.threads):
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start:start + self.batch_size]
                t = token_weights(model, self.tokenizer, batch, max_length, self.token_top_k,
                                  activation=self.activation, low_precision=self.dtype == "bfloat16")
                vals, idx = t.values.cpu(), t.indices.cpu()
                keep = vals > 0
                rows = torch.arange(vals.shape[0]).unsqueeze(1).expand_as(idx)[keep].numpy()
                parts.append(sp.csr_array((vals[keep].numpy(), (rows, idx[keep].numpy())),
                                          shape=(vals.shape[0], self.dim)))
                for n in t.lengths:
                    offsets.append(offsets[-1] + n)
        tokens = sp.csr_array(sp.vstack(parts, format="csr")) if parts else sp.csr_array((0, self.dim), dtype=np.float32)
        return TokenStore(np.asarray(offsets, dtype=np.int64), as_csr(tokens, name="token vectors"))

    has_second_stage = True

    def reranker_for(self, texts) -> LateInteractionReranker:
        """The late-interaction second stage over these documents' token vectors."""
        return LateInteractionReranker(self, self.encode_document_tokens(list(texts)))

    def encode_document_tokens(self, texts) -> TokenStore:
        return self._token_vectors(self.model, list(texts), self.doc_max_length)

    def encode_query_tokens(self, texts) -> TokenStore:
        return self._token_vectors(self.query_model or self.model, list(texts), self.query_max_length)

    @staticmethod
    def pool(store: TokenStore) -> sp.csr_array:
        """Max over each text's token vectors: the pooled approximation the inverted index holds."""
        dim = store.tokens.shape[1]
        text_of_row = np.repeat(np.arange(len(store)), np.diff(store.offsets))
        tokens = store.tokens  # CSR entries -> (text, term, weight) without tocoo (mixed index dtypes)
        token_of_entry = np.repeat(np.arange(tokens.shape[0]), np.diff(tokens.indptr))
        rows = text_of_row[token_of_entry]
        cols, vals = np.asarray(tokens.indices), np.asarray(tokens.data)
        key = rows.astype(np.int64) * dim + cols
        order = np.lexsort((-vals, key))  # per (text, term): the largest weight first
        first = np.ones(order.size, dtype=bool)
        first[1:] = key[order][1:] != key[order][:-1]
        sel = order[first]
        out = sp.csr_array((vals[sel], (rows[sel], cols[sel])), shape=(len(store), dim))
        return as_csr(out, name="pooled")

    def encode_documents(self, texts, *, show_progress: bool = False) -> sp.csr_array:
        return self.pool(self.encode_document_tokens(texts))

    def encode_queries(self, texts) -> sp.csr_array:
        return self.pool(self.encode_query_tokens(texts))


class LateInteractionReranker:
    """SLIM's second stage as a reranker that runs after any searcher: the first stage's candidates (searched
    with pooled query vectors) re-scored by late interaction against the documents' token vectors.

    Args:
        encoder: the :class:`SlimEncoder` that made the token vectors (it encodes the query's tokens).
        token_store: the documents' token vectors, in the index's document order.

    Example:
        >>> r = LateInteractionReranker(encoder, encoder.encode_document_tokens(texts))   # doctest: +SKIP
        >>> qs = r.encode_queries(["insulin resistance"])                                 # doctest: +SKIP
        >>> first = index.search(r.first_stage(qs), k=r.candidates)                       # doctest: +SKIP
        >>> final = r.rerank(qs, first, k=10)                                             # doctest: +SKIP
    """

    kind = "late-interaction"

    def __init__(self, encoder: SlimEncoder, token_store: TokenStore):
        self.encoder = encoder
        self.token_store = token_store

    @property
    def candidates(self) -> int:
        """First-stage documents re-scored per query (the encoder's ``rerank``)."""
        return self.encoder.rerank

    def encode_queries(self, texts) -> TokenStore:
        return self.encoder.encode_query_tokens(texts)

    def first_stage(self, queries: TokenStore) -> sp.csr_array:
        """The pooled query vectors the first-stage searcher takes."""
        return self.encoder.pool(queries)

    def rerank(self, queries: TokenStore, first, k: int, threads: int | None = None):
        """The best ``k`` of each query's first-stage candidates by late interaction, ties by document index."""
        from index.results import empty_results

        scores = late_interaction_batch(queries, self.token_store, first.doc_idx, threads=threads)
        n = len(queries)
        out = empty_results(n, min(k, first.doc_idx.shape[1]))
        for i in range(n):
            cands = first.doc_idx[i]
            found = cands >= 0
            order = np.lexsort((cands, -scores[i], ~found))[:out.k]  # best score first, ties by document index
            keep = order[found[order] & (scores[i][order] > 0)]
            out.doc_idx[i, :keep.size] = cands[keep]
            out.scores[i, :keep.size] = scores[i][keep]
        return out

    def reordered(self, order: np.ndarray) -> LateInteractionReranker:
        """The same second stage with the documents in ``order`` (an index that reordered them)."""
        tokens, bounds = self.token_store.rows(order)
        return LateInteractionReranker(self.encoder, TokenStore(bounds, tokens))

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        return self.token_store.save(path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, encoder: SlimEncoder) -> LateInteractionReranker:
        return cls(encoder, TokenStore.load(path))

    def size_bytes(self) -> int:
        t = self.token_store.tokens
        return int(self.token_store.offsets.nbytes + t.data.nbytes + t.indices.nbytes + t.indptr.nbytes)

    def describe(self) -> dict:
        return {"kind": self.kind, "candidates": self.candidates, "texts": len(self.token_store),
                "token_vectors": int(self.token_store.tokens.shape[0]), "bytes": self.size_bytes()}
