"""The inverted index: posting lists per term with block-max metadata, on disk as ``.npy`` + manifest.

Layout (format version 2), every array one contiguous block:

===================  ================  ==========================================================
``term_offsets``     int64 [dim+1]     term ``t`` owns postings ``term_offsets[t]:term_offsets[t+1]``
``posting_docs``     int32 [nnz]       document indices, ascending within each term
``posting_impacts``  float32 | uint8   the document's weight for the term (> 0); integer codes
                     | uint16 [nnz]    are read as ``float32(code) * scale`` (manifest)
``term_max``         float32 [dim]     largest impact of each term
``bm_offsets``       int64 [dim+1]     term ``t`` owns block entries ``bm_offsets[t]:bm_offsets[t+1]``
``bm_blocks``        int32 [nbm]       the blocks (``doc // block_size``) the term occurs in, ascending
``bm_max``           float32 [nbm]     the term's largest impact in that block
``bm_start``         int32 [nbm]       where the block's postings start, relative to the term's first
``doc_nnz``          int32 [n_docs]    non-zeros per document
``docid_bytes``      uint8             external document ids, UTF-8, concatenated
``docid_offsets``    int64 [n_docs+1]  offsets into ``docid_bytes``
===================  ================  ==========================================================

``manifest.json`` records the format and library versions, dimension, document and posting counts,
block size, quantization (dtype and scale), the vocabulary (id and size), the encoder, the build
time, and each array's dtype, shape, byte size and sha256.

Search engines (all return the same :class:`~index.SearchResults`):

* ``"auto"`` (default, exact): per query, exhaustive term-at-a-time when its posting lists are short
  or block-max bounds would not prune, block-max pruning otherwise;
* ``"taat"``: exhaustive term-at-a-time accumulation (exact);
* ``"blockmax"``: block-max pruning (exact unless an :class:`Approx` setting is given);
* ``"oracle"``: the scipy product, the correctness reference.

Example:
    >>> from index import InvertedIndex, Approx
    >>> idx = InvertedIndex.build(docs, doc_ids=ids, quantization="uint8")     # doctest: +SKIP
    >>> res = idx.search(queries, k=10)                                         # doctest: +SKIP
    >>> fast = idx.search(queries, k=10, approx=Approx(max_blocks=64))          # doctest: +SKIP
    >>> idx.save("idx/"); idx = InvertedIndex.load("idx/")                      # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from . import kernels
from ._version import library_version
from .docids import DocIds, as_doc_ids
from .errors import IndexFormatError, VocabularyMismatchError
from .fields import Fields
from .oracle import _check_k, score_topk
from .quantize import check_quantization, dequantize, quantize
from .results import SearchResults, empty_results
from .scratch import ScratchPool
from .searcher import LSR_ENGINES
from .sparse import as_csr
from .storage import (
    MANIFEST,
    atomic_dir,
    describe_array,
    directory_size,
    load_array,
    read_manifest,
    write_array,
    write_json,
)
from .stored import StoredDocs
from .threads import numba_threads  # noqa: F401 - re-exported: index.inverted.numba_threads

logger = logging.getLogger(__name__)

FORMAT = "lsr-index"
FORMAT_VERSION = 2
DEFAULT_BLOCK_SIZE = 64
ENGINES = LSR_ENGINES  # lsr's own engine variants; other engines: index.searcher.ENGINES
#: The default build keeps block-max metadata only where blocks are coherent enough to pay for
#: their space: block entries at most AUTO_MAX_ENTRY_RATIO of the postings (12 bytes per entry, so
#: an index stays within ~1.4x the raw float32 CSR). Random synthetic documents reach ~0.67 and drop
#: it; real collections (0.24-0.41 measured) keep it, document reordering lowers it further.
AUTO_MAX_ENTRY_RATIO = 0.5
#: Per query, "auto" runs block-max pruning when the query has at most AUTO_MAX_TERMS terms and at
#: least AUTO_MIN_POSTINGS postings, exhaustive TAAT otherwise. Block bounds summed over many terms
#: rarely fall below the k-th score, and short lists are cheaper to read than to plan. Fitted on
#: per-query timings of both engines (SciFact splade-tiny SPLADE and IDF queries, MIRACL-yo BM25,
#: 100k synthetic SPLADE-like and inference-free queries, each with and without BP reordering) and
#: checked by benchmarks/auto_rule.py (results/engine/auto-rule.json, SciFact and NFCorpus BM25 held
#: out; re-measured with the faster TAAT and a 1M topical set, not refitted: README "How auto picks").
AUTO_MAX_TERMS = 10
AUTO_MIN_POSTINGS = 10_000
#: blocks scored best-first to set the threshold before the remaining blocks are filtered
DEFAULT_SEED_BLOCKS = 16
#: exact TAAT scores dense queries over larger collections this many documents at a time (see kernels.SLICE_DOCS)
TAAT_SLICE_DOCS = kernels.SLICE_DOCS
#: forward entries filled per pass when the forward index is built (their scattered writes stay in cache)
FORWARD_WINDOW = 1 << 21

REQUIRED_ARRAYS = ("term_offsets", "posting_docs", "posting_impacts", "term_max", "bm_offsets", "bm_blocks",
                   "bm_max", "bm_start", "doc_nnz", "docid_bytes", "docid_offsets")
OPTIONAL_ARRAYS = ("doc_order", "stored_bytes", "stored_offsets")  # reordered documents; stored texts


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


class Approx(NamedTuple):
    """Knobs of approximate search. The default values mean "exact".

    Two approximate engines, chosen by the knobs given:

    * **candidates, then exact re-scoring** (``query_terms``, ``max_postings``, ``candidates``;
      needs nothing beyond the posting lists): term-at-a-time over the ``query_terms`` heaviest query
      terms, reading only each term's ``max_postings`` highest impacts (static pruning, as Seismic's
      posting-list cut of Bruch et al., SIGIR 2024), then the ``candidates`` best documents are scored
      exactly against the full lists and the best ``k`` returned;
    * **block-max** (``max_blocks`` or ``alpha``; needs block-max metadata): score only the
      ``max_blocks`` blocks with the highest upper bounds, skip blocks whose bound times ``alpha``
      is below the k-th score (BMP's approximation), over the ``query_terms`` heaviest terms.

    Attributes:
        query_terms: keep only this many heaviest query terms (0: all).
        candidates: documents re-scored exactly after pruning (0: 10 x k).
        max_blocks: score only this many blocks, those with the highest upper bounds (0: no budget).
        alpha: block-max pruning factor in (0, 1]; 1.0 is exact.
        max_postings: candidates come from each term's this many highest-impact postings (0: all).
            The pruned lists are built once per value on first use and kept in memory.

    Example: ``idx.search(q, k=10, approx=Approx(query_terms=6, candidates=100))``,
    ``Approx(max_postings=5000, candidates=200)``; the cheapest setting for a target recall comes
    from :func:`index.tune_approximate`.
    """

    query_terms: int = 0
    candidates: int = 0
    max_blocks: int = 0
    alpha: float = 1.0
    max_postings: int = 0

    def validate(self) -> Approx:
        if min(int(self.max_blocks), int(self.query_terms), int(self.candidates), int(self.max_postings)) < 0:
            raise ValueError(f"query_terms, candidates, max_blocks and max_postings must be >= 0, got {self}")
        if not 0 < float(self.alpha) <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha}")
        ap = Approx(int(self.query_terms), int(self.candidates), int(self.max_blocks), float(self.alpha),
                    int(self.max_postings))
        if ap.max_postings and ap.uses_blocks:
            raise ValueError("max_postings prunes the candidate lists of the re-scoring engine; it does not combine "
                             "with max_blocks or alpha (the block-max engine): set one or the other")
        return ap

    @property
    def exact(self) -> bool:
        return self.max_blocks == 0 and self.query_terms == 0 and self.alpha == 1.0 and self.max_postings == 0

    @property
    def uses_blocks(self) -> bool:
        return self.max_blocks > 0 or self.alpha < 1.0


class SearchStats(NamedTuple):
    """Work done per query: postings scored, blocks scored (for ``"pruned"``: candidates re-scored
    exactly), and which engine ran (``engines[code]``)."""

    postings: np.ndarray
    blocks: np.ndarray
    engine: np.ndarray
    engines: tuple = ("taat", "blockmax", "oracle", "pruned")


_EXACT = Approx()


def check_vocabulary(queries: Vocabulary | tuple | None, index: Vocabulary | None) -> None:
    """Refuse queries encoded in another vocabulary than the index's (either unknown: accepted)."""
    if queries is None or index is None:
        return
    queries = Vocabulary(*queries)
    if queries != index:
        raise VocabularyMismatchError(
            f"queries use vocabulary {queries.id!r} ({queries.size} terms) but the index was built with "
            f"{index.id!r} ({index.size} terms); encode the queries with the encoder saved with the index"
        )


class DetailedSearch(NamedTuple):
    """Results plus the work statistics of :meth:`InvertedIndex.search_detailed`."""

    results: SearchResults
    stats: SearchStats


class BlockMetadata(NamedTuple):
    """Per-term block entries (offsets, block ids, maxima, relative starts; empty when not kept), per-term
    maxima, how many block entries the postings make, and whether they were kept."""

    offsets: np.ndarray
    blocks: np.ndarray
    maxima: np.ndarray
    starts: np.ndarray
    term_max: np.ndarray
    n_entries: int
    kept: bool


def block_metadata(toff: np.ndarray, pdocs: np.ndarray, pimp: np.ndarray, scale: np.float32, block_size: int,
                   keep: bool | str = True, allocate=None) -> BlockMetadata:
    """The :class:`BlockMetadata` of term-major postings.

    ``keep``: True, False, or ``"auto"`` (kept when the entries are at most AUTO_MAX_ENTRY_RATIO of the
    postings); decided from a counting pass before any entry is allocated, so dropped metadata never takes
    memory. ``allocate(name, n, dtype)`` makes each entry array (default: in memory; :class:`IndexBuilder`
    maps them to files of the index being written, so an index larger than memory gets its metadata too).
    """
    dim = toff.shape[0] - 1
    counts = np.zeros(dim, dtype=np.int64)
    kernels.count_term_blocks(toff, pdocs, np.int64(block_size), counts)
    bm_off = np.zeros(dim + 1, dtype=np.int64)
    np.cumsum(counts, out=bm_off[1:])
    nbm = int(bm_off[-1])
    term_max = np.zeros(dim, dtype=np.float32)
    kernels.term_maxima(toff, pimp, scale, term_max)
    if not (keep is True or (keep == "auto" and nbm <= AUTO_MAX_ENTRY_RATIO * max(int(pdocs.shape[0]), 1))):
        return BlockMetadata(np.zeros(dim + 1, dtype=np.int64), np.zeros(0, dtype=np.int32),
                             np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int32), term_max, nbm, False)
    allocate = allocate or (lambda name, n, dtype: np.empty(n, dtype=dtype))
    bm_blocks = allocate("bm_blocks", nbm, np.int32)
    bm_max = allocate("bm_max", nbm, np.float32)
    bm_start = allocate("bm_start", nbm, np.int32)
    kernels.fill_term_blocks(toff, pdocs, pimp, scale, np.int64(block_size), bm_off, bm_blocks, bm_max, bm_start)
    return BlockMetadata(bm_off, bm_blocks, bm_max, bm_start, term_max, nbm, True)


class InvertedIndex:
    """Posting lists of a document collection, searchable and storable.

    Build with :meth:`build` (in memory) or :class:`index.IndexBuilder` (streamed shards), load
    with :meth:`load`; do not call the constructor directly.

    Attributes:
        dim: vocabulary size (number of term ids).
        n_docs: number of documents.
        doc_ids: external ids (:class:`index.docids.DocIds`, a sequence of ``str``).
        vocabulary: the :class:`Vocabulary` the documents were encoded with, if recorded.
        encoder: a JSON-able description of the encoder that produced the vectors, if recorded.
        block_size: documents per block of the block-max metadata.
        quantization: ``None``, ``"uint8"`` or ``"uint16"``; ``scale`` the code-to-impact factor.
    """

    def __init__(self, arrays: dict[str, np.ndarray], manifest: dict, path: Path | None = None):
        self._arrays = arrays
        self._static_cache: dict[int, tuple] = {}  # static_pruned(): copies, at most the postings in all
        self._forward: tuple | None = None  # forward_index(), built on first use
        self._scratch = ScratchPool()  # per-thread score accumulators, reused across searches
        self.manifest = manifest
        self.path = path
        self.dim = int(manifest["dim"])
        self.n_docs = int(manifest["n_docs"])
        self.block_size = int(manifest["block_size"])
        q = manifest.get("quantization") or {}
        self.quantization = q.get("dtype")
        self.scale = np.float32(q.get("scale", 1.0))
        self.doc_ids = DocIds(arrays["docid_bytes"], arrays["docid_offsets"])
        self.vocabulary = Vocabulary.from_json(manifest.get("vocabulary"))
        self.encoder = manifest.get("encoder")
        self.fields = Fields.from_arrays(self.n_docs, manifest.get("fields") or [], arrays, str(path or "index"))
        #: each document's stored title and text (:mod:`index.stored`), or None when the index stores none
        self.stored = StoredDocs.from_arrays(arrays, self.n_docs, str(path or "index"))
        self._postings: sp.csr_array | None = None
        self._block_allow: tuple | None = None  # (mask, its block mask): the last filter's, reused
        self._k = {name: np.asarray(a) for name, a in arrays.items()}  # plain ndarray views for kernels

    # ------------------------------------------------------------------ build
    @classmethod
    def build(
        cls,
        docs,
        doc_ids: Sequence[str] | None = None,
        *,
        vocabulary: Vocabulary | tuple | None = None,
        encoder: dict | None = None,
        quantization: str | None = None,
        block_size: int = DEFAULT_BLOCK_SIZE,
        block_max: bool | str = "auto",
        reorder: str | None = None,
        fields: Sequence | Fields | None = None,
        stored: Sequence | StoredDocs | None = None,
    ) -> InvertedIndex:
        """Build an index from document vectors held in memory.

        Args:
            docs: ``n_docs x dim`` document vectors (any input :func:`index.sparse.as_csr` accepts).
            doc_ids: external id of each document (unique strings); default ``"0" .. "n-1"``.
            vocabulary: ``Vocabulary(id, size)`` of the encoder; recorded so that queries from
                another vocabulary are refused. ``size`` must equal the dimension.
            encoder: a JSON-able description of the encoder, stored in the manifest.
            quantization: ``None`` (float32 impacts), ``"uint8"`` or ``"uint16"`` (one global scale).
            block_size: documents per block for block-max pruning (default 64).
            block_max: store block-max metadata: ``True``, ``False``, or ``"auto"`` (default): only
                when the blocks are coherent (block entries at most AUTO_MAX_ENTRY_RATIO of the
                postings, e.g. after document reordering). Without it, the exhaustive engine serves
                every query and the index is ~40% smaller; block-max search and its approximate knobs
                (max_blocks, alpha) need it.
            reorder: ``None`` (keep the given order) or ``"bp"``: recursive graph bisection
                (:func:`index.reorder.bp_order`) gives documents that share terms neighbouring
                indices, so blocks become coherent. Internal document indices then follow the new
                order: ``doc_ids`` (default ids: the original row numbers) and :attr:`doc_order`
                map them back; ties among equal scores break by the new order.
            fields: metadata per document for filtered search (:mod:`index.fields`): one mapping (or
                ``None``) per document, or a :class:`~index.fields.Fields`; stored as memory-mapped columns.
            stored: what to keep of each document for display (:mod:`index.stored`): one object (e.g.
                ``{"title": ..., "text": ...}``) or ``None`` per document; the kernels never read it.

        For corpora that do not fit in memory, use :class:`index.IndexBuilder`.
        """
        start = time.perf_counter()
        d = as_csr(docs, name="documents")
        n_docs, dim = d.shape
        if doc_ids is not None and len(doc_ids) != n_docs:
            raise ValueError(f"{len(doc_ids)} document ids for {n_docs} documents")
        if fields is not None and not isinstance(fields, Fields):
            if len(fields) != n_docs:
                raise ValueError(f"{len(fields)} field records for {n_docs} documents")
            fields = Fields.from_records(fields, doc_ids=doc_ids)
        if fields is not None and fields.n_docs != n_docs:
            raise ValueError(f"fields of {fields.n_docs} documents for {n_docs} documents")
        if stored is not None and not isinstance(stored, StoredDocs):
            stored = StoredDocs.from_records(stored)
        if stored is not None and len(stored) != n_docs:
            raise ValueError(f"{len(stored)} stored documents for {n_docs} documents")
        order, reorder_info = None, None
        if reorder is not None:
            if reorder != "bp":
                raise ValueError(f"reorder must be None or 'bp', got {reorder!r}")
            from .reorder import bp_order

            r = bp_order(d)
            order = r.order
            d = as_csr(d[order], name="documents")
            ids = list(doc_ids) if doc_ids is not None else [str(i) for i in range(n_docs)]
            doc_ids = [ids[i] for i in order]
            fields = fields.take(order) if fields is not None else None
            stored = stored.take(order) if stored is not None else None
            reorder_info = {"method": "bp", "seconds": round(r.seconds, 3), "depth": r.depth,
                            "log2_gap_before": round(r.cost_before, 4), "log2_gap_after": round(r.cost_after, 4)}
        postings = sp.csr_array(d.T)  # dim x n_docs, doc indices ascending within each term
        postings.sort_indices()
        return cls.from_postings(
            term_offsets=postings.indptr.astype(np.int64, copy=False),
            posting_docs=postings.indices.astype(np.int32, copy=False),
            posting_impacts=postings.data.astype(np.float32, copy=False),
            doc_nnz=np.diff(d.indptr).astype(np.int32),
            doc_ids=doc_ids, vocabulary=vocabulary, encoder=encoder, quantization=quantization,
            block_size=block_size, block_max=block_max, started=start, doc_order=order, reorder_info=reorder_info,
            fields=fields, stored=stored,
        )

    @classmethod
    def from_postings(cls, *, term_offsets, posting_docs, posting_impacts, doc_nnz, doc_ids, vocabulary, encoder,
                      quantization, block_size, block_max: bool | str = "auto", started=None,
                      scale=None, doc_order=None, reorder_info=None, fields: Fields | None = None,
                      stored: StoredDocs | None = None, allocate=None) -> InvertedIndex:
        """Assemble an index from term-major postings (float32 impacts, or codes with ``scale``).

        ``doc_order`` (int64 ``[n_docs]``): the original row of each document when reordered.
        ``fields``: the documents' metadata columns (in the postings' document order).
        ``allocate``: where the block-max arrays are made (see :func:`block_metadata`).
        """
        started = time.perf_counter() if started is None else started
        dim = term_offsets.shape[0] - 1
        n_docs = doc_nnz.shape[0]
        quantization = check_quantization(quantization)
        block_size = int(block_size)
        if not 1 <= block_size <= 1 << 20:
            raise ValueError(f"block_size must be in [1, 2**20], got {block_size}")
        if vocabulary is not None:
            vocabulary = Vocabulary(*vocabulary)
            if vocabulary.size != dim:
                raise ValueError(
                    f"vocabulary {vocabulary.id!r} has {vocabulary.size} terms but the documents "
                    f"have dimension {dim}"
                )
        if n_docs > np.iinfo(np.int32).max - block_size:
            raise ValueError(f"{n_docs} documents do not fit int32 document indices")
        ids = as_doc_ids(doc_ids, n_docs)
        dup = ids.first_duplicate() if doc_ids is not None else None
        if dup is not None:
            raise ValueError(f"document id {dup!r} occurs more than once; ids must be unique")
        if posting_impacts.dtype == np.float32 and quantization is not None:
            posting_impacts, scale = quantize(posting_impacts, quantization)
        elif scale is None:
            scale = np.float32(1.0)
        scale = np.float32(scale)
        toff = np.asarray(term_offsets)
        if int(np.diff(toff).max(initial=0)) > np.iinfo(np.int32).max:
            raise ValueError("a posting list longer than 2**31 - 1 does not fit this format")
        if block_max not in (True, False, "auto"):
            raise ValueError(f"block_max must be True, False or 'auto', got {block_max!r}")
        bm_off, bm_blocks, bm_max, bm_start, term_max, n_entries, keep_blocks = block_metadata(
            toff, np.asarray(posting_docs), np.asarray(posting_impacts), scale, block_size, block_max, allocate)
        nnz = int(posting_docs.shape[0])
        block_entry_ratio = n_entries / max(nnz, 1)
        arrays = {
            "term_offsets": term_offsets,
            "posting_docs": posting_docs,
            "posting_impacts": posting_impacts,
            "term_max": term_max,
            "bm_offsets": bm_off,
            "bm_blocks": bm_blocks,
            "bm_max": bm_max,
            "bm_start": bm_start,
            "doc_nnz": doc_nnz,
            "docid_bytes": ids.data,
            "docid_offsets": ids.offsets,
        }
        if doc_order is not None:
            arrays["doc_order"] = np.asarray(doc_order, dtype=np.int64)
        field_entries = []
        if fields:
            if fields.n_docs != n_docs:
                raise ValueError(f"fields of {fields.n_docs} documents for {n_docs} documents")
            field_arrays, field_entries = fields.to_arrays()
            arrays.update(field_arrays)
        if stored is not None:
            arrays.update(stored.to_arrays())
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "library_version": library_version(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "dim": int(dim),
            "n_docs": int(n_docs),
            "nnz": int(posting_docs.shape[0]),
            "block_size": block_size,
            "block_max": bool(keep_blocks),
            "block_entry_ratio": round(float(block_entry_ratio), 6),
            "n_block_entries": int(bm_blocks.shape[0]),
            "vocabulary": vocabulary.to_json() if vocabulary is not None else None,
            "encoder": encoder,
            "quantization": None if quantization is None else {"dtype": quantization, "scale": float(scale)},
            "build_seconds": round(time.perf_counter() - started, 6),
            "reorder": reorder_info,
            "fields": field_entries,
        }
        logger.info("built an index of %d documents, %d postings, %d block entries in %.2fs",
                    n_docs, manifest["nnz"], manifest["n_block_entries"], manifest["build_seconds"])
        return cls(arrays, manifest)

    # ------------------------------------------------------------- accessors
    @property
    def nnz(self) -> int:
        return int(self.manifest["nnz"])

    @property
    def schema(self) -> dict[str, str]:
        """Metadata field name -> type (``keyword`` / ``numeric``), see :mod:`index.fields`."""
        return self.fields.schema

    @property
    def has_block_max(self) -> bool:
        """Whether the block-max metadata was kept (see ``block_max`` in :meth:`build`)."""
        return bool(self.manifest.get("block_max", True))

    @property
    def doc_order(self) -> np.ndarray | None:
        """For a reordered index, the original row of every document (int64 ``[n_docs]``); else None."""
        return self._arrays.get("doc_order")

    @property
    def build_seconds(self) -> float:
        return float(self.manifest.get("build_seconds", float("nan")))

    def doc_frequencies(self) -> np.ndarray:
        """Document frequency of every term (int64 ``[dim]``): the posting-list lengths."""
        return np.diff(self._k["term_offsets"])

    def doc_lengths(self) -> np.ndarray:
        """Non-zeros of every document vector (int32 ``[n_docs]``)."""
        return self._arrays["doc_nnz"]

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """Document indices and (de-quantized float32) impacts of one term's posting list."""
        if not 0 <= term < self.dim:
            raise IndexError(f"term id {term} outside [0, {self.dim})")
        offs = self._k["term_offsets"]
        lo, hi = offs[term], offs[term + 1]
        return self._k["posting_docs"][lo:hi], self._impacts_float(self._k["posting_impacts"][lo:hi])

    def document_vector(self, doc: int) -> tuple[np.ndarray, np.ndarray]:
        """One document's ``(term ids, weights)``, read from the posting lists of its terms (its row of the
        forward index when that is built; else a search of every posting list, ~1 ms per million postings)."""
        doc = int(doc)
        if not 0 <= doc < self.n_docs:
            raise IndexError(f"document {doc} out of range [0, {self.n_docs})")
        if self._forward is not None:
            fptr, fterms, fimp = self._forward
            lo, hi = fptr[doc], fptr[doc + 1]
            return fterms[lo:hi].astype(np.int64), self._impacts_float(fimp[lo:hi])
        a = self._k
        at = np.flatnonzero(np.asarray(a["posting_docs"]) == doc)  # its postings, in term order
        terms = np.searchsorted(a["term_offsets"], at, side="right") - 1
        return terms.astype(np.int64), self._impacts_float(np.asarray(a["posting_impacts"])[at]).astype(np.float32)

    def term_weights(self, doc: int, terms: np.ndarray) -> np.ndarray:
        """The document's weight of each of ``terms`` (0 where it lacks one): a binary search per posting list."""
        out = np.zeros(len(terms), dtype=np.float32)
        toff, pdocs, pimp = self._k["term_offsets"], self._k["posting_docs"], self._k["posting_impacts"]
        for i, t in enumerate(np.asarray(terms, dtype=np.int64)):
            lo, hi = int(toff[t]), int(toff[t + 1])
            j = lo + int(np.searchsorted(pdocs[lo:hi], doc))
            if j < hi and pdocs[j] == doc:
                out[i] = float(pimp[j]) * float(self.scale)
        return out

    def document_vectors(self) -> sp.csr_array:
        """All document vectors, ``n_docs x dim`` CSR (de-quantized), rebuilt from the postings (for exports)."""
        return as_csr(sp.csr_array(self._posting_matrix().T), name="documents")

    def _impacts_float(self, imp: np.ndarray) -> np.ndarray:
        return imp if imp.dtype == np.float32 else dequantize(imp, self.scale)

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
        return (f"InvertedIndex(n_docs={self.n_docs}, dim={self.dim}, nnz={self.nnz}, "
                f"quantization={self.quantization}, vocabulary={voc!r})")

    # ---------------------------------------------------------------- search
    def _posting_matrix(self) -> sp.csr_array:
        if self._postings is None:
            a = self._k
            self._postings = sp.csr_array(
                (self._impacts_float(a["posting_impacts"]), a["posting_docs"], a["term_offsets"]),
                shape=(self.dim, self.n_docs),
            )
        return self._postings

    def check_queries(self, queries, vocabulary: Vocabulary | tuple | None = None) -> sp.csr_array:
        """Validate queries against this index (dimension and, if given, vocabulary)."""
        check_vocabulary(vocabulary, self.vocabulary)
        return as_csr(queries, dim=self.dim, name="queries")

    def choose_engines(self, q: sp.csr_array) -> np.ndarray:
        """Per query, True where "auto" picks block-max pruning (see AUTO_MAX_TERMS, AUTO_MIN_POSTINGS)."""
        n = q.shape[0]
        if q.nnz == 0 or self.nnz == 0 or not self.has_block_max:
            return np.zeros(n, dtype=bool)
        rows = np.repeat(np.arange(n), np.diff(q.indptr))
        df = np.diff(self._k["term_offsets"])[q.indices]
        postings = np.bincount(rows, weights=df, minlength=n)
        return (postings >= AUTO_MIN_POSTINGS) & (np.diff(q.indptr) <= AUTO_MAX_TERMS)

    kind = "lsr"  # its name in index.searcher.ENGINES

    def search(self, queries, k: int = 10, options=None, *, engine: str = "auto", approx: Approx | None = None,
               vocabulary: Vocabulary | tuple | None = None, threads: int | None = None, filter=None,
               allow: np.ndarray | None = None) -> SearchResults:
        """Top-k documents for a batch of queries.

        Args:
            queries: ``n_queries x dim`` query vectors (any input :func:`index.sparse.as_csr` accepts).
            k: results per query, capped at the number of documents (the result arrays then have
                ``n_docs`` columns); slots past the last matching document hold ``-1`` / ``-inf``.
            engine: ``"auto"`` (exact; default), ``"taat"``, ``"blockmax"`` or ``"oracle"``.
            approx: :class:`Approx` knobs for approximate search; ``None`` is exact.
            vocabulary: the queries' vocabulary; refused if it differs from the index's.
            threads: Numba threads for this call (default: Numba's setting); restored afterwards.
            options: an :class:`index.searcher.SearchOptions` (the :class:`~index.searcher.Searcher`
                protocol's form); when given, its engine, approx and threads replace the keywords.
            filter: a metadata filter (:mod:`index.fields`, e.g. ``{"year": {"gte": 2015}}``): only matching
                documents are returned, and ``k`` of them whenever ``k`` match with a score above zero (the
                kernels skip the others while collecting the top-k; nothing is filtered afterwards).
            allow: a boolean mask over documents (``[n_docs]``), and-ed with ``filter``: only ``True`` ones
                are returned (e.g. a live index's undeleted documents).

        Returns:
            :class:`SearchResults`; exact engines return the oracle's top-k, ties by smaller document
            index (with quantized impacts: exact for the de-quantized impacts).
        """
        if options is not None:
            if options.searcher != self.kind:
                raise ValueError(f"options for the {options.engine!r} engine given to lsr's inverted index")
            engine, approx, threads = options.engine, options.approx, options.threads
        return self.search_detailed(queries, k, engine=engine, approx=approx, vocabulary=vocabulary,
                                    threads=threads, filter=filter, allow=allow).results

    @classmethod
    def from_vectors(cls, path, doc_ids, vectors, *, terms=None, vocabulary=None, encoder=None, overwrite=False,
                     show_progress=False, **build_options) -> InvertedIndex:
        """The :class:`~index.searcher.Searcher` constructor every engine shares: :meth:`build`, then :meth:`save`."""
        idx = cls.build(vectors, doc_ids=doc_ids, vocabulary=vocabulary, encoder=encoder, **build_options)
        idx.save(path, overwrite=overwrite)
        return cls.load(path)

    def warm_variants(self, options) -> tuple:
        """``auto`` picks TAAT or block-max per query: both are compiled before a timed run."""
        from .searcher import SearchOptions

        if options.engine != "auto" or options.approx is not None or not self.has_block_max:
            return ()
        return tuple(SearchOptions(engine=e, threads=options.threads) for e in ("taat", "blockmax"))

    def search_with_work(self, queries, k: int, options=None):
        """:meth:`search` plus the mean number of postings scored per query."""
        opts = {} if options is None else {"engine": options.engine, "approx": options.approx,
                                           "threads": options.threads}
        d = self.search_detailed(queries, k, **opts)
        return d.results, float(d.stats.postings.mean()) if d.stats.postings.size else 0.0

    def describe(self) -> dict:
        """Kind, counts and layout, for reports and manifests (the :class:`~index.searcher.Searcher` protocol)."""
        m = self.manifest
        return {"kind": self.kind, "n_docs": self.n_docs, "dim": self.dim, "postings": self.nnz,
                "quantization": self.quantization, "block_size": self.block_size, "block_max": self.has_block_max,
                "reorder": m.get("reorder"), "vocabulary": m.get("vocabulary"), "fields": self.schema,
                "stored_texts": self.stored is not None, "bytes": self.size_bytes()}

    def search_detailed(self, queries, k: int = 10, *, engine: str = "auto", approx: Approx | None = None,
                        vocabulary: Vocabulary | tuple | None = None, threads: int | None = None,
                        seed_blocks: int = DEFAULT_SEED_BLOCKS, filter=None,
                        allow: np.ndarray | None = None) -> DetailedSearch:
        """:meth:`search`, plus per-query work statistics (:class:`SearchStats`)."""
        k = _check_k(k, self.n_docs)
        mask = self.allowed(filter, allow)
        approx = self.check_engine(engine, approx)
        q = self.check_queries(queries, vocabulary)
        with numba_threads(threads):
            return self._execute(q, k, engine, approx, mask, seed_blocks)

    def check_engine(self, engine: str, approx: Approx | None) -> Approx | None:
        """Refuse an engine this index cannot run; return ``approx`` validated (``None`` when exact)."""
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        if approx is not None:
            approx = approx.validate()
            if engine in ("taat", "oracle") and approx.uses_blocks:
                raise ValueError(f"max_blocks and alpha run on the block-max engine, not {engine!r}")
            if approx.exact:
                approx = None
        if (engine == "blockmax" or (approx is not None and approx.uses_blocks)) and not self.has_block_max:
            raise ValueError(
                f"this index was built without block-max metadata (its blocks were incoherent: entries "
                f"{self.manifest.get('block_entry_ratio', '?')} of the postings), which block-max and approximate "
                "search need; rebuild with block_max=True (CLI: lsr index build --block-max) or use the exact engine"
            )
        return approx

    def _execute(self, q: sp.csr_array, k: int, engine: str, approx: Approx | None, mask: np.ndarray | None,
                 seed_blocks: int = DEFAULT_SEED_BLOCKS) -> DetailedSearch:
        """The search itself, on arguments :meth:`search_detailed` checked (a live index checks them once for
        all its segments); runs on Numba's current thread setting."""
        n = q.shape[0]
        postings = np.zeros(n, dtype=np.int64)
        blocks = np.zeros(n, dtype=np.int64)
        if engine == "oracle":
            pm = self._posting_matrix()
            if mask is not None:
                pm = sp.csr_array(pm @ sp.diags_array(mask.astype(np.float32)))
            res = score_topk(q, pm, k)
            return DetailedSearch(res, SearchStats(postings, blocks, np.full(n, 2, dtype=np.uint8)))
        allow8 = np.zeros(0, dtype=np.uint8) if mask is None else mask.view(np.uint8)
        if approx is not None and not approx.uses_blocks:
            out = empty_results(n, k)
            stats = np.zeros((n, 3), dtype=np.int64)
            self._run_pruned(q, k, approx, allow8, out, stats)
            if mask is not None:
                self._fill_filtered(q, k, mask, out)
            return DetailedSearch(out, SearchStats(stats[:, 0], stats[:, 1], np.full(n, 3, dtype=np.uint8)))
        if approx is not None or engine == "blockmax":
            use_bm = np.ones(n, dtype=bool)
        elif engine == "taat":
            use_bm = np.zeros(n, dtype=bool)
        else:
            use_bm = self.choose_engines(q)
        out = empty_results(n, k)
        stats = np.zeros((n, 3), dtype=np.int64)
        n_bm = int(np.count_nonzero(use_bm))
        for flag in (False, True):
            if n_bm == (0 if flag else n):  # no query for this engine
                continue
            rows = np.flatnonzero(use_bm == flag) if 0 < n_bm < n else None
            if rows is None:
                self._run_kernel(q, k, flag, approx or _EXACT, seed_blocks, allow8, out, stats)
                continue
            sub_out = empty_results(rows.size, k)
            sub_stats = np.zeros((rows.size, 3), dtype=np.int64)
            self._run_kernel(q[rows], k, flag, approx or _EXACT, seed_blocks, allow8, sub_out, sub_stats)
            out.doc_idx[rows] = sub_out.doc_idx
            out.scores[rows] = sub_out.scores
            stats[rows] = sub_stats
        if mask is not None and approx is not None:
            self._fill_filtered(q, k, mask, out)
        return DetailedSearch(out, SearchStats(stats[:, 0], stats[:, 1], use_bm.astype(np.uint8)))

    def allowed(self, filter=None, allow: np.ndarray | None = None) -> np.ndarray | None:
        """The boolean document mask of a ``filter`` and an ``allow`` mask (``None``: every document)."""
        mask = None
        if filter is not None:
            mask = self.fields.mask(filter)
        if allow is not None:
            allow = np.asarray(allow)
            if allow.dtype != np.bool_ or allow.shape != (self.n_docs,):
                raise ValueError(f"allow must be a boolean mask of the {self.n_docs} documents, got "
                                 f"{allow.dtype}{list(allow.shape)}")
            mask = allow if mask is None else mask & allow
        return None if mask is None else np.ascontiguousarray(mask)

    def _fill_filtered(self, q: sp.csr_array, k: int, mask: np.ndarray, out: SearchResults) -> None:
        """Approximate search under a mask can find fewer than ``k`` allowed documents where ``k`` exist (pruned
        lists or skipped blocks held them): such queries are answered exactly, so a filter never shortens a list."""
        short = np.flatnonzero((out.doc_idx >= 0).sum(axis=1) < min(k, int(mask.sum())))
        if short.size == 0:
            return
        exact = self._execute(q[short], k, "taat", None, mask).results
        out.doc_idx[short] = exact.doc_idx
        out.scores[short] = exact.scores

    def block_mask(self, allow8: np.ndarray) -> np.ndarray:
        """Per block, 1 when it holds an allowed document (cached for the last mask searched: a live index
        searches each segment with the same mask of undeleted documents)."""
        if allow8.shape[0] == 0:
            return allow8
        cached = self._block_allow
        base = allow8.base
        if cached is not None and cached[0] is base:
            return cached[1]
        n_blocks = (self.n_docs + self.block_size - 1) // self.block_size
        padded = np.zeros(n_blocks * self.block_size, dtype=np.uint8)
        padded[:self.n_docs] = allow8
        blocks = padded.reshape(n_blocks, self.block_size).max(axis=1)
        if base is not None and not base.flags.writeable:  # a mask that cannot change under the cache
            self._block_allow = (base, blocks)
        return blocks

    def static_pruned(self, max_postings: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Posting lists cut to each term's ``max_postings`` highest impacts, in document order.

        Returns ``(term_offsets, posting_docs, posting_impacts)``, built once per value (parallel over
        terms; 8-bit impacts find each list's cut-off by a histogram) and cached in memory (copies of
        several values, together at most the index's postings); ``0`` or a value at least the longest list
        returns the index's own arrays. Used by :class:`Approx` ``max_postings``.
        """
        max_postings = int(max_postings)
        if max_postings < 0:
            raise ValueError(f"max_postings must be >= 0, got {max_postings}")
        a = self._k
        if max_postings == 0 or max_postings >= int(self.doc_frequencies().max(initial=0)):
            return a["term_offsets"], a["posting_docs"], a["posting_impacts"]
        cache = self._static_cache
        if max_postings not in cache:
            t0 = time.perf_counter()
            counts = np.zeros(self.dim, dtype=np.int64)
            kernels.static_prune_count(a["term_offsets"], np.int64(max_postings), counts)
            off = np.zeros(self.dim + 1, dtype=np.int64)
            np.cumsum(counts, out=off[1:])
            docs = np.empty(int(off[-1]), dtype=a["posting_docs"].dtype)
            imp = np.empty(int(off[-1]), dtype=a["posting_impacts"].dtype)
            kernels.static_prune_fill(a["term_offsets"], a["posting_docs"], a["posting_impacts"],
                                      np.int64(max_postings), a["posting_impacts"].dtype == np.uint8, off, docs, imp)
            # memory stays bounded while a tuner tries values: the oldest copies go once the copies together
            # would hold more postings than the index
            while cache and sum(c[1].shape[0] for c in cache.values()) + docs.shape[0] > self.nnz:
                del cache[next(iter(cache))]
            cache[max_postings] = (off, docs, imp)
            logger.debug("static pruning to %d postings per term: %d of %d postings kept in %.2f s",
                         max_postings, docs.shape[0], self.nnz, time.perf_counter() - t0)
        return cache[max_postings]

    def forward_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per document, its terms (ascending) and impacts: ``(row_offsets, terms, impacts)``.

        Built from the posting lists on first use (one pass, ~1 s per 100 M postings) and kept in
        memory: as large again as the postings. The re-scoring engine of :class:`Approx` reads it.
        """
        if self._forward is None:
            t0 = time.perf_counter()
            a = self._k
            fptr = np.zeros(self.n_docs + 1, dtype=np.int64)
            np.cumsum(a["doc_nnz"], out=fptr[1:])
            if fptr[-1] != self.nnz:
                check_doc_lengths(self.path, a["posting_docs"], a["doc_nnz"])
            # term ids in 2 bytes where the vocabulary allows (BERT's 30,522): rows span fewer cache lines
            fterms = np.empty(self.nnz, dtype=np.uint16 if self.dim <= 1 << 16 else np.int32)
            fimp = np.empty(self.nnz, dtype=a["posting_impacts"].dtype)
            # rows are laid out by the documents' lengths; the kernel refuses postings that do not fit them
            if not kernels.transpose_postings(a["term_offsets"], a["posting_docs"], a["posting_impacts"], fptr,
                                              fterms, fimp, np.int64(FORWARD_WINDOW)):
                check_doc_lengths(self.path, a["posting_docs"], a["doc_nnz"])
                raise IndexFormatError(f"{self.path or 'index'}: posting lists do not fit the documents' lengths; "
                                       "the index is corrupt: rebuild it")
            self._forward = (fptr, fterms, fimp)
            logger.debug("forward index built in %.2f s", time.perf_counter() - t0)
        return self._forward

    @contextmanager
    def _scratch_rows(self, n_rows: int):
        """Zeroed accumulators and chunk marks, one row per thread slot, lent by the scratch pool."""
        with self._scratch.zeros((n_rows, self.n_docs), np.float32) as accs, \
                self._scratch.zeros((n_rows, int(kernels.n_chunks(self.n_docs))), np.uint8) as marks:
            yield accs, marks

    @contextmanager
    def _list_rows(self, n_rows: int):
        """Document lists for exact TAAT (any content), one row per thread slot, lent by the scratch pool."""
        with self._scratch.empty((n_rows, self.n_docs + 1), np.int32) as lists:
            yield lists

    def _run_pruned(self, q: sp.csr_array, k: int, approx: Approx, allow8: np.ndarray, out: SearchResults,
                    stats: np.ndarray) -> None:
        import numba

        n_cand = max(k, approx.candidates or 10 * k)
        ctoff, cdocs, cimp = self.static_pruned(approx.max_postings)
        fptr, fterms, fimp = self.forward_index()
        nt = min(numba.get_num_threads(), max(q.shape[0], 1))
        with self._scratch_rows(nt) as (accs, marks):
            kernels.pruned_search(
                q.indptr.astype(np.int64, copy=False), q.indices.astype(np.int32, copy=False),
                q.data.astype(np.float32, copy=False), fptr, fterms, fimp, ctoff, cdocs, cimp, self.scale,
                np.int64(self.n_docs), np.int64(self.dim), np.int64(k), np.int64(approx.query_terms),
                np.int64(n_cand), allow8, np.int64(nt), accs, marks, out.doc_idx, out.scores, stats)

    def _run_kernel(self, q: sp.csr_array, k: int, blockmax: bool, approx: Approx, seed_blocks: int,
                    allow8: np.ndarray, out: SearchResults, stats: np.ndarray) -> None:
        import numba

        a = self._k
        nt = min(numba.get_num_threads(), max(q.shape[0], 1))
        qptr = q.indptr.astype(np.int64, copy=False)
        qidx = q.indices.astype(np.int32, copy=False)
        qval = q.data.astype(np.float32, copy=False)
        with self._scratch_rows(nt) as (accs, marks):
            if not blockmax:
                args = (qptr, qidx, qval, a["term_offsets"], a["posting_docs"], a["posting_impacts"], self.scale,
                        np.int64(self.n_docs), np.int64(k), allow8)
                slice_docs = np.int64(-(-TAAT_SLICE_DOCS // kernels.CHUNK) * kernels.CHUNK)
                with self._list_rows(nt) as lists:
                    if nt == 1:  # no thread-pool launch for a single query or thread
                        kernels.taat_search_serial(*args, accs, marks, lists, out.doc_idx, out.scores, stats,
                                                   slice_docs)
                    else:
                        kernels.taat_search(*args, np.int64(nt), accs, marks, lists, out.doc_idx, out.scores, stats,
                                            slice_docs)
                return
            kernels.blockmax_search(
                qptr, qidx, qval, a["term_offsets"], a["posting_docs"], a["posting_impacts"], self.scale,
                a["bm_offsets"], a["bm_blocks"], a["bm_max"], a["bm_start"], np.int64(self.block_size),
                np.int64(self.n_docs), np.int64(k), np.float32(approx.alpha), np.int64(approx.max_blocks),
                np.int64(max(1, seed_blocks)), np.int64(approx.query_terms), allow8, self.block_mask(allow8),
                np.int64(nt), accs, out.doc_idx, out.scores, stats)

    # ------------------------------------------------------------ save/load
    def write_into(self, directory: Path) -> None:
        """Write the arrays and the manifest into an existing empty directory (no atomicity)."""
        directory = Path(directory)
        entries = {}
        for name, arr in self._arrays.items():
            target = directory / f"{name}.npy"
            if isinstance(arr, np.memmap) and arr.filename and Path(arr.filename).resolve() == target.resolve():
                arr.flush()  # already written in place (IndexBuilder)
                entries[name] = describe_array(target, arr)
            else:
                entries[name] = write_array(directory, name, arr)
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
            verify: also check every array's sha256 (reads all bytes once more). Without it every
                load still checks what the kernels trust: array files inside the folder, sizes,
                dtypes and shapes against the manifest, and one pass over the postings (offsets
                non-decreasing, documents in range and ascending per term, impacts finite and
                positive, block-max entries and maxima, document lengths); see :func:`_check_structure`.

        Raises:
            IndexFormatError: not an lsr index, corrupt manifest, missing or truncated array,
                checksum or invariant failure, or an older format (rebuild it).
        """
        path = Path(path)
        manifest = read_manifest(path, FORMAT, FORMAT_VERSION)
        if manifest["format_version"] < FORMAT_VERSION:
            raise IndexFormatError(
                f"{path} has index format {manifest['format_version']}, older than this lsr's "
                f"{FORMAT_VERSION} (written by lsr {manifest.get('library_version')}); rebuild it with `lsr index build`"
            )
        try:
            entries = manifest["arrays"]
            dim, n_docs, nnz = int(manifest["dim"]), int(manifest["n_docs"]), int(manifest["nnz"])
            block_size = int(manifest["block_size"])
            q = manifest.get("quantization")
            if q is not None:
                check_quantization(q["dtype"])
                float(q["scale"])
        except (KeyError, TypeError, ValueError) as e:
            raise IndexFormatError(f"{path / MANIFEST} lacks a valid field ({e}); rebuild the index") from None
        missing = [r for r in REQUIRED_ARRAYS if r not in entries]
        if missing:
            raise IndexFormatError(f"{path / MANIFEST} lists no array {missing[0]!r}; rebuild the index")
        arrays = {name: load_array(path, entries[name], mmap, verify) for name in REQUIRED_ARRAYS}
        for name in OPTIONAL_ARRAYS:
            if name in entries:
                arrays[name] = load_array(path, entries[name], mmap, verify)
        field_entries = manifest.get("fields") or []
        if not isinstance(field_entries, list):
            raise IndexFormatError(f"{path / MANIFEST}: 'fields' is not a list; rebuild the index")
        for name in Fields.array_names(field_entries):
            if name not in entries:
                raise IndexFormatError(f"{path / MANIFEST} lists no array {name!r} for its fields; rebuild the index")
            arrays[name] = load_array(path, entries[name], mmap, verify)
        scale = np.float32(q["scale"]) if q is not None else np.float32(1.0)
        _check_structure(path, arrays, dim, n_docs, nnz, block_size, bool(manifest.get("block_max", True)), scale,
                         full=verify)
        return cls(arrays, manifest, path=path)


#: what each code of :func:`kernels.check_postings` means, and the array it names
_POSTING_FAULTS = {
    1: ("term_offsets", "offsets decrease or pass the posting count"),
    2: ("posting_docs", "a posting refers to a document outside the index"),
    3: ("posting_docs", "document indices are not ascending within a posting list"),
    4: ("posting_impacts", "an impact is not finite and positive"),
    5: ("bm_offsets", "block offsets decrease or pass the block entries"),
    6: ("bm_blocks", "block entries (bm_blocks / bm_start) do not describe the postings"),
    7: ("bm_max", "a block maximum is not the block's largest impact"),
    8: ("term_max", "a term maximum is not its list's largest impact"),
}


def _check_structure(path: Path, a: dict, dim: int, n_docs: int, nnz: int, block_size: int, has_bm: bool,
                     scale: np.float32, full: bool = False) -> None:
    """Everything the search kernels trust, checked on every load: shapes against the manifest, then one
    pass over the postings, parallel over terms (:func:`kernels.check_postings`; measured by
    ``benchmarks/load_checks.py``), and the document arrays. ``full`` also checks every document's length
    against its posting count (a scattered count; the forward index checks it where it is built). A corrupt
    index is refused here, not by a crash inside a kernel."""
    def fail(array: str, msg: str):
        raise IndexFormatError(f"{path}: {array}: {msg}; the index is corrupt: rebuild it (`lsr index info "
                               f"{path} --verify` checks every array's checksum)")

    offs = a["term_offsets"]
    if offs.shape != (dim + 1,) or offs[0] != 0 or offs[-1] != nnz:
        fail("term_offsets", "offsets do not match the manifest's dimension and posting count")
    if a["posting_docs"].shape != (nnz,) or a["posting_impacts"].shape != (nnz,):
        fail("posting_docs", "posting arrays do not hold the manifest's posting count")
    if a["posting_impacts"].dtype not in (np.float32, np.uint8, np.uint16):
        fail("posting_impacts", f"unsupported dtype {a['posting_impacts'].dtype}")
    if a["posting_docs"].dtype != np.int32 or offs.dtype != np.int64:
        fail("posting_docs", "postings must be int32 documents under int64 offsets")
    if a["doc_nnz"].shape != (n_docs,):
        fail("doc_nnz", "does not hold the manifest's document count")
    dof = a["docid_offsets"]
    if dof.shape != (n_docs + 1,) or dof[0] != 0 or dof[-1] != a["docid_bytes"].shape[0]:
        fail("docid_offsets", "offsets do not span docid_bytes for the manifest's document count")
    if n_docs and np.any(np.diff(dof) < 0):
        fail("docid_offsets", "offsets decrease")
    if a["term_max"].shape != (dim,) or a["bm_offsets"].shape != (dim + 1,):
        fail("term_max", "per-term arrays do not match the dimension")
    nbm = a["bm_blocks"].shape[0]
    if a["bm_offsets"][0] != 0 or a["bm_offsets"][-1] != nbm or a["bm_max"].shape != (nbm,) \
            or a["bm_start"].shape != (nbm,):
        fail("bm_offsets", "block-max arrays are inconsistent")
    if not has_bm and nbm:
        fail("bm_blocks", "block entries in an index whose manifest says it has no block-max metadata")
    if not 1 <= block_size <= 1 << 20:
        fail("manifest", f"block_size {block_size} is outside [1, 2**20]")
    if "doc_order" in a:
        order = a["doc_order"]
        if order.shape != (n_docs,) or (n_docs and (order.min() < 0 or order.max() >= n_docs
                                                     or np.bincount(order, minlength=n_docs).max() != 1)):
            fail("doc_order", "not a permutation of the documents")
    if not np.isfinite(scale) or scale <= 0:
        fail("manifest", f"quantization scale {scale} is not finite and positive")
    doc_nnz = np.asarray(a["doc_nnz"])
    if n_docs and (doc_nnz.min() < 0 or int(doc_nnz.sum(dtype=np.int64)) != nnz):
        fail("doc_nnz", "document lengths do not add up to the posting count")
    faults = np.zeros(dim, dtype=np.int8)
    kernels.check_postings(
        np.asarray(offs), np.asarray(a["posting_docs"]), np.asarray(a["posting_impacts"]), np.float32(scale),
        np.int64(n_docs), bool(has_bm), np.int64(block_size), np.asarray(a["bm_offsets"]),
        np.asarray(a["bm_blocks"]), np.asarray(a["bm_max"]), np.asarray(a["bm_start"]), np.asarray(a["term_max"]),
        faults)
    bad = np.flatnonzero(faults)
    if bad.size:
        array, msg = _POSTING_FAULTS[int(faults[bad[0]])]
        fail(array, f"{msg} (term {int(bad[0])})")
    if full:
        check_doc_lengths(path, a["posting_docs"], doc_nnz)


def check_doc_lengths(path, posting_docs: np.ndarray, doc_nnz: np.ndarray) -> None:
    """Every document's length must be its number of postings: the forward index is laid out by these
    lengths (checked where it is built, and by ``verify=True``; the sum is checked on every load)."""
    counts = np.bincount(np.asarray(posting_docs), minlength=doc_nnz.shape[0])
    if counts.shape != doc_nnz.shape or not np.array_equal(counts, doc_nnz):
        raise IndexFormatError(f"{path or 'index'}: doc_nnz: document lengths are not the documents' posting counts; "
                               "the index is corrupt: rebuild it")
