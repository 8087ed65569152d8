"""Milvus as a searcher: learned sparse vectors in a ``SPARSE_FLOAT_VECTOR`` field, for users who outgrow one machine.

A :class:`MilvusIndex` keeps one Milvus collection: a ``VARCHAR`` primary key (the document id) and a
``SPARSE_FLOAT_VECTOR`` field indexed with ``SPARSE_INVERTED_INDEX`` (or ``SPARSE_WAND``) under the inner
product, which is the sparse dot product lsr's engine computes. Documents are inserted in batches (with a
progress bar), upserted and deleted by id, and searches return lsr's :class:`~index.SearchResults`, document
indices counted in the order documents were first added.

Where it runs is the ``uri``:

* a file path (the default: ``milvus.db`` inside the searcher's folder) runs **Milvus Lite**, embedded in
  this process (``pip install 'lsr[milvus]'``: pymilvus and milvus-lite);
* ``http://host:19530`` reaches a **Milvus server or cluster** (Milvus standalone with Docker Compose, or a
  Kubernetes cluster with the Milvus Operator / Helm chart; ``token`` carries ``user:password`` or an API
  key). The same code runs against both; lsr's tests run on Milvus Lite.

The folder written by :meth:`MilvusIndex.save` holds ``manifest.json`` (uri, collection, index type, counts,
vocabulary, encoder) and ``doc_ids.json`` (the id of each document index); for Milvus Lite also the database.

Example:
    >>> from lsr.milvus import MilvusIndex
    >>> m = MilvusIndex.build("idx/scifact-milvus", ids, vectors)                   # doctest: +SKIP
    >>> m.search(encoder.encode_queries(["insulin resistance"]), k=10)           # doctest: +SKIP
    >>> m.add(["new-doc"], new_vectors); m.delete(["old-doc"])                    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from index import SearchResults, Vocabulary
from index.results import empty_results, write_ranked
from index.searcher import SearcherDefaults
from index.sparse import as_csr
from index.storage import MANIFEST, atomic_dir, copy_artifact, directory_size

logger = logging.getLogger(__name__)

FORMAT = "lsr-milvus"
FORMAT_VERSION = 1
LITE_DB = "milvus.db"
DOC_IDS = "doc_ids.json"
INDEX_TYPES = ("SPARSE_INVERTED_INDEX", "SPARSE_WAND")
#: Milvus caps a VARCHAR primary key's length; lsr's ids must fit
MAX_ID_BYTES = 512
#: Milvus caps ``limit`` (top-k) of one search
MAX_K = 16_384


def _client(uri: str, token: str | None = None):
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise ImportError("the Milvus engine needs pymilvus (and milvus-lite for a local file): "
                          "pip install 'lsr[milvus]'") from None
    return MilvusClient(uri=uri, token=token or "")


class MilvusIndex(SearcherDefaults):
    """Document vectors in a Milvus collection, searchable like lsr's own index.

    Create with :meth:`build` or open with :meth:`load`; do not call the constructor directly.
    """

    kind = "milvus"

    def __init__(self, path: Path | None, manifest: dict, doc_ids: list[str], token: str | None = None):
        self.path = path
        self.manifest = manifest
        self.doc_ids = doc_ids
        self._position = {d: i for i, d in enumerate(doc_ids)}
        self.dim = int(manifest["dim"])
        self.collection = manifest["collection"]
        self.vocabulary = Vocabulary.from_json(manifest.get("vocabulary"))
        self._token = token
        self._client = None

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, path: str | os.PathLike, doc_ids: Sequence[str], vectors, *, uri: str | None = None,
              token: str | None = None, collection: str = "lsr", index_type: str = "SPARSE_INVERTED_INDEX",
              vocabulary: Vocabulary | None = None, encoder: dict | None = None, batch_size: int = 1000,
              overwrite: bool = False, show_progress: bool = True) -> MilvusIndex:
        """Create the collection, insert every document, build the sparse index, and save the folder.

        Args:
            path: the searcher's folder (manifest, document ids, and the Milvus Lite database by default).
            doc_ids: one unique id per row of ``vectors`` (at most 512 UTF-8 bytes).
            vectors: ``n_docs x dim`` (the sparse contract).
            uri: where Milvus runs: ``None`` for Milvus Lite in ``path/milvus.db``, or ``http://host:19530``.
            token: credentials for a server (``user:password`` or an API key).
            collection: the collection's name; an existing one of that name is replaced with ``overwrite``.
            index_type: ``SPARSE_INVERTED_INDEX`` (exact) or ``SPARSE_WAND``.
            batch_size: documents per insert call.
        """
        if index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be one of {INDEX_TYPES}, got {index_type!r}")
        m = as_csr(vectors, name="documents")
        ids = [str(d) for d in doc_ids]
        if len(ids) != m.shape[0]:
            raise ValueError(f"{len(ids)} document ids for {m.shape[0]} documents")
        if len(set(ids)) != len(ids):
            raise ValueError("document ids must be unique")
        long = next((d for d in ids if len(d.encode("utf-8")) > MAX_ID_BYTES), None)
        if long is not None:
            raise ValueError(f"document id {long[:40]!r}... is longer than Milvus' {MAX_ID_BYTES} bytes")
        from . import __version__

        path = Path(path)
        t0 = time.perf_counter()
        with atomic_dir(path, overwrite=overwrite, kind="milvus") as tmp:
            lite = uri is None
            db_uri = str(tmp / LITE_DB) if lite else uri
            client = _client(db_uri, token)
            try:
                if client.has_collection(collection):
                    if not overwrite:
                        raise FileExistsError(f"Milvus at {db_uri} already has a collection {collection!r}; "
                                              "pass overwrite=True or choose another collection name")
                    client.drop_collection(collection)
                _create_collection(client, collection, index_type)
                _insert(client, collection, ids, m, batch_size, show_progress, upsert=False)
                client.flush(collection)
            finally:
                client.close()
                if lite:
                    _release_lite(db_uri)  # the embedded server holds the database until released
            manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__,
                        "uri": None if lite else uri, "collection": collection, "index_type": index_type,
                        "n_docs": len(ids), "dim": int(m.shape[1]),
                        "vocabulary": vocabulary.to_json() if vocabulary is not None else None,
                        "encoder": encoder, "build_seconds": round(time.perf_counter() - t0, 3)}
            (tmp / DOC_IDS).write_text(json.dumps(ids), encoding="utf-8")
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        logger.info("Milvus collection %r of %d documents built in %.1fs", collection, len(ids),
                    time.perf_counter() - t0)
        return cls.load(path, token=token)

    @classmethod
    def from_vectors(cls, path: str | os.PathLike, doc_ids: Sequence[str], vectors, *, terms=None,
                     vocabulary: Vocabulary | None = None, encoder: dict | None = None, overwrite: bool = False,
                     show_progress: bool = False, **options) -> MilvusIndex:
        """The :class:`~index.searcher.Searcher` constructor every engine shares; see :meth:`build`."""
        return cls.build(path, doc_ids, vectors, vocabulary=vocabulary, encoder=encoder, overwrite=overwrite,
                         show_progress=show_progress, **options)

    @classmethod
    def load(cls, path: str | os.PathLike, *, token: str | None = None) -> MilvusIndex:
        """Open a folder written by :meth:`build` (the connection opens on first use)."""
        path = Path(path)
        mpath = path / MANIFEST
        if not mpath.is_file():
            raise FileNotFoundError(f"{mpath} not found: {path} is not an lsr Milvus searcher "
                                    "(build one with MilvusIndex.build)")
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
            ids = json.loads((path / DOC_IDS).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: corrupt or missing {MANIFEST} / {DOC_IDS} ({e}); rebuild it") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(f"{mpath} is not an lsr Milvus manifest; point at a folder MilvusIndex.build wrote")
        if manifest.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"{mpath}: format version {manifest['format_version']} is newer than this lsr reads")
        if not isinstance(ids, list) or len(ids) != manifest.get("n_docs"):
            raise ValueError(f"{path / DOC_IDS} does not list the manifest's {manifest.get('n_docs')} documents")
        if manifest.get("uri") is None and not (path / LITE_DB).exists():
            raise FileNotFoundError(f"{path / LITE_DB} is missing: the Milvus Lite database of this searcher")
        return cls(path, manifest, ids, token=token)

    # ----------------------------------------------------------------- connection
    @property
    def uri(self) -> str:
        return self.manifest["uri"] or str(self.path / LITE_DB)

    def client(self):
        """The open MilvusClient (connected on first use)."""
        if self._client is None:
            self._client = _client(self.uri, self._token)
            self._client.load_collection(self.collection)
        return self._client

    def close(self) -> None:
        """Close the connection (and stop Milvus Lite's embedded server for this database)."""
        if self._client is not None:
            self._client.close()
            self._client = None
            if self.manifest["uri"] is None:
                _release_lite(self.uri)

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    @property
    def n_docs(self) -> int:
        """Document indices handed out so far (deleted documents keep theirs; they are never returned)."""
        return len(self.doc_ids)

    # ------------------------------------------------------------------ searching
    def search(self, queries, k: int = 10, options=None, *, vocabulary: Vocabulary | None = None) -> SearchResults:
        """Top-k documents of each query row, ties by smaller document index.

        Args:
            queries: ``n_queries x dim`` query vectors (the sparse contract).
            k: documents per query (capped at the documents added, and at Milvus' limit of 16,384).
            options: :class:`index.searcher.SearchOptions` for the ``milvus`` engine (threads and
                approximate knobs do not apply: Milvus' sparse inverted index is exact).
            vocabulary: the queries' vocabulary; refused if it is not the index's.
        """
        if options is not None and options.searcher != self.kind:
            raise ValueError(f"options for the {options.engine!r} engine given to the Milvus searcher")
        if vocabulary is not None and self.vocabulary is not None and Vocabulary(*vocabulary) != self.vocabulary:
            raise ValueError(f"queries in vocabulary {vocabulary[0]!r}, the Milvus index in {self.vocabulary.id!r}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = int(min(k, max(self.n_docs, 1), MAX_K))
        q = as_csr(queries, dim=self.dim, name="queries")
        out = empty_results(q.shape[0], k)
        rows = [i for i in range(q.shape[0]) if q.indptr[i + 1] > q.indptr[i]]  # Milvus refuses empty vectors
        if not rows:
            return out
        data = [_as_dict(q, i) for i in rows]
        # ask for more than k: equal scores come back in Milvus' order, lsr breaks ties by document index
        hits = self.client().search(self.collection, data=data, limit=min(MAX_K, k + 16), anns_field="vector",
                                    search_params={"metric_type": "IP"}, output_fields=[])
        for i, row in zip(rows, hits):
            idx = np.fromiter((self._index_of(h["id"]) for h in row), dtype=np.int64, count=len(row))
            scores = np.fromiter((h["distance"] for h in row), dtype=np.float32, count=len(row))
            keep = scores > 0
            write_ranked(out, i, idx[keep], scores[keep])
        return out

    def _index_of(self, doc_id: str) -> int:
        i = self._position.get(doc_id)
        if i is None:
            raise ValueError(f"Milvus returned document {doc_id!r}, which {self.path / DOC_IDS} does not list; "
                             "the collection was changed outside lsr: rebuild it")
        return i

    # ------------------------------------------------------------------- changes
    def add(self, doc_ids: Sequence[str], vectors, *, batch_size: int = 1000, show_progress: bool = False) -> None:
        """Insert documents, or replace those whose id exists (upsert); new ids get the next document indices."""
        m = as_csr(vectors, dim=self.dim, name="documents")
        ids = [str(d) for d in doc_ids]
        if len(ids) != m.shape[0]:
            raise ValueError(f"{len(ids)} document ids for {m.shape[0]} documents")
        if len(set(ids)) != len(ids):
            raise ValueError("document ids must be unique within one add")
        _insert(self.client(), self.collection, ids, m, batch_size, show_progress, upsert=True)
        self.client().flush(self.collection)
        for d in ids:
            if d not in self._position:
                self._position[d] = len(self.doc_ids)
                self.doc_ids.append(d)
        self._save_ids()

    def delete(self, doc_ids: Sequence[str]) -> None:
        """Remove documents by id (their document indices are not reused)."""
        ids = [str(d) for d in doc_ids]
        unknown = [d for d in ids if d not in self._position]
        if unknown:
            raise KeyError(f"unknown document id {unknown[0]!r}: not in this Milvus searcher")
        self.client().delete(self.collection, ids=ids)
        self.client().flush(self.collection)

    def _save_ids(self) -> None:
        if self.path is None:
            return
        from eval.atomic import atomic_file

        with atomic_file(self.path / DOC_IDS) as tmp:
            tmp.write_text(json.dumps(self.doc_ids), encoding="utf-8")
        manifest = dict(self.manifest, n_docs=len(self.doc_ids))
        with atomic_file(self.path / MANIFEST) as tmp:
            tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        self.manifest = manifest

    # ---------------------------------------------------------------- protocol
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Copy the folder (with a Milvus Lite database) to ``path``; a server collection stays where it is."""
        self.close()  # Milvus Lite's database is consistent once closed
        return copy_artifact(self.path, path, overwrite=overwrite, kind="milvus")

    def size_bytes(self) -> int:
        """Bytes of the folder (with Milvus Lite, the database; a server's storage is not counted)."""
        return directory_size(self.path) if self.path is not None else 0

    def describe(self) -> dict:
        m = self.manifest
        return {"kind": self.kind, "n_docs": self.n_docs, "dim": self.dim, "uri": m["uri"] or "milvus-lite",
                "collection": self.collection, "index_type": m["index_type"], "vocabulary": m.get("vocabulary"),
                "bytes": self.size_bytes()}

    def __repr__(self) -> str:
        return f"MilvusIndex({self.uri!r}, collection={self.collection!r}, {self.n_docs} documents)"


def _release_lite(db_path: str) -> None:
    """Stop Milvus Lite's in-process server for a database file, which keeps it locked while it runs."""
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return
    server_manager_instance.release_server(db_path)


@contextlib.contextmanager
def _quiet_grpc_server():
    """Milvus Lite's embedded gRPC server logs an ERROR with a traceback for a call its adapter does not
    implement, which pymilvus makes while creating a collection and then does without; hide that one
    logger for the call (its level is restored)."""
    log = logging.getLogger("grpc._server")
    before = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(before)


def _create_collection(client, name: str, index_type: str) -> None:
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
    schema.add_field("vector", DataType.SPARSE_FLOAT_VECTOR)
    params = client.prepare_index_params()
    params.add_index(field_name="vector", index_type=index_type, metric_type="IP")
    with _quiet_grpc_server():
        client.create_collection(name, schema=schema, index_params=params)


def _as_dict(m, i: int) -> dict[int, float]:
    lo, hi = m.indptr[i], m.indptr[i + 1]
    return dict(zip(m.indices[lo:hi].tolist(), m.data[lo:hi].tolist()))


def _insert(client, collection: str, ids: list[str], m, batch_size: int, show_progress: bool, upsert: bool) -> None:
    """Write documents in batches. Milvus stores no empty sparse vector: a document without terms matches no
    query, so it is left out (and, on an upsert, its earlier version deleted); it keeps its document index."""
    write = client.upsert if upsert else client.insert
    lengths = np.diff(m.indptr)
    empty = [ids[i] for i in np.flatnonzero(lengths == 0)]
    if empty:
        logger.info("%d documents without terms are not stored in Milvus (they match no query)", len(empty))
        if upsert:
            client.delete(collection, ids=empty)
    bar = tqdm(total=len(ids), desc="milvus insert", unit="doc", disable=not show_progress, mininterval=1.0)
    for lo in range(0, len(ids), batch_size):
        hi = min(lo + batch_size, len(ids))
        rows = [{"id": ids[i], "vector": _as_dict(m, i)} for i in range(lo, hi) if lengths[i]]
        if rows:
            write(collection, rows)
        bar.update(hi - lo)
    bar.close()
