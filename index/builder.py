"""Streamed index construction: documents arrive in CSR shards, memory holds one shard at a time.

Each shard is transposed to term-major postings and spilled to a temporary folder. ``finish``
counts the postings of every term, allocates the final posting arrays as memory-mapped ``.npy``
files inside the (temporary) index directory, scatters every shard into place in document order,
computes the block-max metadata and renames the directory into place. The corpus never has to fit
in memory; the page cache does the rest.

Example:
    >>> from index import IndexBuilder
    >>> with IndexBuilder("idx/big", dim=30522, quantization="uint8") as builder:   # doctest: +SKIP
    ...     for ids, vectors in shards:                                           # doctest: +SKIP
    ...         builder.add(vectors, doc_ids=ids)                                 # doctest: +SKIP
    >>> idx = builder.index                                  # memory-mapped       # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from . import kernels
from .docids import DocIds
from .inverted import DEFAULT_BLOCK_SIZE, InvertedIndex, Vocabulary
from .quantize import DTYPES, check_quantization, quantize, scale_for
from .sparse import as_csr
from .storage import atomic_dir, check_target, remove_stale_temporaries

logger = logging.getLogger(__name__)


class IndexBuilder:
    """Build an :class:`InvertedIndex` on disk from shards of document vectors.

    Args:
        path: the index directory to create (written atomically at :meth:`finish`).
        dim: the vocabulary size every shard must have.
        vocabulary, encoder, quantization, block_size, block_max: as for :meth:`InvertedIndex.build`.
        overwrite: replace an existing index at ``path``.

    Use as a context manager (``finish`` on success, ``abort`` on error) or call them yourself.
    Document ids are required for all shards or for none (then ``"0" .. "n-1"``).
    """

    def __init__(self, path: str | os.PathLike, dim: int, *, vocabulary: Vocabulary | tuple | None = None,
                 encoder: dict | None = None, quantization: str | None = None,
                 block_size: int = DEFAULT_BLOCK_SIZE, block_max: bool | str = "auto", overwrite: bool = False):
        self.path = check_target(path, overwrite, "index")  # refused now, not after every shard is spilled
        self.dim = int(dim)
        self.vocabulary = Vocabulary(*vocabulary) if vocabulary is not None else None
        if self.vocabulary is not None and self.vocabulary.size != self.dim:
            raise ValueError(f"vocabulary {self.vocabulary.id!r} has {self.vocabulary.size} terms, not {self.dim}")
        self.encoder = encoder
        self.quantization = check_quantization(quantization)
        self.block_size = int(block_size)
        self.block_max = block_max
        self.overwrite = overwrite
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.path.parent)
        self._spill = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.shards-{os.getpid()}-", dir=self.path.parent))
        self._shards: list[int] = []
        self._counts = np.zeros(self.dim, dtype=np.int64)
        self._doc_nnz: list[np.ndarray] = []
        self._ids: list[DocIds] = []
        self._with_ids: bool | None = None
        self._max_impact = 0.0
        self.n_docs = 0
        self._started = time.perf_counter()
        self.index: InvertedIndex | None = None

    # ----------------------------------------------------------------- adding
    def add(self, docs, doc_ids: Sequence[str] | None = None) -> None:
        """Add a shard of ``n x dim`` document vectors (and their ids)."""
        if self.index is not None or self._spill is None:
            raise RuntimeError("this builder has finished or been aborted; start a new one")
        d = as_csr(docs, dim=self.dim, name=f"documents (shard {len(self._shards)})")
        with_ids = doc_ids is not None
        if self._with_ids is None:
            self._with_ids = with_ids
        elif self._with_ids != with_ids:
            raise ValueError("give document ids for every shard or for none")
        if with_ids and len(doc_ids) != d.shape[0]:
            raise ValueError(f"{len(doc_ids)} document ids for {d.shape[0]} documents in this shard")
        if self.n_docs + d.shape[0] > np.iinfo(np.int32).max - self.block_size:
            raise ValueError("too many documents for int32 document indices")
        t = sp.csr_array(d.T)
        t.sort_indices()
        i = len(self._shards)
        np.save(self._spill / f"{i}.toff.npy", t.indptr.astype(np.int64, copy=False))
        np.save(self._spill / f"{i}.docs.npy", t.indices.astype(np.int32, copy=False))
        np.save(self._spill / f"{i}.imp.npy", t.data.astype(np.float32, copy=False))
        self._counts += np.diff(t.indptr)
        self._shards.append(d.shape[0])
        self._doc_nnz.append(np.diff(d.indptr).astype(np.int32))
        if with_ids:
            self._ids.append(DocIds.from_strings(doc_ids))
        if d.nnz:
            self._max_impact = max(self._max_impact, float(d.data.max()))
        self.n_docs += d.shape[0]

    # ---------------------------------------------------------------- finishing
    def _doc_ids(self) -> DocIds | None:
        if not self._with_ids:
            return None
        offsets = [np.zeros(1, dtype=np.int64)]
        base = 0
        for ids in self._ids:
            offsets.append(ids.offsets[1:] + base)
            base += int(ids.offsets[-1])
        data = np.concatenate([ids.data for ids in self._ids]) if self._ids else np.zeros(0, np.uint8)
        return DocIds(data, np.concatenate(offsets))

    def finish(self, extra=None) -> InvertedIndex:
        """Merge the shards into the index directory and return it, memory-mapped.

        ``extra(directory)``, if given, writes more files into the index directory before it is
        renamed into place (e.g. the encoder that made the vectors).
        """
        if self.index is not None:
            return self.index
        if self._spill is None:
            raise RuntimeError("this builder was aborted")
        if self.n_docs == 0:
            self.abort()
            raise ValueError("no documents were added; nothing to index")
        toff = np.zeros(self.dim + 1, dtype=np.int64)
        np.cumsum(self._counts, out=toff[1:])
        nnz = int(toff[-1])
        scale = None
        imp_dtype = np.float32
        if self.quantization is not None:
            scale = scale_for(self._max_impact, self.quantization)
            imp_dtype = DTYPES[self.quantization]
        try:
            with atomic_dir(self.path, overwrite=self.overwrite) as out:
                docs = np.lib.format.open_memmap(out / "posting_docs.npy", mode="w+", dtype=np.int32, shape=(nnz,))
                imps = np.lib.format.open_memmap(out / "posting_impacts.npy", mode="w+", dtype=imp_dtype,
                                                 shape=(nnz,))
                cursor = toff[:-1].copy()
                offset = 0
                for i, n in enumerate(self._shards):
                    s_toff = np.load(self._spill / f"{i}.toff.npy")
                    s_docs = np.load(self._spill / f"{i}.docs.npy")
                    s_imp = np.load(self._spill / f"{i}.imp.npy")
                    if scale is not None:
                        s_imp, _ = quantize(s_imp, self.quantization, scale)
                    kernels.scatter_shard(s_toff, s_docs, s_imp, np.int32(offset), cursor, docs, imps)
                    offset += n
                    for suffix in ("toff", "docs", "imp"):
                        (self._spill / f"{i}.{suffix}.npy").unlink()
                docs.flush()
                imps.flush()
                del s_toff, s_docs, s_imp

                def on_disk(name, n, dtype):  # block-max arrays as files of the index, like the postings
                    if n == 0:
                        return np.zeros(0, dtype=dtype)
                    return np.lib.format.open_memmap(out / f"{name}.npy", mode="w+", dtype=dtype, shape=(n,))

                index = InvertedIndex.from_postings(
                    term_offsets=toff, posting_docs=docs, posting_impacts=imps,
                    doc_nnz=np.concatenate(self._doc_nnz), doc_ids=self._doc_ids(), vocabulary=self.vocabulary,
                    encoder=self.encoder, quantization=self.quantization, block_size=self.block_size,
                    block_max=self.block_max, started=self._started, scale=scale, allocate=on_disk)
                index.manifest["shards"] = len(self._shards)
                index.write_into(out)
                del docs, imps, index
                if extra is not None:
                    extra(out)
        finally:
            self._cleanup()
        self.index = InvertedIndex.load(self.path)
        logger.info("built %s from %d shards: %d documents, %d postings", self.path, len(self._shards),
                    self.n_docs, nnz)
        return self.index

    def abort(self) -> None:
        """Drop everything written so far (the index directory is never created)."""
        self._cleanup()

    def _cleanup(self) -> None:
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)
            self._spill = None

    def __enter__(self) -> IndexBuilder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()
