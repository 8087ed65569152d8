"""A dense searcher on faiss: exact inner product (``IndexFlatIP``) by default, HNSW as an option.

It holds document embeddings (e.g. :class:`lsr.encoders.dense.DenseEncoder`'s) and answers a batch of query
embeddings with :class:`~index.SearchResults`, ties by the smaller document index, like every lsr searcher.
On disk: ``manifest.json`` (format, kind of faiss index, dimension, counts), ``faiss.index`` and ``doc_ids.json``.

Example:
    >>> from lsr.dense import FaissIndex
    >>> idx = FaissIndex.build(doc_ids, encoder.embed(texts))                     # doctest: +SKIP
    >>> idx.search(encoder.embed(["insulin resistance"]), k=10)                  # doctest: +SKIP
    >>> FaissIndex.build(doc_ids, embeddings, index_type="hnsw", hnsw_m=32)       # approximate  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from index import SearchResults
from index.results import empty_results, write_ranked
from index.searcher import SearcherDefaults
from index.storage import MANIFEST, atomic_dir, directory_size

FORMAT = "lsr-faiss"
FORMAT_VERSION = 1
INDEX_FILE = "faiss.index"
DOC_IDS = "doc_ids.json"
INDEX_TYPES = ("flat", "hnsw")


class FaissIndex(SearcherDefaults):
    """Document embeddings in a faiss index, searched by inner product.

    Build with :meth:`build`, open with :meth:`load`.
    """

    kind = "faiss"

    def __init__(self, index, doc_ids: list[str], manifest: dict, path: Path | None = None):
        self.index = index
        self.doc_ids = doc_ids
        self.manifest = manifest
        self.path = path
        self.dim = int(manifest["dim"])

    @property
    def n_docs(self) -> int:
        return len(self.doc_ids)

    @classmethod
    def build(cls, doc_ids: Sequence[str], embeddings: np.ndarray, *, index_type: str = "flat", hnsw_m: int = 32,
              ef_construction: int = 200, ef_search: int = 128, encoder: dict | None = None) -> FaissIndex:
        """Index ``embeddings`` (float32 ``[n_docs, dim]``).

        Args:
            index_type: ``"flat"`` (exact inner product) or ``"hnsw"`` (graph search; ``hnsw_m`` links per
                node, ``ef_construction`` and ``ef_search`` candidate lists at build and search time).
            encoder: the description of the encoder that made the embeddings, recorded in the manifest.
        """
        import faiss

        if index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be one of {INDEX_TYPES}, got {index_type!r}")
        x = np.ascontiguousarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"embeddings must be a non-empty [n_docs, dim] matrix, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("embeddings hold NaN or infinite values")
        ids = [str(d) for d in doc_ids]
        if len(ids) != x.shape[0]:
            raise ValueError(f"{len(ids)} document ids for {x.shape[0]} embeddings")
        t0 = time.perf_counter()
        if index_type == "flat":
            index = faiss.IndexFlatIP(x.shape[1])
        else:
            index = faiss.IndexHNSWFlat(x.shape[1], int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(ef_construction)
            index.hnsw.efSearch = int(ef_search)
        index.add(x)
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "index_type": index_type, "dim": x.shape[1],
                    "n_docs": len(ids), "hnsw_m": hnsw_m if index_type == "hnsw" else None,
                    "ef_search": ef_search if index_type == "hnsw" else None, "encoder": encoder,
                    "build_seconds": round(time.perf_counter() - t0, 3)}
        return cls(index, ids, manifest)

    def search(self, queries, k: int = 10, options=None) -> SearchResults:
        """Top-k documents of each query embedding (float32 ``[n_queries, dim]``), ties by document index."""
        if options is not None and options.searcher != self.kind:
            raise ValueError(f"options for the {options.engine!r} engine given to the faiss searcher")
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"query embeddings must be [n, {self.dim}], got shape {q.shape}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = int(min(k, self.n_docs))
        out = empty_results(q.shape[0], k)
        if q.shape[0] == 0:
            return out
        extra = min(self.n_docs, k + 16)  # a few more, so that equal scores at the cut order by document index
        scores, idx = self.index.search(q, extra)
        for i in range(q.shape[0]):
            found = idx[i] >= 0
            write_ranked(out, i, idx[i][found], scores[i][found])
        return out

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        import faiss

        path = Path(path)
        with atomic_dir(path, overwrite=overwrite, kind="faiss") as tmp:
            faiss.write_index(self.index, str(tmp / INDEX_FILE))
            (tmp / DOC_IDS).write_text(json.dumps(self.doc_ids), encoding="utf-8")
            (tmp / MANIFEST).write_text(json.dumps(self.manifest, indent=2) + "\n", encoding="utf-8")
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> FaissIndex:
        import faiss

        path = Path(path)
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
            ids = json.loads((path / DOC_IDS).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a readable lsr faiss searcher ({e}); rebuild it") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(f"{path / MANIFEST} is not an lsr faiss manifest")
        try:
            index = faiss.read_index(str(path / INDEX_FILE))
        except RuntimeError as e:
            raise ValueError(f"{path / INDEX_FILE} cannot be read by faiss ({e}); rebuild it") from None
        if index.ntotal != len(ids) or index.d != manifest.get("dim"):
            raise ValueError(f"{path}: faiss holds {index.ntotal} vectors of dimension {index.d}, the manifest "
                             f"{len(ids)} of {manifest.get('dim')}; rebuild it")
        return cls(index, ids, manifest, path=path)

    def size_bytes(self) -> int:
        return directory_size(self.path) if self.path is not None else int(self.index.ntotal) * self.dim * 4

    def describe(self) -> dict:
        m = self.manifest
        return {"kind": self.kind, "index_type": m["index_type"], "n_docs": self.n_docs, "dim": self.dim,
                "hnsw_m": m.get("hnsw_m"), "ef_search": m.get("ef_search"), "encoder": m.get("encoder"),
                "bytes": self.size_bytes()}
