"""A live retriever: an encoder and a :class:`~index.segments.SegmentedIndex` in one folder, documents added,
replaced and deleted by id while the index is searched.

The folder is the live index's (``segments.json``, ``commit-*.json``, ``segments/``) plus ``encoder/``, whose
identity the marker records (a swapped encoder is refused on open, as for built indexes). An index built by
``lsr index build`` / :meth:`Retriever.save` becomes live the first time it is opened for writing
(:meth:`LiveRetriever.open` with ``writable=True``): its arrays are hard-linked into the first segment, the
commit point is written, and only then are the old top-level files removed, so a crash at any step leaves
a folder that opens with every document.

Statistics. Learned encoders (SPLADE, inference-free, SLIM's pooled vectors) give a document the same vector
whatever else is indexed, so a live index equals a fresh build over the final corpus. BM25 and IDF query
tables are corpus statistics: a live index keeps the ones its encoder was fitted with when the index was
created (saved in ``encoder/``), as a deployed Lucene analyzer chain keeps its configuration; documents
added later are weighted with those statistics, and BM25 drops their terms that the fitted vocabulary
lacks (logged). Rebuild (``lsr index build``) to refit them on the corpus as it is now; a fresh build is
Anserini's BM25 as before. (Lucene's alternative, term frequencies stored and collection statistics applied
at query time, is not done here.)

Example:
    >>> live = LiveRetriever.create("live", "splade-tiny")                      # doctest: +SKIP
    >>> live.add([("d1", "insulin resistance in muscle"), ("d2", "the cat")]); live.commit()   # doctest: +SKIP
    >>> live.delete(["d2"]); live.commit()                                       # doctest: +SKIP
    >>> live.search(["insulin"], k=10)                                           # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from index.fields import Fields
from index.inverted import InvertedIndex
from index.searcher import SearchOptions
from index.segments import FORMAT, MARKER, SEGMENTS, SegmentedIndex, _commit_name, _write_json_atomic
from index.storage import MANIFEST, atomic_dir, write_lock

from .encoders import load_encoder
from .encoders.base import SparseEncoder, folder_identity

logger = logging.getLogger(__name__)

ENCODER_SUBDIR = "encoder"
#: documents encoded at once when adding (bounds the memory of one batch of vectors)
ADD_BATCH = 1024


class LiveRetriever:
    """An encoder and a live index (see the module documentation)."""

    def __init__(self, index: SegmentedIndex, encoder: SparseEncoder | Path):
        """``encoder``: the encoder, or its folder (loaded on first use: deletes and commits need no model)."""
        self.index = index
        self._encoder = encoder

    @property
    def encoder(self) -> SparseEncoder:
        if not isinstance(self._encoder, SparseEncoder):
            self._encoder = load_encoder(self._encoder)
        return self._encoder

    # ------------------------------------------------------------------ open
    @classmethod
    def create(cls, path: str | os.PathLike, encoder: SparseEncoder | str, *, fit_texts: Iterable[str] | None = None,
               build: dict | None = None, **options) -> LiveRetriever:
        """A new, empty live index at ``path`` (absent or empty) for ``encoder``.

        ``fit_texts``: the texts whose statistics an encoder that needs them (BM25, IDF queries) is fitted on.
        """
        if isinstance(encoder, (str, os.PathLike)):
            encoder = load_encoder(encoder)
        if encoder.needs_fit:
            if fit_texts is None:
                raise ValueError(f"the {encoder.kind} encoder needs corpus statistics: pass fit_texts= (the corpus, "
                                 "or a sample like it); documents added later are weighted with them")
            encoder.fit(fit_texts)
        if getattr(encoder, "has_second_stage", False):
            raise ValueError("a live index holds pooled vectors only; SLIM's late-interaction second stage is not "
                             "maintained live yet: build a SLIM index with `lsr index build`")
        path = Path(path)
        index = SegmentedIndex.create(path, encoder.vocabulary.size, vocabulary=encoder.vocabulary,
                                      encoder=encoder.describe(),
                                      build=build, **options)
        encoder.save(path / ENCODER_SUBDIR)
        marker = dict(index.marker, encoder_identity=folder_identity(path / ENCODER_SUBDIR))
        _write_json_atomic(path / MARKER, marker)
        index.marker = marker
        return cls(index, encoder)

    @classmethod
    def open(cls, path: str | os.PathLike, *, writable: bool = False) -> LiveRetriever:
        """Open a live index; a built index (``lsr index build``) opens read-only, or is made live with ``writable``."""
        path = Path(path)
        if not (path / MARKER).exists() and writable:
            convert_in_place(path)
        index = SegmentedIndex.open(path)
        enc_dir = path / ENCODER_SUBDIR
        if not enc_dir.is_dir():
            raise FileNotFoundError(f"{enc_dir}: the index has no saved encoder, so texts cannot be encoded")
        recorded = index.marker.get("encoder_identity")
        if recorded is not None and folder_identity(enc_dir) != recorded:
            raise ValueError(f"{enc_dir} is not the encoder this live index was created with (identity "
                             f"{recorded}); put back the encoder it was created with")
        return cls(index, enc_dir)

    # ---------------------------------------------------------------- writes
    def add(self, docs: Iterable, *, show_progress: bool = False) -> int:
        """Encode and buffer documents (an id already present is replaced); returns how many.

        ``docs``: ``(doc_id, text)`` pairs, ``(doc_id, text, fields)`` with a mapping of metadata fields
        (:mod:`index.fields`) for filtered search, or ``eval.datasets.Document`` (with the title and body to
        store). Each document's text (title and body when given) is stored with it for display.
        """
        n = 0
        batch: list[tuple] = []
        bar = tqdm(desc="adding", unit="doc", disable=not show_progress, mininterval=1.0)
        for item in docs:
            if isinstance(item, str) or len(item) not in (2, 3, 4):
                raise ValueError(f"documents are (doc_id, text) or (doc_id, text, fields) tuples, got {item!r:.80}")
            doc_id, text, fields = item[:3] if len(item) >= 3 else (*item, None)
            if not isinstance(text, str):
                raise ValueError(f"document {doc_id!r}: the text must be a string, got {type(text).__name__}")
            batch.append((str(doc_id), text, fields, item[3] if len(item) == 4 else {"text": text}))
            if len(batch) == ADD_BATCH:
                n += self._add_batch(batch)
                bar.update(len(batch))
                batch = []
        if batch:
            n += self._add_batch(batch)
            bar.update(len(batch))
        bar.close()
        return n

    def _add_batch(self, batch: list[tuple]) -> int:
        fields = [b[2] for b in batch]
        ids = [b[0] for b in batch]
        Fields.from_records(fields, doc_ids=ids, schema=self.index.schema)  # refuse bad fields before encoding
        vectors = self.encoder.encode_documents([b[1] for b in batch])
        self.index.add(ids, vectors, fields if any(f is not None for f in fields) else None, [b[3] for b in batch])
        return len(batch)

    def delete(self, doc_ids: Iterable[str], *, missing_ok: bool = False) -> int:
        return self.index.delete(doc_ids, missing_ok=missing_ok)

    def commit(self) -> int:
        return self.index.commit()

    def compact(self) -> int:
        return self.index.compact()

    # ---------------------------------------------------------------- search
    def encode_queries(self, texts: Sequence[str]):
        return self.encoder.encode_queries(list(texts))

    def search(self, texts: Sequence[str], k: int = 10, options: SearchOptions | None = None, *, filter=None):
        """Top-k live documents for query texts (``doc_idx`` index :attr:`doc_ids`); ``filter``: a metadata
        filter (:mod:`index.fields`)."""
        if isinstance(texts, str):
            texts = [texts]
        if options is not None and options.searcher != "lsr":
            raise ValueError(f"a live index is searched by lsr's engines, not {options.engine!r}")
        return self.index.search(self.encode_queries(texts), k, options, filter=filter)

    @property
    def doc_ids(self):
        return self.index.doc_ids

    def describe(self) -> dict:
        encoder = self._encoder.describe() if isinstance(self._encoder, SparseEncoder) else self.index.marker.get("encoder")
        return {**self.index.describe(), "encoder": encoder,
                "encoder_identity": self.index.marker.get("encoder_identity")}


def is_live(path: str | os.PathLike) -> bool:
    return (Path(path) / MARKER).is_file()


def convert_in_place(path: str | os.PathLike) -> Path:
    """Make an index folder written by ``lsr index build`` a live index, keeping every document.

    Steps, each leaving a folder that opens: (1) the index arrays are hard-linked (copied where links are
    not possible) into ``segments/seg-00000000/``; (2) the marker and commit point 1 are written; (3) the old
    top-level arrays and manifest are removed. Engines beside the index (``lucene/``, ``milvus/``) and SLIM's
    ``slim/`` would fall out of step with a changing index: their presence is refused, naming them.
    """
    path = Path(path)
    with write_lock(path):
        manifest_path = path / MANIFEST
        if (path / MARKER).exists():
            _remove_leftovers(path)
            return path
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{path}: not an lsr index (no {MANIFEST})")
        beside = [p.name for p in path.iterdir() if p.is_dir() and p.name not in (ENCODER_SUBDIR, SEGMENTS)
                  and not p.name.startswith(".")]
        if beside:
            raise ValueError(f"{path} holds {', '.join(sorted(beside))} beside the index; a live index cannot keep "
                             "them in step: remove them (or build a new index) before adding or deleting")
        idx = InvertedIndex.load(path)
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = [MANIFEST] + [entry["file"] for entry in manifest.get("arrays", {}).values()]
        (path / SEGMENTS).mkdir(exist_ok=True)
        first = path / SEGMENTS / "seg-00000000"
        with atomic_dir(first, overwrite=True, kind="index") as tmp:
            for name in files:
                try:
                    os.link(path / name, tmp / name)
                except OSError:  # another file system, or links not allowed
                    shutil.copy2(path / name, tmp / name)
        marker = {"format": FORMAT, "dim": idx.dim, "vocabulary": manifest.get("vocabulary"),
                  "encoder": manifest.get("encoder"), "build": _build_of(manifest), "max_segments": 10,
                  "merge_factor": 10, "keep_commits": 2, "encoder_identity": manifest.get("encoder_identity")}
        _write_json_atomic(path / _commit_name(1), {
            "format": FORMAT, "generation": 1, "next_segment": 1,
            "segments": [{"name": first.name, "n_docs": idx.n_docs, "deletes": None, "n_deleted": 0}]})
        _write_json_atomic(path / MARKER, marker)
        n_docs = idx.n_docs
        del idx
        _remove_leftovers(path)
        logger.info("%s is now a live index (%d documents in its first segment)", path, n_docs)
    return path


def _remove_leftovers(path: Path) -> None:
    """The top-level files of the index a folder was before it became live (a conversion that stopped before
    removing them leaves them; the live index never reads them)."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        return
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return
    if manifest.get("format") != "lsr-index":
        return
    for entry in manifest.get("arrays", {}).values():
        name = entry.get("file") if isinstance(entry, dict) else None
        if name and "/" not in name and not name.startswith("."):
            (path / name).unlink(missing_ok=True)
    manifest_path.unlink(missing_ok=True)  # the manifest last


def _build_of(manifest: dict) -> dict:
    """The layout options of a built index, for the segments added later."""
    q = manifest.get("quantization")
    return {"quantization": q["dtype"] if q else None, "block_size": int(manifest.get("block_size", 64))}
