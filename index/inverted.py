"""The inverted index: posting lists per term, saved as ``.npy`` arrays plus ``manifest.json``.

Layout (format version 1), all arrays one contiguous block each:

==================  ==========  ===========================================================
``term_offsets``    int64       ``dim + 1`` offsets; term ``t`` owns postings
                                ``term_offsets[t]:term_offsets[t+1]``
``posting_docs``    int32       document indices, ascending within each term
``posting_impacts`` float32     the document's weight for that term (> 0)
``doc_nnz``         int32       non-zeros per document (vector length statistics)
``docid_bytes``     uint8       external document ids, UTF-8, concatenated
``docid_offsets``   int64       ``n_docs + 1`` offsets into ``docid_bytes``
==================  ==========  ===========================================================

``manifest.json`` records the format and library versions, the dimension, document and posting
counts, the vocabulary (id and size) the vectors were encoded with, the encoder that produced
them, the build time, and for each array its dtype, shape, byte size and sha256.

Search here runs the exact scipy product over the posting lists (the same arithmetic as
:func:`index.brute_force_search`); faster engines plug into the same arrays.

Example:
    >>> from index import InvertedIndex
    >>> idx = InvertedIndex.build(docs, doc_ids=ids)             # doctest: +SKIP
    >>> res = idx.search(queries, k=10)                           # doctest: +SKIP
    >>> idx.save("idx/")                                          # doctest: +SKIP
    >>> idx = InvertedIndex.load("idx/")                          # memory-mapped  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from ._version import library_version
from .docids import DocIds, as_doc_ids
from .errors import IndexFormatError, VocabularyMismatchError
from .oracle import _check_k, score_topk
from .results import SearchResults
from .sparse import as_csr
from .storage import (
    MANIFEST,
    atomic_dir,
    directory_size,
    load_array,
    read_manifest,
    write_array,
    write_json,
)

logger = logging.getLogger(__name__)

FORMAT = "lsr-index"
FORMAT_VERSION = 1
ENGINES = ("oracle",)


class Vocabulary(NamedTuple):
    """Which term-id space vectors live in: an identifier and its size (the dimension)."""

    id: str
    size: int

    def to_json(self) -> dict:
        return {"id": self.id, "size": int(self.size)}

    @classmethod
    def from_json(cls, obj) -> Vocabulary | None:
        if obj is None:
            return None
        return cls(str(obj["id"]), int(obj["size"]))


class InvertedIndex:
    """Posting lists of a document collection, searchable and storable.

    Build with :meth:`build`, load with :meth:`load`; do not call the constructor directly.

    Attributes:
        dim: vocabulary size (number of term ids).
        n_docs: number of documents.
        doc_ids: external ids (:class:`index.docids.DocIds`, a sequence of ``str``).
        vocabulary: the :class:`Vocabulary` the documents were encoded with, if recorded.
        encoder: a JSON-able description of the encoder that produced the vectors, if recorded.
    """

    def __init__(self, arrays: dict[str, np.ndarray], manifest: dict, path: Path | None = None):
        self._arrays = arrays
        self.manifest = manifest
        self.path = path
        self.dim = int(manifest["dim"])
        self.n_docs = int(manifest["n_docs"])
        self.doc_ids = DocIds(arrays["docid_bytes"], arrays["docid_offsets"])
        self.vocabulary = Vocabulary.from_json(manifest.get("vocabulary"))
        self.encoder = manifest.get("encoder")
        self._postings: sp.csr_array | None = None

    # ------------------------------------------------------------------ build
    @classmethod
    def build(
        cls,
        docs,
        doc_ids: Sequence[str] | None = None,
        *,
        vocabulary: Vocabulary | tuple | None = None,
        encoder: dict | None = None,
    ) -> InvertedIndex:
        """Build an index from document vectors.

        Args:
            docs: ``n_docs x dim`` document vectors (any input :func:`index.sparse.as_csr` accepts).
            doc_ids: external id of each document (unique strings); default ``"0" .. "n-1"``.
            vocabulary: ``Vocabulary(id, size)`` of the encoder; recorded so that queries from
                another vocabulary are refused. ``size`` must equal the dimension.
            encoder: a JSON-able description of the encoder, stored in the manifest.
        """
        start = time.perf_counter()
        d = as_csr(docs, name="documents")
        n_docs, dim = d.shape
        if vocabulary is not None:
            vocabulary = Vocabulary(*vocabulary)
            if vocabulary.size != dim:
                raise ValueError(
                    f"vocabulary {vocabulary.id!r} has {vocabulary.size} terms but the documents "
                    f"have dimension {dim}"
                )
        if doc_ids is not None and len(doc_ids) != n_docs:
            raise ValueError(f"{len(doc_ids)} document ids for {n_docs} documents")
        ids = as_doc_ids(doc_ids, n_docs)
        dup = ids.first_duplicate() if doc_ids is not None else None
        if dup is not None:
            raise ValueError(f"document id {dup!r} occurs more than once; ids must be unique")
        if d.nnz > np.iinfo(np.int64).max or n_docs > np.iinfo(np.int32).max:
            raise ValueError(f"{n_docs} documents do not fit int32 document indices")

        postings = sp.csr_array(d.T)  # dim x n_docs, doc indices ascending within each term
        postings.sort_indices()
        arrays = {
            "term_offsets": postings.indptr.astype(np.int64, copy=False),
            "posting_docs": postings.indices.astype(np.int32, copy=False),
            "posting_impacts": postings.data.astype(np.float32, copy=False),
            "doc_nnz": np.diff(d.indptr).astype(np.int32),
            "docid_bytes": ids.data,
            "docid_offsets": ids.offsets,
        }
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "library_version": library_version(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "dim": int(dim),
            "n_docs": int(n_docs),
            "nnz": int(d.nnz),
            "vocabulary": vocabulary.to_json() if vocabulary is not None else None,
            "encoder": encoder,
            "quantization": None,
            "build_seconds": round(time.perf_counter() - start, 6),
        }
        logger.info("built an index of %d documents, %d postings in %.2fs",
                    n_docs, d.nnz, manifest["build_seconds"])
        return cls(arrays, manifest)

    # ------------------------------------------------------------- accessors
    @property
    def nnz(self) -> int:
        return int(self.manifest["nnz"])

    @property
    def build_seconds(self) -> float:
        return float(self.manifest.get("build_seconds", float("nan")))

    def doc_frequencies(self) -> np.ndarray:
        """Document frequency of every term (int64 ``[dim]``): the posting-list lengths."""
        return np.diff(self._arrays["term_offsets"])

    def doc_lengths(self) -> np.ndarray:
        """Non-zeros of every document vector (int32 ``[n_docs]``)."""
        return self._arrays["doc_nnz"]

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """Document indices and impacts of one term's posting list (views, no copy)."""
        if not 0 <= term < self.dim:
            raise IndexError(f"term id {term} outside [0, {self.dim})")
        offs = self._arrays["term_offsets"]
        lo, hi = offs[term], offs[term + 1]
        return self._arrays["posting_docs"][lo:hi], self._arrays["posting_impacts"][lo:hi]

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """The raw arrays of the format (read-only views when memory-mapped)."""
        return dict(self._arrays)

    def size_bytes(self) -> int:
        """Bytes on disk if loaded or saved, otherwise the bytes the arrays take in memory."""
        if self.path is not None:
            return directory_size(self.path)
        return int(sum(a.nbytes for a in self._arrays.values()))

    def __repr__(self) -> str:
        voc = self.vocabulary.id if self.vocabulary else None
        return f"InvertedIndex(n_docs={self.n_docs}, dim={self.dim}, nnz={self.nnz}, vocabulary={voc!r})"

    # ---------------------------------------------------------------- search
    def _posting_matrix(self) -> sp.csr_array:
        if self._postings is None:
            a = self._arrays
            self._postings = sp.csr_array(
                (a["posting_impacts"], a["posting_docs"], a["term_offsets"]),
                shape=(self.dim, self.n_docs),
            )
        return self._postings

    def check_queries(self, queries, vocabulary: Vocabulary | tuple | None = None) -> sp.csr_array:
        """Validate queries against this index (dimension and, if given, vocabulary)."""
        if vocabulary is not None and self.vocabulary is not None:
            vocabulary = Vocabulary(*vocabulary)
            if vocabulary != self.vocabulary:
                raise VocabularyMismatchError(
                    f"queries use vocabulary {vocabulary.id!r} ({vocabulary.size} terms) but the index "
                    f"was built with {self.vocabulary.id!r} ({self.vocabulary.size} terms); encode the "
                    "queries with the encoder saved with the index"
                )
        return as_csr(queries, dim=self.dim, name="queries")

    def search(self, queries, k: int = 10, *, vocabulary: Vocabulary | tuple | None = None,
               engine: str = "oracle") -> SearchResults:
        """Exact top-k documents for a batch of queries.

        Args:
            queries: ``n_queries x dim`` query vectors (any input :func:`index.sparse.as_csr` accepts).
            k: results per query; slots past the last matching document hold ``-1`` / ``-inf``.
            vocabulary: the queries' vocabulary; refused if it differs from the index's.
            engine: ``"oracle"``, the exact scipy product over the posting lists.

        Returns:
            :class:`SearchResults`, ties broken by the smaller document index.
        """
        k = _check_k(k)
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        q = self.check_queries(queries, vocabulary)
        return score_topk(q, self._posting_matrix(), k)

    # ------------------------------------------------------------ save/load
    def write_into(self, directory: Path) -> None:
        """Write the arrays and the manifest into an existing empty directory (no atomicity)."""
        directory = Path(directory)
        entries = {name: write_array(directory, name, arr) for name, arr in self._arrays.items()}
        manifest = dict(self.manifest)
        manifest["arrays"] = entries
        write_json(directory / MANIFEST, manifest)

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Save to directory ``path`` atomically (temporary directory, then rename)."""
        path = Path(path)
        with atomic_dir(path, overwrite=overwrite) as tmp:
            self.write_into(tmp)
        self.path = path
        logger.info("saved index to %s (%.1f MB)", path, directory_size(path) / 1e6)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, mmap: bool = True, verify: bool = False) -> InvertedIndex:
        """Load an index saved by :meth:`save`.

        Args:
            path: the index directory.
            mmap: memory-map the arrays (default) instead of reading them into memory.
            verify: also check every array's sha256 and the posting-list invariants (reads all
                bytes once); without it, sizes, dtypes, shapes and offset end points are checked.

        Raises:
            IndexFormatError: not an lsr index, corrupt manifest, missing or truncated array,
                checksum or invariant failure.
        """
        path = Path(path)
        manifest = read_manifest(path, FORMAT, FORMAT_VERSION)
        try:
            entries = manifest["arrays"]
            dim, n_docs, nnz = int(manifest["dim"]), int(manifest["n_docs"]), int(manifest["nnz"])
        except (KeyError, TypeError, ValueError) as e:
            raise IndexFormatError(f"{path / MANIFEST} lacks a required field ({e}); rebuild the index") from None
        required = ("term_offsets", "posting_docs", "posting_impacts", "doc_nnz", "docid_bytes", "docid_offsets")
        missing = [r for r in required if r not in entries]
        if missing:
            raise IndexFormatError(f"{path / MANIFEST} lists no array {missing[0]!r}; rebuild the index")
        arrays = {name: load_array(path, entries[name], mmap, verify) for name in required}
        _check_structure(path, arrays, dim, n_docs, nnz, full=verify)
        return cls(arrays, manifest, path=path)


def _check_structure(path: Path, a: dict, dim: int, n_docs: int, nnz: int, full: bool) -> None:
    def fail(msg: str):
        raise IndexFormatError(f"{path}: {msg}; the index is corrupt, rebuild it")

    offs = a["term_offsets"]
    if offs.shape != (dim + 1,) or offs[0] != 0 or offs[-1] != nnz:
        fail("term_offsets do not match the manifest's dimension and posting count")
    if a["posting_docs"].shape != (nnz,) or a["posting_impacts"].shape != (nnz,):
        fail("posting arrays do not hold the manifest's posting count")
    if a["doc_nnz"].shape != (n_docs,) or a["docid_offsets"].shape != (n_docs + 1,):
        fail("document arrays do not hold the manifest's document count")
    if a["docid_offsets"][-1] != a["docid_bytes"].shape[0]:
        fail("docid_offsets do not end at the size of docid_bytes")
    if full:
        if np.any(np.diff(offs) < 0):
            fail("term_offsets decrease")
        docs = a["posting_docs"]
        if nnz and (docs.min() < 0 or docs.max() >= n_docs):
            fail("a posting refers to a document outside the index")
        imp = a["posting_impacts"]
        if nnz and not (np.isfinite(imp).all() and (imp > 0).all()):
            fail("an impact is not finite and positive")
        if int(a["doc_nnz"].sum()) != nnz:
            fail("document lengths do not add up to the posting count")
