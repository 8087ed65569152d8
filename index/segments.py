"""A live index: immutable segments, deletes as tombstones, commit points, merges; search exact across segments.

The design is Lucene's. A :class:`SegmentedIndex` folder holds

    segments.json                     what the folder is (written once; the format marker)
    commit-<generation>.json          a commit point: the live segments, their tombstone files, counts
    segments/seg-<n>/                 one immutable segment, in :class:`~index.inverted.InvertedIndex`'s format
    segments/seg-<n>.del-<gen>.npy    the segment's deleted documents (sorted local indices) as of commit <gen>

Writes (:meth:`SegmentedIndex.add`, :meth:`~SegmentedIndex.delete`) are buffered; :meth:`~SegmentedIndex.commit`
writes the added documents as a new segment and the changed tombstones as new files, then the commit point
(temporary file, fsync, rename). The highest commit point that reads back whole is the index: a crash at
any moment leaves the previous commit readable and loses no committed document, and readers search the
snapshot they opened, never a half-applied change. An upsert (adding an id that is live) deletes the old
copy in its segment. After a commit, the merge policy folds the smallest segments together once there
are more than ``max_segments``; :meth:`~SegmentedIndex.compact` merges everything into one segment.
Files no commit point among the last ``keep_commits`` refers to are removed.

Search is exact: one kernel call searches every segment, largest first, into one top-k heap per query
(:func:`~index.kernels.segments_search`), with a mask of each segment's live documents (and of those a
metadata filter matches, :mod:`index.fields`) that the kernels honour while collecting, and each document
entering the heap as its live position (segments in commit order, documents in segment order), which
breaks ties; so the top-k equals the oracle over the live documents in that order. As in Lucene, whose
segments share the minimum competitive score, the threshold reached in one segment prunes the blocks
of the next. Every engine of :class:`~index.inverted.InvertedIndex` runs through the same
:class:`~index.searcher.SearchOptions`: exact, block-max and its approximate knobs in the one heap; the
oracle and the pruned approximate engine per segment, their lists merged by score, then live position.
Documents carry their fields from :meth:`~SegmentedIndex.add` into their segment; merges keep them.

Document vectors go in pre-encoded; encoding text is the ``lsr`` layer's job. Scores depend only on
the two vectors (true of SPLADE, inference-free and SLIM vectors). BM25 impacts use the collection
statistics the encoder had when it encoded each document; merges keep those impacts.

Example:
    >>> idx = SegmentedIndex.create("live", dim=30522)                                  # doctest: +SKIP
    >>> idx.add(["d1", "d2"], vectors); idx.commit()                                     # doctest: +SKIP
    >>> idx.delete(["d1"]); idx.add(["d3"], more); idx.commit()                         # doctest: +SKIP
    >>> res = idx.search(queries, k=10); res.to_run(qids, idx.doc_ids)                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .errors import IndexFormatError
from .fields import Fields
from .inverted import InvertedIndex, Vocabulary
from .results import SearchResults, empty_results
from .sparse import as_csr
from .storage import MANIFEST, write_lock
from .stored import StoredDocs

logger = logging.getLogger(__name__)

FORMAT = "lsr-segmented-index"
MARKER = "segments.json"
SEGMENTS = "segments"
LEGACY_SEGMENT = "."  # a plain index folder opened as a one-segment live index: the folder itself
_COMMIT = re.compile(r"^commit-(\d{10})\.json$")
#: the document masks of this many recent filters are kept per snapshot (a server repeats its filters)
FILTER_CACHE = 16


def _commit_name(generation: int) -> str:
    return f"commit-{generation:010d}.json"


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _save_array_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npy")
    with open(tmp, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class LiveDocIds(Sequence[str]):
    """The ids of a snapshot's live documents by live position, read from the segments on demand."""

    def __init__(self, segments: list, starts: np.ndarray, live_locals: list[np.ndarray], n: int):
        self._segments, self._starts, self._live, self._n = segments, starts, live_locals, int(n)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        i = int(i)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"document index {i} out of range [0, {self._n})")
        s = int(np.searchsorted(self._starts, i, side="right")) - 1
        return self._segments[s].index.doc_ids[int(self._live[s][i - self._starts[s]])]

    def __iter__(self):
        for seg in self._segments:
            yield from (d for d, deleted in zip(seg.index.doc_ids, seg.deleted) if not deleted)

    def tolist(self) -> list[str]:
        return list(iter(self))

    def position(self, doc_id: str) -> int | None:
        for s in range(len(self._segments) - 1, -1, -1):
            seg = self._segments[s]
            local = seg.index.doc_ids.position(doc_id)
            if local is not None and not seg.deleted[local]:
                return int(self._starts[s] + np.searchsorted(self._live[s], local))
        return None


class _Segment:
    """One segment as of a commit: its index and its deleted local documents."""

    def __init__(self, name: str, index: InvertedIndex, deleted: np.ndarray, deletes_file: str | None):
        self.name, self.index, self.deletes_file = name, index, deletes_file
        self.deleted = np.zeros(index.n_docs, dtype=bool)
        self.deleted[deleted] = True
        self.deleted.flags.writeable = False
        self.n_deleted = int(deleted.size and self.deleted.sum())
        self.n_live = index.n_docs - self.n_deleted
        # the kernels' mask of live documents (None: all live); read-only, so the index caches its block mask
        self.live = None
        if deleted.size:
            self.live = ~self.deleted
            self.live.flags.writeable = False


class SegmentedIndex:
    """A live index over pre-encoded document vectors (see the module documentation).

    Open one with :meth:`create` (a new, empty index) or :meth:`open` (the latest commit of a segmented
    index, or a plain index folder as a one-segment live index).

    Args of :meth:`create`:
        path: the folder (absent or empty).
        dim: vector dimension (the vocabulary size).
        vocabulary: the encoder's :class:`~index.inverted.Vocabulary` (queries from another are refused).
        encoder: a JSON-able description of the encoder, kept with every segment.
        build: segment layout options as :meth:`InvertedIndex.build` takes them (quantization, block_size, ...).
        max_segments: merge the smallest segments once a commit leaves more than this many.
        merge_factor: how many of the smallest segments one merge folds together.
        keep_commits: commit points (and the files they refer to) kept for readers of older snapshots.
    """

    kind = "lsr"

    def __init__(self, path: Path, marker: dict, commit: dict, segments: list[_Segment]):
        self.path, self.marker, self.commit_point = path, marker, commit
        self.segments = segments
        self._pending_ids: dict[str, int] = {}  # doc id -> row of _pending_rows (the last add of an id wins)
        self._pending_rows: list[sp.csr_array] = []
        self._pending_fields: list[Fields] = []  # one per entry of _pending_rows
        self._pending_stored: list[StoredDocs] = []  # one per entry of _pending_rows
        self._pending_deletes: set[str] = set()
        self._index_views()

    # ------------------------------------------------------------------ open
    @classmethod
    def create(cls, path: str | os.PathLike, dim: int, *, vocabulary: Vocabulary | tuple | None = None,
               encoder: dict | None = None, build: dict | None = None, max_segments: int = 10,
               merge_factor: int = 10, keep_commits: int = 2) -> SegmentedIndex:
        path = Path(path)
        if path.exists() and any(path.iterdir()):
            raise FileExistsError(f"{path} exists and is not empty; a new live index needs an empty or absent folder")
        if int(dim) < 1 or max_segments < 1 or merge_factor < 2 or keep_commits < 1:
            raise ValueError("dim and max_segments must be >= 1, merge_factor >= 2, keep_commits >= 1")
        path.mkdir(parents=True, exist_ok=True)
        (path / SEGMENTS).mkdir(exist_ok=True)
        vocab = Vocabulary(*vocabulary) if vocabulary is not None else None
        if vocab is not None and vocab.size != int(dim):
            raise ValueError(f"the vocabulary has {vocab.size} terms but dim is {dim}")
        marker = {"format": FORMAT, "dim": int(dim), "vocabulary": vocab.to_json() if vocab else None,
                  "encoder": encoder, "build": dict(build or {}), "max_segments": int(max_segments),
                  "merge_factor": int(merge_factor), "keep_commits": int(keep_commits)}
        _write_json_atomic(path / MARKER, marker)
        commit = {"format": FORMAT, "generation": 0, "segments": [], "next_segment": 1}
        _write_json_atomic(path / _commit_name(0), commit)
        return cls(path, marker, commit, [])

    @classmethod
    def open(cls, path: str | os.PathLike, *, mmap: bool = True) -> SegmentedIndex:
        """The latest commit of ``path`` (a plain index folder opens as one segment, read from where it is)."""
        path = Path(path)
        marker_path = path / MARKER
        if not marker_path.exists():
            if (path / MANIFEST).exists():  # an index built by InvertedIndex.build / lsr index build
                return cls._from_plain(path, mmap=mmap)
            raise FileNotFoundError(f"{path}: neither a live index ({MARKER}) nor an lsr index ({MANIFEST})")
        try:
            marker = json.loads(marker_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise IndexFormatError(f"{marker_path} is unreadable ({e})") from None
        if marker.get("format") != FORMAT:
            raise IndexFormatError(f"{marker_path} is not an lsr live index marker")
        for generation in sorted(cls._generations(path), reverse=True):
            commit = cls._read_commit(path, generation)
            if commit is not None:
                return cls(path, marker, commit, cls._load_segments(path, commit, mmap))
        raise IndexFormatError(f"{path}: no readable commit point (commit-*.json); the index cannot be opened")

    @classmethod
    def _from_plain(cls, path: Path, mmap: bool) -> SegmentedIndex:
        idx = InvertedIndex.load(path, mmap=mmap)
        marker = {"format": FORMAT, "dim": idx.dim, "vocabulary": idx.manifest.get("vocabulary"),
                  "encoder": idx.manifest.get("encoder"), "build": {}, "max_segments": 10, "merge_factor": 10,
                  "keep_commits": 2, "plain": True}
        commit = {"format": FORMAT, "generation": 0, "next_segment": 1,
                  "segments": [{"name": LEGACY_SEGMENT, "n_docs": idx.n_docs, "deletes": None, "n_deleted": 0}]}
        return cls(path, marker, commit, [_Segment(LEGACY_SEGMENT, idx, np.zeros(0, np.int64), None)])

    @staticmethod
    def _generations(path: Path) -> list[int]:
        return [int(m.group(1)) for p in path.iterdir() if (m := _COMMIT.match(p.name))]

    @staticmethod
    def _read_commit(path: Path, generation: int) -> dict | None:
        p = path / _commit_name(generation)
        try:
            commit = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            logger.warning("%s is unreadable: falling back to the commit before it", p)
            return None
        if commit.get("format") != FORMAT or commit.get("generation") != generation:
            logger.warning("%s is not a commit point of generation %d: skipped", p, generation)
            return None
        return commit

    @staticmethod
    def _segment_dir(path: Path, name: str) -> Path:
        return path if name == LEGACY_SEGMENT else path / SEGMENTS / name

    @classmethod
    def _load_segments(cls, path: Path, commit: dict, mmap: bool) -> list[_Segment]:
        out = []
        for s in commit["segments"]:
            idx = InvertedIndex.load(cls._segment_dir(path, s["name"]), mmap=mmap)
            if idx.n_docs != s["n_docs"]:
                raise IndexFormatError(f"{path}: segment {s['name']} has {idx.n_docs} documents, its commit point "
                                       f"says {s['n_docs']}")
            deleted = np.zeros(0, dtype=np.int64)
            if s.get("deletes"):
                try:
                    deleted = np.load(path / SEGMENTS / s["deletes"])
                except (OSError, ValueError) as e:
                    raise IndexFormatError(f"{path / SEGMENTS / s['deletes']} is unreadable ({e})") from None
                if deleted.size and (deleted.min() < 0 or deleted.max() >= idx.n_docs):
                    raise IndexFormatError(f"{path / SEGMENTS / s['deletes']}: deleted documents out of range")
            out.append(_Segment(s["name"], idx, deleted, s.get("deletes")))
        return out

    def reopen(self) -> SegmentedIndex:
        """The latest commit on disk (this object keeps searching the snapshot it opened)."""
        return SegmentedIndex.open(self.path)

    # ------------------------------------------------------------ live view
    def _index_views(self) -> None:
        """Live positions (segments in order, documents in order, deleted skipped): numpy per segment, no id map
        (ids are looked up per segment, whose tables persist while the segment does)."""
        self._live_pos: list[np.ndarray] = []
        live_locals, starts = [], []
        start = 0
        for seg in self.segments:
            live = np.flatnonzero(~seg.deleted)
            pos = np.full(seg.index.n_docs, -1, dtype=np.int64)
            pos[live] = start + np.arange(live.size)
            self._live_pos.append(pos)
            live_locals.append(live)
            starts.append(start)
            start += live.size
        self._doc_ids = LiveDocIds(self.segments, np.asarray(starts, dtype=np.int64), live_locals, start)
        self._klists: dict | None = None  # the segments as kernel arguments, built on first search
        self._segment_schema: dict[str, str] = {}
        for seg in self.segments:
            for name, kind in seg.index.fields.schema.items():
                self._segment_schema.setdefault(name, kind)

    @property
    def schema(self) -> dict[str, str]:
        """Field name -> type (``keyword`` / ``numeric``) over every segment and buffered document."""
        out = dict(self._segment_schema)
        for f in self._pending_fields:
            for name, kind in f.schema.items():
                out.setdefault(name, kind)
        return out

    def fields_of(self, doc_id: str) -> dict:
        """The metadata fields of a live document (``KeyError`` when it is not live)."""
        return self.document(doc_id)["fields"]

    def document(self, doc_id: str) -> dict:
        """A live document: ``{"id", "fields", "stored", "segment", "vector"}`` (``stored``: its title and
        text when kept, else ``None``; ``vector``: ``(term ids, weights)``). ``KeyError`` when it is not live."""
        found = self._where(str(doc_id))
        if found is None:
            raise KeyError(f"document {doc_id!r} is not in the index")
        seg = self.segments[found[0]]
        return {"id": str(doc_id), "fields": seg.index.fields.record(found[1]),
                "stored": seg.index.stored.get(found[1]) if seg.index.stored is not None else None,
                "segment": seg.name, "vector": seg.index.document_vector(found[1])}

    def locate(self, live_position: int) -> tuple[InvertedIndex, int]:
        """The segment index and local document of a live position (what :class:`SearchResults` hold)."""
        doc_id = self._doc_ids[int(live_position)]
        si, local = self._where(doc_id)
        return self.segments[si].index, local

    def _where(self, doc_id: str) -> tuple[int, int] | None:
        """(segment, local index) of a live document, or None."""
        for si in range(len(self.segments) - 1, -1, -1):  # newest first: an id is live in one segment at most
            seg = self.segments[si]
            local = seg.index.doc_ids.position(doc_id)
            if local is not None and not seg.deleted[local]:
                return si, local
        return None

    @property
    def doc_ids(self) -> LiveDocIds:
        """External ids of the live documents, by live position (what :class:`SearchResults` index)."""
        return self._doc_ids

    @property
    def n_docs(self) -> int:
        return len(self._doc_ids)

    @property
    def n_deleted(self) -> int:
        return sum(s.n_deleted for s in self.segments)

    @property
    def dim(self) -> int:
        return int(self.marker["dim"])

    @property
    def generation(self) -> int:
        return int(self.commit_point["generation"])

    @property
    def vocabulary(self) -> Vocabulary | None:
        return Vocabulary.from_json(self.marker.get("vocabulary"))

    def __contains__(self, doc_id: str) -> bool:
        return self._where(doc_id) is not None

    # ---------------------------------------------------------------- writes
    def add(self, doc_ids: Sequence[str], vectors, fields: Sequence | None = None,
            stored: Sequence | None = None) -> None:
        """Buffer documents (an id that is live, or already buffered, is replaced: upsert). Visible after :meth:`commit`.

        ``fields``: per document, a mapping of metadata fields (or ``None``), see :mod:`index.fields`; a field
        keeps the type it has in the index (a value of the other type is refused). ``stored``: per document
        an object kept for display (its title and text, :mod:`index.stored`), or ``None``.
        """
        self._writable()
        d = as_csr(vectors, name="documents")
        ids = [str(i) for i in doc_ids]
        if d.shape[0] != len(ids):
            raise ValueError(f"{len(ids)} document ids for {d.shape[0]} vectors")
        if d.shape[1] != self.dim:
            raise ValueError(f"vectors have dimension {d.shape[1]}, the index {self.dim}")
        if any(not i for i in ids):
            raise ValueError("document ids must be non-empty strings")
        if fields is not None and len(fields) != len(ids):
            raise ValueError(f"{len(fields)} field records for {len(ids)} documents")
        recs = Fields.from_records(fields if fields is not None else [None] * len(ids), doc_ids=ids,
                                   schema=self.schema)
        if stored is not None and len(stored) != len(ids):
            raise ValueError(f"{len(stored)} stored documents for {len(ids)} documents")
        kept = StoredDocs.from_records(stored if stored is not None else [None] * len(ids))
        base = sum(r.shape[0] for r in self._pending_rows)
        self._pending_rows.append(d)
        self._pending_fields.append(recs)
        self._pending_stored.append(kept)
        for offset, doc_id in enumerate(ids):
            self._pending_ids[doc_id] = base + offset  # a later add of the same id wins
            self._pending_deletes.discard(doc_id)

    def delete(self, doc_ids: Iterable[str], *, missing_ok: bool = False) -> int:
        """Buffer deletions by id; returns how many named a live or buffered document.

        An id neither live nor buffered raises :class:`KeyError` (naming up to five), unless ``missing_ok``.
        """
        self._writable()
        ids = [str(i) for i in doc_ids]
        where = {i: self._where(i) for i in set(ids)}
        unknown = [i for i in ids if where[i] is None and i not in self._pending_ids]
        if unknown and not missing_ok:
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise KeyError(f"{len(unknown)} ids are not in the index: {', '.join(map(repr, unknown[:5]))}{more} "
                           "(missing_ok=True to ignore them)")
        found = 0
        for i in ids:
            hit = False
            if i in self._pending_ids:
                del self._pending_ids[i]
                hit = True
            if where[i] is not None:
                self._pending_deletes.add(i)
                hit = True
            found += hit
        return found

    @property
    def has_pending(self) -> bool:
        return bool(self._pending_ids or self._pending_deletes)

    def _writable(self) -> None:
        if self.marker.get("plain"):
            raise ValueError(f"{self.path} is a plain index folder, read-only as a live index; convert it with "
                             "SegmentedIndex.from_index(path, new_folder) (CLI: lsr index add writes into a live index)")

    def commit(self) -> int:
        """Write the buffered changes as a new commit point; returns its generation (unchanged if nothing changed)."""
        self._writable()
        if not self.has_pending:
            return self.generation
        with write_lock(self.path):
            latest = max(self._generations(self.path))
            if latest != self.generation:
                raise RuntimeError(f"{self.path}: another writer committed generation {latest} after this one opened "
                                   f"generation {self.generation}; reopen and apply the changes again")
            segments = [dict(s) for s in self.commit_point["segments"]]
            next_segment = int(self.commit_point.get("next_segment", 1))
            generation = self.generation + 1
            # tombstones: deletes and upserted ids, per segment
            touched: dict[int, list[int]] = {}
            for doc_id in self._pending_deletes | set(self._pending_ids):  # deletes, and upserts of live ids
                found = self._where(doc_id)
                if found is not None:
                    touched.setdefault(found[0], []).append(found[1])
            for si, locals_ in touched.items():
                seg = self.segments[si]
                deleted = np.union1d(np.flatnonzero(seg.deleted), np.asarray(locals_, dtype=np.int64))
                name = f"{seg.name}.del-{generation:010d}.npy"
                _save_array_atomic(self.path / SEGMENTS / name, deleted.astype(np.int64))
                segments[si].update(deletes=name, n_deleted=int(deleted.size))
            # the added documents: one new segment, in the order they were (last) added
            if self._pending_ids:
                rows = sp.csr_array(sp.vstack(self._pending_rows, format="csr"))
                order = sorted(self._pending_ids.items(), key=lambda kv: kv[1])
                name = f"seg-{next_segment:08d}"
                next_segment += 1
                picked = np.asarray([r for _, r in order])
                self._write_segment(name, [i for i, _ in order], rows[picked],
                                    Fields.concat(self._pending_fields).take(picked),
                                    StoredDocs.concat(self._pending_stored).take(picked))
                segments.append({"name": name, "n_docs": len(order), "deletes": None, "n_deleted": 0})
            segments = [s for s in segments if s["n_docs"] > s["n_deleted"]]  # fully deleted: dropped
            commit = {"format": FORMAT, "generation": generation, "segments": segments,
                      "next_segment": next_segment}
            _write_json_atomic(self.path / _commit_name(generation), commit)
            self._adopt(commit)
            if len(self.segments) > int(self.marker["max_segments"]):
                self._merge(self._merge_candidates())
            self._collect_garbage()
        return self.generation

    def _write_segment(self, name: str, ids: list[str], vectors: sp.csr_array, fields: Fields,
                       stored: StoredDocs) -> None:
        target = self.path / SEGMENTS / name
        if target.exists():  # left by a commit that crashed before its commit point: no commit refers to it
            shutil.rmtree(target)
        InvertedIndex.build(vectors, doc_ids=ids, vocabulary=self.vocabulary, encoder=self.marker.get("encoder"),
                            fields=fields, stored=stored if any(len(s) for s in stored.docs) else None,
                            **self.marker.get("build", {})).save(target, overwrite=False)

    def _adopt(self, commit: dict) -> None:
        """Switch to ``commit``: segments it keeps stay loaded (with their id tables); new ones are opened."""
        self.commit_point = commit
        loaded = {seg.name: seg for seg in self.segments}
        segments = []
        for entry in commit["segments"]:
            seg = loaded.get(entry["name"])
            if seg is None:
                segments.extend(self._load_segments(self.path, {"segments": [entry]}, mmap=True))
                continue
            if entry.get("deletes") != seg.deletes_file:
                deleted = np.load(self.path / SEGMENTS / entry["deletes"])
                seg = _Segment(seg.name, seg.index, deleted, entry["deletes"])
            segments.append(seg)
        self.segments = segments
        self._pending_ids, self._pending_rows, self._pending_deletes = {}, [], set()
        self._pending_fields, self._pending_stored = [], []
        self._index_views()

    # ---------------------------------------------------------------- merges
    def _merge_candidates(self) -> list[int]:
        factor = int(self.marker["merge_factor"])
        by_size = sorted(range(len(self.segments)), key=lambda i: (self.segments[i].n_live, i))
        excess = len(self.segments) - int(self.marker["max_segments"]) + 1
        return sorted(by_size[:max(2, min(factor, max(excess, 2)))])

    def compact(self) -> int:
        """Merge every segment into one (deleted documents dropped); commits; returns the generation."""
        self._writable()
        if self.has_pending:
            self.commit()
        with write_lock(self.path):
            if len(self.segments) > 1 or any(s.n_deleted for s in self.segments):
                self._merge(list(range(len(self.segments))))
                self._collect_garbage()
        return self.generation

    def _merge(self, which: list[int]) -> None:
        """Fold the segments ``which`` into one new segment (live documents, in live order) and commit."""
        if not which:
            return
        parts, ids, fields, stored = [], [], [], []
        for si in which:
            seg = self.segments[si]
            live = np.flatnonzero(~seg.deleted)
            parts.append(seg.index.document_vectors()[live])
            fields.append(seg.index.fields.take(live))
            stored.append(seg.index.stored.take(live) if seg.index.stored is not None
                          else StoredDocs.empty(live.size))
            seg_ids = seg.index.doc_ids
            ids.extend(seg_ids[int(i)] for i in live)
        segments = [dict(s) for s in self.commit_point["segments"]]
        next_segment = int(self.commit_point.get("next_segment", 1))
        name = f"seg-{next_segment:08d}"
        generation = self.generation + 1
        if ids:
            self._write_segment(name, ids, sp.csr_array(sp.vstack(parts, format="csr")), Fields.concat(fields),
                                StoredDocs.concat(stored))
        merged = {"name": name, "n_docs": len(ids), "deletes": None, "n_deleted": 0}
        first = min(which)
        kept = [s for i, s in enumerate(segments) if i not in set(which)]
        # the merged segment takes the place of the first merged one (live order, and so the order that breaks
        # ties, changes only when the merged segments were not neighbours)
        before = sum(1 for i in range(first) if i not in set(which))
        if ids:
            kept.insert(before, merged)
        commit = {"format": FORMAT, "generation": generation, "segments": kept, "next_segment": next_segment + 1}
        _write_json_atomic(self.path / _commit_name(generation), commit)
        logger.info("merged %d segments into %s (%d documents), generation %d", len(which), name, len(ids), generation)
        self._adopt(commit)

    def _collect_garbage(self) -> None:
        """Remove commit points beyond the last ``keep_commits`` and files none of the kept ones refers to."""
        gens = sorted(self._generations(self.path))
        keep = gens[-int(self.marker["keep_commits"]):]
        referenced: set[str] = set()
        for g in keep:
            commit = self._read_commit(self.path, g)
            if commit is None:
                continue
            for s in commit["segments"]:
                referenced.add(s["name"])
                if s.get("deletes"):
                    referenced.add(s["deletes"])
        for g in gens:
            if g not in keep:
                (self.path / _commit_name(g)).unlink(missing_ok=True)
        for p in (self.path / SEGMENTS).iterdir():
            if p.name not in referenced and not p.name.startswith("."):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)

    # ---------------------------------------------------------------- search
    def search(self, queries, k: int = 10, options=None, *, filter=None, **search_options) -> SearchResults:
        """Top-k live documents per query, exact across segments (see the module documentation).

        Args:
            queries: ``n_queries x dim`` query vectors.
            k: results per query (capped at the number of live documents).
            options: :class:`~index.searcher.SearchOptions` (engine, approx, threads), or keywords as
                :meth:`InvertedIndex.search` takes them.
            filter: a metadata filter (:mod:`index.fields`); ``k`` matching documents come back whenever
                ``k`` match with a score above zero.

        Returns:
            :class:`SearchResults` whose ``doc_idx`` index :attr:`doc_ids`.
        """
        from .fields import parse_filter
        from .inverted import check_vocabulary
        from .oracle import _check_k
        from .threads import numba_threads

        unknown = set(search_options) - {"engine", "approx", "threads", "vocabulary"}
        if unknown:
            raise TypeError(f"unknown search options: {', '.join(sorted(unknown))}")
        engine = search_options.get("engine", "auto")
        approx, threads = search_options.get("approx"), search_options.get("threads")
        if options is not None:
            if options.searcher != "lsr":
                raise ValueError(f"a live index is searched by lsr's engines, not {options.engine!r}")
            engine, approx, threads = options.engine, options.approx, options.threads
        if engine == "lsr":
            engine = "auto"
        check_vocabulary(search_options.get("vocabulary"), self.vocabulary)
        q = as_csr(queries, dim=self.dim, name="queries")  # checked once for every segment
        k = _check_k(k, self.n_docs)
        n = q.shape[0]
        out = empty_results(n, k)
        schema = self.schema if filter is not None else None  # the field types matter only to a filter
        if filter is not None:
            parse_filter(filter, schema)  # a malformed filter fails even on an empty index
        if self.n_docs == 0 or n == 0:
            return out
        with numba_threads(threads):
            if engine != "oracle" and (approx is None or approx.validate().exact or approx.uses_blocks):
                return self._search_in_one_heap(q, k, engine, approx, filter, schema, out)
            return self._merge_segment_lists(q, k, engine, approx, filter, schema, out)

    def _merge_segment_lists(self, q, k: int, engine: str, approx, filter, schema, out: SearchResults) -> SearchResults:
        """Each segment's own top-k (the oracle, the pruned approximate engine), merged by score, then live position."""
        cand_idx, cand_scores = [], []
        for seg, pos in zip(self.segments, self._live_pos):
            if seg.n_live == 0:
                continue
            allow = self._allowed(seg, filter, schema)
            if allow is not None and not allow.any():
                continue
            seg_approx = seg.index.check_engine(engine, approx)
            res = seg.index._execute(q, min(k, seg.index.n_docs), engine, seg_approx, allow).results
            cand_idx.append(np.where(res.doc_idx >= 0, pos[np.maximum(res.doc_idx, 0)], -1))
            cand_scores.append(res.scores)
        if not cand_idx:
            return out
        idx = np.concatenate(cand_idx, axis=1)
        scores = np.concatenate(cand_scores, axis=1).astype(np.float32)
        for i in range(q.shape[0]):
            valid = idx[i] >= 0
            order = np.lexsort((np.where(valid, idx[i], np.iinfo(np.int64).max), -scores[i], ~valid))[:k]
            order = order[valid[order]]
            out.doc_idx[i, :order.size] = idx[i][order]
            out.scores[i, :order.size] = scores[i][order]
        return out

    @staticmethod
    def _allowed(seg: _Segment, filter, schema) -> np.ndarray | None:
        """A segment's mask of live documents that match ``filter`` (``None``: all of them)."""
        if filter is None:
            return seg.live
        matched = seg.index.fields.mask(filter, schema=schema)
        return matched if seg.live is None else matched & seg.live

    def _kernel_segments(self) -> dict | None:
        """The segments' arrays as Numba typed lists for :func:`~index.kernels.segments_search` (largest
        segment first), built once per snapshot; ``None`` when the segments' layouts differ (a plain index
        of another quantization): then each segment is searched on its own and the lists merged."""
        if self._klists is not None:
            return self._klists or None
        from numba.typed import List

        def frozen(a, dtype=None):
            v = np.asarray(a if dtype is None else np.asarray(a, dtype=dtype)).view()
            v.flags.writeable = False
            return v

        order = sorted((i for i, seg in enumerate(self.segments) if seg.n_live),
                       key=lambda i: (-self.segments[i].n_live, i))
        if not order or len({self.segments[i].index._k["posting_impacts"].dtype for i in order}) != 1:
            self._klists = {}
            return None
        lists = {name: List() for name in ("toffs", "pdocss", "pimps", "poss", "bm_offs", "bm_blockss", "bm_maxs",
                                           "bm_starts", "allows", "block_allows")}
        for i in order:
            seg, a = self.segments[i], self.segments[i].index._k
            lists["toffs"].append(frozen(a["term_offsets"]))
            lists["pdocss"].append(frozen(a["posting_docs"]))
            lists["pimps"].append(frozen(a["posting_impacts"]))
            lists["poss"].append(frozen(self._live_pos[i], np.int32))
            for key, name in (("bm_offsets", "bm_offs"), ("bm_blocks", "bm_blockss"), ("bm_max", "bm_maxs"),
                              ("bm_start", "bm_starts")):
                lists[name].append(frozen(a[key]))
            allow8 = np.zeros(0, dtype=np.uint8) if seg.live is None else seg.live.view(np.uint8)
            lists["allows"].append(frozen(allow8))
            lists["block_allows"].append(frozen(seg.index.block_mask(allow8)))
        self._klists = dict(lists, order=order, filters={},
                            scales=np.asarray([self.segments[i].index.scale for i in order], dtype=np.float32),
                            seg_docs=np.asarray([self.segments[i].index.n_docs for i in order], dtype=np.int64),
                            block_sizes=np.asarray([self.segments[i].index.block_size for i in order], dtype=np.int64))
        return self._klists

    def _search_in_one_heap(self, q, k: int, engine: str, approx, filter, schema, out: SearchResults) -> SearchResults:
        """Exact (and block-approximate) search of every segment into one heap per query (see
        :func:`~index.kernels.segments_search`); per-segment search and a merge where the lists cannot be made."""
        import numba
        from numba.typed import List

        from . import kernels
        from .inverted import _EXACT, DEFAULT_SEED_BLOCKS

        kl = self._kernel_segments()
        if kl is None:
            return self._merge_segment_lists(q, k, engine, approx, filter, schema, out)
        order = kl["order"]
        for i in order:  # every segment can run it (block-max metadata); approx comes back validated
            approx = self.segments[i].index.check_engine(engine, approx)
        allows, block_allows = kl["allows"], kl["block_allows"]
        if filter is not None:
            key = json.dumps(filter, sort_keys=True)
            cached = kl["filters"].get(key)
            if cached is None:
                allows, block_allows = List(), List()
                for i in order:
                    seg = self.segments[i]
                    allow8 = self._allowed(seg, filter, schema).view(np.uint8)
                    allow8.flags.writeable = False
                    allows.append(allow8)
                    block_allows.append(seg.index.block_mask(allow8))
                if len(kl["filters"]) >= FILTER_CACHE:
                    kl["filters"].pop(next(iter(kl["filters"])))
                kl["filters"][key] = cached = (allows, block_allows)
            allows, block_allows = cached
        n = q.shape[0]
        use_bm = np.empty((len(order), n), dtype=np.uint8)
        for row, i in enumerate(order):
            if approx is not None or engine == "blockmax":
                use_bm[row] = 1
            elif engine == "taat":
                use_bm[row] = 0
            else:
                use_bm[row] = self.segments[i].index.choose_engines(q)
        ap = approx or _EXACT
        stats = np.zeros((n, 3), dtype=np.int64)
        args = (q.indptr.astype(np.int64, copy=False), q.indices.astype(np.int32, copy=False),
                q.data.astype(np.float32, copy=False), kl["toffs"], kl["pdocss"], kl["pimps"], kl["scales"],
                kl["seg_docs"], allows, kl["poss"], kl["bm_offs"], kl["bm_blockss"], kl["bm_maxs"], kl["bm_starts"],
                block_allows, kl["block_sizes"], use_bm, np.int64(k), np.float32(ap.alpha), np.int64(ap.max_blocks),
                np.int64(DEFAULT_SEED_BLOCKS), np.int64(ap.query_terms))
        nt = min(numba.get_num_threads(), n)
        if nt <= 1:
            kernels.segments_search(*args, np.int64(0), np.int64(n), out.doc_idx, out.scores, stats)
            return out
        from concurrent.futures import ThreadPoolExecutor

        bounds = np.linspace(0, n, nt + 1).astype(np.int64)
        with ThreadPoolExecutor(nt) as pool:  # the kernel runs without the GIL: one slice of the batch per thread
            jobs = [pool.submit(kernels.segments_search, *args, lo, hi, out.doc_idx, out.scores, stats)
                    for lo, hi in zip(bounds[:-1], bounds[1:])]
            for job in jobs:
                job.result()
        return out

    # ------------------------------------------------- what the tuner reads
    def check_queries(self, queries, vocabulary: Vocabulary | tuple | None = None) -> sp.csr_array:
        """Validate queries against this index (dimension and, if given, vocabulary)."""
        from .inverted import check_vocabulary

        check_vocabulary(vocabulary, self.vocabulary)
        return as_csr(queries, dim=self.dim, name="queries")

    def doc_frequencies(self) -> np.ndarray:
        """Documents per term, summed over the segments (deleted documents still counted until merged away)."""
        df = np.zeros(self.dim, dtype=np.int64)
        for seg in self.segments:
            df += seg.index.doc_frequencies()
        return df

    @property
    def has_block_max(self) -> bool:
        """Every segment with live documents has block-max metadata (block-max search needs it in each)."""
        return all(seg.index.has_block_max for seg in self.segments if seg.n_live)

    def size_bytes(self) -> int:
        return sum(s.index.size_bytes() for s in self.segments)

    def describe(self) -> dict:
        return {"kind": "lsr-live", "generation": self.generation, "n_docs": self.n_docs,
                "n_deleted": self.n_deleted, "dim": self.dim, "fields": self.schema,
                "segments": [{"name": s.name, "n_docs": s.index.n_docs, "n_deleted": s.n_deleted}
                             for s in self.segments], "bytes": self.size_bytes()}

    # ------------------------------------------------------------ conversion
    @classmethod
    def from_index(cls, index: InvertedIndex | str | os.PathLike, path: str | os.PathLike, **options) -> SegmentedIndex:
        """A new live index at ``path`` whose first segment holds ``index``'s documents (copied, same layout)."""
        if not isinstance(index, InvertedIndex):
            index = InvertedIndex.load(index)
        live = cls.create(path, index.dim, vocabulary=index.vocabulary if index.manifest.get("vocabulary") else None,
                          encoder=index.manifest.get("encoder"), **options)
        if index.n_docs:
            live.add(index.doc_ids.tolist(), index.document_vectors())
            live.commit()
        return live
