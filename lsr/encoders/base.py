"""The interface every sparse encoder implements, and how encoders are saved and found again.

An encoder maps texts to sparse vectors over a fixed vocabulary (the sparse contract of
:mod:`index.sparse`: a ``scipy.sparse.csr_array``, int32 term ids, float32 weights > 0).
Documents and queries may be encoded differently (BM25 weights documents and counts query
terms; inference-free encoders run a model on documents only).

On disk an encoder is a directory with ``lsr.json``::

    {"kind": "bm25", "config": {...}, "library_version": "0.1.0", ...}

plus whatever files the kind needs (vocabulary, statistics, weights).
"""

from __future__ import annotations

import abc
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from index import Vocabulary
from index._version import library_version

ENCODER_JSON = "lsr.json"
#: the subfolder an index or an encoding keeps its encoder in
ENCODER_FOLDER = "encoder"


class EncoderFormatError(ValueError):
    """An encoder directory is missing, incomplete or of an unknown kind."""


class SparseEncoder(abc.ABC):
    """Base class: texts to sparse vectors.

    Subclasses implement :meth:`encode_documents`, :meth:`encode_queries`, :meth:`config`,
    :meth:`terms`, :attr:`vocabulary`, :meth:`save_files` and :meth:`from_directory`; encoders
    that need corpus statistics (BM25, IDF query weights) also implement :meth:`fit`.
    """

    #: short name stored in ``lsr.json`` and used by :func:`lsr.load_encoder`.
    kind: str = "abstract"

    # ----------------------------------------------------------- encoding
    #: whether :meth:`reranker_for` makes a second stage (which needs the texts, not only the vectors)
    has_second_stage: bool = False

    def reranker_for(self, texts: Iterable[str]):
        """A second stage built from the documents (SLIM's late interaction), or ``None`` without reading
        ``texts`` (the default)."""
        return None

    def fit(self, texts: Iterable[str], *, show_progress: bool = False) -> SparseEncoder:
        """Collect corpus statistics; a no-op for encoders that need none."""
        return self

    @property
    def needs_fit(self) -> bool:
        """True if :meth:`fit` must run before encoding."""
        return False

    def fit_encode_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> sp.csr_array:
        """Fit on ``texts`` and encode them (encoders may do both in one pass)."""
        self.fit(texts, show_progress=show_progress)
        return self.encode_documents(texts, show_progress=show_progress)

    @abc.abstractmethod
    def encode_documents(self, texts: Iterable[str], *, show_progress: bool = False) -> sp.csr_array:
        """Encode documents into an ``n x dim`` CSR batch."""

    @abc.abstractmethod
    def encode_queries(self, texts: Iterable[str]) -> sp.csr_array:
        """Encode queries into an ``n x dim`` CSR batch."""

    @property
    @abc.abstractmethod
    def vocabulary(self) -> Vocabulary:
        """Identifier and size of the term-id space."""

    @abc.abstractmethod
    def terms(self) -> Sequence[str]:
        """The term string of every term id (for :meth:`decode` and exports)."""

    def decode(self, vector, top: int | None = None) -> list[tuple[str, float]]:
        """Readable ``(term, weight)`` pairs of one vector, heaviest first.

        Args:
            vector: a 1-row CSR batch (e.g. ``enc.encode_queries(["..."])``) or a row of one.
            top: keep only the ``top`` heaviest terms.
        """
        v = sp.csr_array(vector)
        if v.shape[0] != 1:
            raise ValueError(f"decode takes one vector, got {v.shape[0]} rows")
        order = np.lexsort((v.indices, -v.data))
        if top is not None:
            order = order[:top]
        names = self.terms()
        return [(names[int(v.indices[i])], float(v.data[i])) for i in order]

    # ------------------------------------------------------------ config
    @abc.abstractmethod
    def config(self) -> dict:
        """JSON-able constructor arguments (what :meth:`describe` and ``lsr.json`` record)."""

    def describe(self) -> dict:
        """What an index manifest or a report records about this encoder."""
        return {"kind": self.kind, "config": self.config(), "vocabulary": self.vocabulary.to_json()}

    # ------------------------------------------------------------- save/load
    @abc.abstractmethod
    def save_files(self, directory: Path) -> dict:
        """Write the kind's files into ``directory``; return extra fields for ``lsr.json``."""

    @classmethod
    @abc.abstractmethod
    def from_directory(cls, directory: Path, meta: dict) -> SparseEncoder:
        """Rebuild from a directory written by :meth:`save` (``meta`` is its ``lsr.json``)."""

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Save to a directory (written to a temporary directory, then renamed)."""
        from index import atomic_dir

        path = Path(path)
        with atomic_dir(path, overwrite=overwrite, kind="encoder") as tmp:
            extra = self.save_files(tmp)
            meta = {"kind": self.kind, "config": self.config(), "library_version": library_version(),
                    "vocabulary": self.vocabulary.to_json(), **extra}
            with open(tmp / ENCODER_JSON, "w", encoding="utf-8") as f:
                json.dump(meta, f, indent=2)
                f.write("\n")
        return path


def folder_identity(directory: str | os.PathLike) -> str:
    """``"sha256:<hex>"`` over every file of an encoder folder (relative names and contents, sorted).

    Two folders have the same identity exactly when they hold the same files with the same bytes:
    the config, the weights, the tokenizer and any fitted statistics (BM25's, IDF tables). An index
    records the identity of the encoder it was built with, so that a swapped ``encoder/`` folder
    (another model with the same vocabulary would rank differently, silently) is refused on load.
    """
    directory = Path(directory)
    h = hashlib.sha256()
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    for p in files:
        rel = p.relative_to(directory).as_posix().encode("utf-8")
        h.update(len(rel).to_bytes(8, "little") + rel + p.stat().st_size.to_bytes(8, "little"))
        with open(p, "rb") as f:
            for block in iter(lambda f=f: f.read(1 << 22), b""):
                h.update(block)
    return f"sha256:{h.hexdigest()}"


def config_of(directory: Path, meta: dict) -> dict:
    """The ``config`` object of an encoder's ``lsr.json``, or a clear error."""
    cfg = meta.get("config")
    if not isinstance(cfg, dict):
        raise EncoderFormatError(f"{directory}/{ENCODER_JSON} has no 'config' object; re-save the encoder")
    return cfg


def read_encoder_json(directory: Path) -> dict:
    """Read ``lsr.json`` of an encoder directory with clear errors."""
    p = Path(directory) / ENCODER_JSON
    if not p.exists():
        raise EncoderFormatError(
            f"{directory} has no {ENCODER_JSON}: not an lsr encoder directory "
            "(save one with encoder.save(path), or give a known name such as 'bm25')"
        )
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EncoderFormatError(f"{p} is not valid JSON ({e}); re-save the encoder") from None
    if not isinstance(meta, dict) or "kind" not in meta:
        raise EncoderFormatError(f"{p} has no 'kind' field; re-save the encoder")
    return meta
