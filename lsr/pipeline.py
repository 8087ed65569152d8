"""The pipeline: encode a corpus, build an index, search it, evaluate it.

Five lines from a data set to a result::

    from lsr import load_encoder, evaluate_dataset
    from eval import load_dataset
    ds = load_dataset("scifact")
    result = evaluate_dataset(ds, load_encoder("bm25"))
    print(result.effectiveness["nDCG@10"], result.efficiency["search_latency"]["p50_ms"])

A :class:`Retriever` is a composition: the encoder, lsr's index of its vectors, other searchers of the
same vectors (Lucene, Milvus: engines by name from ``index.searcher.ENGINES``) and an optional second
stage (SLIM's late interaction). Queries are always encoded in the index's vocabulary. On disk it is
the index directory with the encoder in ``encoder/``, each searcher in the folder of its name, the
second stage in ``slim/``, and a manifest listing these parts with their sizes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Sequence, Sized
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from eval import Dataset, Report, SystemResult, evaluate, write_trec_run
from eval.efficiency import flops, latency_stats, throughput, vector_length_stats
from eval.metrics import parse_measures
from index import InvertedIndex, SearchResults, atomic_dir, directory_size
from index.oracle import _check_k
from index.searcher import ENGINES as ENGINE_REGISTRY
from index.searcher import BuildOptions, SearchOptions, searcher_class
from index.storage import write_lock
from index.warmup import WARMUP_NOTE, warm_up

from .encoders import SparseEncoder, load_encoder
from .encoders.base import ENCODER_FOLDER, folder_identity

logger = logging.getLogger(__name__)

ENCODER_SUBDIR = ENCODER_FOLDER
RERANKER_SUBDIR = "slim"


class _CorpusTexts:
    """One pass over ``(doc_id, text)`` pairs, ``(doc_id, text, fields)`` triples, ``eval.datasets.Document``
    ``(doc_id, text, fields, stored)`` or plain texts, yielding texts and collecting ids (with metadata fields,
    :mod:`index.fields`, and, when ``store``, what to keep of each document for display)."""

    def __init__(self, corpus, store: bool = False):
        self.corpus = corpus
        self.store = store
        self.stored: list = []
        self._items = iter(corpus)
        first = next(self._items, None)
        if first is None:
            raise ValueError("the corpus is empty: nothing to index")
        self._items = itertools.chain([first], self._items)
        self.ids: list[str] = []
        self.fields: list = []  # per document its fields mapping or None (filled only for triples)
        self.plain = False
        self.n = 0

    def __iter__(self):
        for item in self._items:
            if isinstance(item, str):
                self.plain = True
                text = item
            elif len(item) in (3, 4):
                did, text, fields = item[:3]
                self.ids.append(did)
                self.fields.extend([None] * (len(self.ids) - 1 - len(self.fields)))
                self.fields.append(fields)
            else:
                did, text = item
                self.ids.append(did)
            if self.store:
                self.stored.append(item[3] if not isinstance(item, str) and len(item) == 4 else {"text": text})
            self.n += 1
            yield text

    def __len__(self):  # lets progress bars show a total when the corpus knows its size
        if isinstance(self.corpus, Sized):
            return len(self.corpus)
        known = getattr(self.corpus, "known_count", None)
        if known is not None:
            return known
        raise TypeError("size unknown")


class Retriever:
    """An encoder, the searchers of its vectors, and an optional second stage: one folder on disk.

    * ``index``: lsr's :class:`~index.InvertedIndex` (always there: it holds the vectors);
    * ``searchers``: other engines of the same vectors by registry name (``index.searcher.ENGINES``:
      ``"lucene"``, ``"milvus"``...), each in the subfolder of its name; added with :meth:`add_searcher`
      or on first use of their engine;
    * ``reranker``: a second stage the encoder made (SLIM's late interaction), run after any searcher.

    Example:
        >>> r = Retriever.build(ds.corpus, load_encoder("bm25"))            # doctest: +SKIP
        >>> r.search(["what causes insulin resistance"], k=10)             # doctest: +SKIP
        >>> r.add_searcher("milvus")                                         # doctest: +SKIP
        >>> r.search(["insulin"], k=10, options=SearchOptions(engine="milvus"))   # doctest: +SKIP
        >>> r.save("idx/scifact"); r = Retriever.load("idx/scifact")       # doctest: +SKIP
    """

    def __init__(self, index: InvertedIndex, encoder: SparseEncoder, doc_encode_seconds: float | None = None,
                 reranker=None, searchers: dict | None = None):
        if index.vocabulary is not None and index.vocabulary != encoder.vocabulary:
            raise ValueError(
                f"the encoder's vocabulary {encoder.vocabulary.id!r} is not the index's {index.vocabulary.id!r}"
            )
        self.index = index
        self.encoder = encoder
        self.doc_encode_seconds = doc_encode_seconds
        self.reranker = reranker
        self.searchers: dict = dict(searchers or {})
        self._temporary: list = []

    @property
    def token_store(self):
        """SLIM's document token vectors (the reranker's), or ``None``."""
        return None if self.reranker is None else self.reranker.token_store

    @property
    def lucene(self):
        """The Lucene searcher, if one was added."""
        return self.searchers.get("lucene")

    @classmethod
    def build(cls, corpus, encoder: SparseEncoder | str, *, build: BuildOptions | None = None,
              show_progress: bool = True, store: bool = False, **build_options) -> Retriever:
        """Encode ``corpus`` (``(doc_id, text)`` pairs, ``(doc_id, text, fields)``, ``eval.datasets.Document`` or
        plain texts) and index it; ``store``: keep each document's title and text in the index for display
        (``lsr serve`` shows them).

        Encoders that need corpus statistics (BM25) are fitted on this corpus first; an encoder with a
        second stage (SLIM) also keeps it (:meth:`SparseEncoder.reranker_for`). ``build`` (or its fields as
        keywords: ``quantization``, ``block_size``, ``block_max``, ``reorder``) lays out the index.
        """
        build = build or BuildOptions(**build_options)
        if isinstance(encoder, (str, os.PathLike)):
            encoder = load_encoder(encoder)
        texts = _CorpusTexts(corpus, store=store)
        t0 = time.perf_counter()
        reranker = encoder.reranker_for(texts)  # None, without reading the corpus, unless the encoder has one
        if reranker is not None:
            docs = reranker.first_stage(reranker.token_store)
        elif encoder.needs_fit:
            docs = encoder.fit_encode_documents(texts, show_progress=show_progress)
        else:
            docs = encoder.encode_documents(texts, show_progress=show_progress)
        encode_seconds = time.perf_counter() - t0
        if texts.plain and texts.ids:
            raise ValueError("the corpus mixes plain texts and (doc_id, text) pairs; give one or the other")
        logger.info("encoded %d documents in %.1fs", texts.n, encode_seconds)
        ids = None if texts.plain else texts.ids
        fields = None
        if any(f is not None for f in texts.fields):
            fields = texts.fields + [None] * (texts.n - len(texts.fields))
        index = InvertedIndex.build(docs, doc_ids=ids, vocabulary=encoder.vocabulary, encoder=encoder.describe(),
                                    fields=fields, stored=texts.stored if store else None, **build.to_json())
        if reranker is not None and index.doc_order is not None:  # token vectors follow the documents
            reranker = reranker.reordered(np.asarray(index.doc_order))
        return cls(index, encoder, doc_encode_seconds=encode_seconds, reranker=reranker)

    def encode_queries(self, texts: Sequence[str]):
        return self.encoder.encode_queries(texts)

    # ------------------------------------------------------------- searchers
    def add_searcher(self, name: str, path: str | os.PathLike | None = None, *, overwrite: bool = False,
                     show_progress: bool = False, **engine_options):
        """Index the same document vectors with engine ``name`` (see ``index.searcher.ENGINES``).

        Args:
            path: its folder; default ``<index dir>/<name>`` for a saved index (so :meth:`load` finds it),
                else a temporary folder removed with this object.
            engine_options: passed to the engine's ``from_vectors`` (e.g. ``threads=`` for Lucene,
                ``uri=``, ``token=`` for a Milvus server).
        """
        cls = searcher_class(name)
        if path is None:
            if self.index.path is not None:
                path = Path(self.index.path) / cls.kind
            else:
                tmp = tempfile.mkdtemp(prefix=f"lsr-{cls.kind}-")
                weakref.finalize(self, shutil.rmtree, tmp, True)
                path = Path(tmp) / cls.kind
        searcher = cls.from_vectors(path, self.index.doc_ids.tolist(), self.index.document_vectors(),
                                    terms=self.encoder.terms(), vocabulary=self.encoder.vocabulary,
                                    encoder=self.encoder.describe(), overwrite=overwrite,
                                    show_progress=show_progress, **engine_options)
        self.searchers[cls.kind] = searcher
        return searcher

    def add_lucene(self, path: str | os.PathLike | None = None, *, threads: int = 1, overwrite: bool = False):
        """:meth:`add_searcher` for Lucene (Anserini's impact index; ``pip install 'lsr[lucene]'``)."""
        return self.add_searcher("lucene", path, overwrite=overwrite, threads=threads)

    def add_milvus(self, path: str | os.PathLike | None = None, *, uri: str | None = None, overwrite: bool = False,
                   **options):
        """:meth:`add_searcher` for Milvus (Milvus Lite by default, or a server at ``uri``)."""
        return self.add_searcher("milvus", path, overwrite=overwrite, uri=uri, **options)

    def searcher(self, options: SearchOptions):
        """The searcher that runs ``options`` (built from the index's vectors on first use)."""
        name = options.searcher
        if name == self.index.kind:
            return self.index
        if name not in self.searchers:
            logger.info("no %s searcher yet: building one from the index's vectors", name)
            self.add_searcher(name)
        return self.searchers[name]

    # ---------------------------------------------------------------- search
    def search_vectors(self, queries, k: int = 10, options: SearchOptions | None = None, *, filter=None,
                       **option_fields) -> SearchResults:
        """Top-k documents of encoded queries on the engine ``options`` name (default lsr's exact search).

        ``options`` or its fields as keywords (``engine=``, ``approx=``, ``threads=``). ``filter``: a metadata
        filter (:mod:`index.fields`), run by lsr's engines.
        """
        options = options or SearchOptions(**option_fields)
        k = _check_k(k, self.index.n_docs)
        searcher = self.searcher(options)
        if filter is None:
            return searcher.search(queries, k, options)
        if searcher is not self.index:
            raise ValueError(f"metadata filters run on lsr's own engines, not {options.engine!r}")
        return self.index.search(queries, k, options, filter=filter)

    def search(self, texts: Sequence[str], k: int = 10, options: SearchOptions | None = None, *, filter=None,
               **option_fields) -> SearchResults:
        """Encode query texts and return their top-k documents (and re-score them with the second stage).

        ``filter``: only documents whose fields match it (:mod:`index.fields`), e.g. ``{"year": {"gte": 2015}}``.
        """
        options = options or SearchOptions(**option_fields)
        if isinstance(texts, str):
            texts = [texts]
        k = _check_k(k, self.index.n_docs)
        if self.reranker is None:
            return self.search_vectors(self.encoder.encode_queries(texts), k, options, filter=filter)
        queries = self.reranker.encode_queries(texts)
        first = self.search_vectors(self.reranker.first_stage(queries), max(k, self.reranker.candidates), options,
                                    filter=filter)
        return self.reranker.rerank(queries, first, k, threads=options.threads)

    def search_run(self, queries: dict[str, str], k: int = 1000, options: SearchOptions | None = None,
                   **option_fields) -> dict[str, dict[str, float]]:
        """Search ``{query_id: text}`` and return a run ``{query_id: {doc_id: score}}``."""
        qids = list(queries)
        res = self.search([queries[q] for q in qids], k, options, **option_fields)
        return res.to_run(qids, self.index.doc_ids)

    # ------------------------------------------------------------- storage
    def parts(self) -> dict[str, dict]:
        """What the saved folder holds, with sizes (its manifest's ``parts``; empty before :meth:`save`)."""
        return dict(self.index.manifest.get("parts") or {})

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Save the index with the encoder in ``encoder/``, each searcher in ``<name>/`` and the second stage
        in ``slim/``, atomically; the manifest lists the parts with their sizes."""
        path = Path(path)
        with atomic_dir(path, overwrite=overwrite) as tmp:
            self.index.write_into(tmp)
            save_encoder_into(self.encoder, tmp)
            if self.reranker is not None:
                self.reranker.save(tmp / RERANKER_SUBDIR)
            for name, s in self.searchers.items():
                s.save(tmp / name)
            self.index.manifest["parts"] = _record_parts(tmp, self)
        self.index.path = path
        for name in list(self.searchers):
            self.searchers[name] = searcher_class(name).load(path / name)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, verify: bool = False) -> Retriever:
        """Load an index directory written by :meth:`save` (memory-mapped), with its searchers and second stage."""
        path = Path(path)
        if (path / "segments.json").is_file():
            raise ValueError(f"{path} is a live (segmented) index: open it with lsr.live.LiveRetriever.open "
                             "(the CLI's search, index info, add and delete do)")
        index = InvertedIndex.load(path, verify=verify)
        enc_dir = path / ENCODER_SUBDIR
        if not enc_dir.is_dir():
            raise FileNotFoundError(
                f"{enc_dir}: the index has no saved encoder, so queries cannot be encoded; "
                "rebuild it with `lsr index build` (or Retriever.save)"
            )
        check_encoder_identity(path, index.manifest)
        encoder = load_encoder(enc_dir)
        reranker = None
        if (path / RERANKER_SUBDIR).is_dir():
            from .encoders.slim import LateInteractionReranker

            reranker = LateInteractionReranker.load(path / RERANKER_SUBDIR, encoder)
            if len(reranker.token_store) != index.n_docs:
                raise ValueError(f"{path / RERANKER_SUBDIR} holds {len(reranker.token_store)} documents, the index "
                                 f"{index.n_docs}; rebuild the index")
        searchers = {}
        for name in ENGINE_REGISTRY:
            if name != index.kind and (path / name).is_dir():
                s = searcher_class(name).load(path / name)
                if s.n_docs != index.n_docs:
                    raise ValueError(f"{path / name} holds {s.n_docs} documents, the index {index.n_docs}; "
                                     "rebuild the index")
                searchers[name] = s
        return cls(index, encoder, reranker=reranker, searchers=searchers)


class EncoderMismatchError(ValueError):
    """An index folder's ``encoder/`` is not the encoder the index was built with."""


def save_encoder_into(encoder: SparseEncoder, directory: Path) -> None:
    """Save ``encoder`` as ``directory/encoder`` and record its identity in ``directory``'s manifest."""
    from index.storage import MANIFEST, write_json

    encoder.save(directory / ENCODER_SUBDIR)
    mpath = directory / MANIFEST
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    manifest["encoder_identity"] = folder_identity(directory / ENCODER_SUBDIR)
    write_json(mpath, manifest)


def check_encoder_identity(path: Path, manifest: dict) -> None:
    """Refuse an index whose ``encoder/`` folder is not the one its manifest records (older indexes record none)."""
    recorded = manifest.get("encoder_identity")
    if recorded is None:
        return
    found = folder_identity(Path(path) / ENCODER_SUBDIR)
    if found != recorded:
        raise EncoderMismatchError(
            f"{Path(path) / ENCODER_SUBDIR} is not the encoder this index was built with: the index records "
            f"{recorded}, the folder holds {found}. Queries encoded by another model rank differently even "
            "with the same vocabulary; put back the encoder the index was built with, or rebuild the index"
        )


def build_index(corpus, encoder: SparseEncoder | str, **options) -> Retriever:
    """Encode and index a corpus; see :meth:`Retriever.build`."""
    return Retriever.build(corpus, encoder, **options)


def _record_parts(folder: Path, retriever: Retriever) -> dict:
    """The parts of a retriever folder being written, with their bytes, recorded in its manifest."""
    from index.storage import MANIFEST, write_json

    subfolders = {"encoder": ENCODER_SUBDIR, **{name: name for name in retriever.searchers}}
    if retriever.reranker is not None:
        subfolders["reranker"] = RERANKER_SUBDIR
    sizes = {part: directory_size(folder / sub) for part, sub in subfolders.items()}
    parts = {"index": {"kind": retriever.index.kind, "bytes": directory_size(folder) - sum(sizes.values())}}
    parts["encoder"] = {"kind": retriever.encoder.kind, "folder": ENCODER_SUBDIR, "bytes": sizes["encoder"]}
    for name, s in retriever.searchers.items():
        parts[name] = {"kind": s.kind, "folder": name, "bytes": sizes[name]}
    if retriever.reranker is not None:
        parts["reranker"] = {"kind": retriever.reranker.kind, "folder": RERANKER_SUBDIR, "bytes": sizes["reranker"]}
    mpath = folder / MANIFEST
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    manifest["parts"] = parts
    write_json(mpath, manifest)
    return parts


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Everything about one evaluation run besides the data, the encoder and the measures; made once at the edge
    (CLI, API call) and recorded in the report.

    Attributes:
        build: how lsr's index is laid out.
        search: which engine searches and how (a tuner's choice included).
        keep_index: keep each system's saved index in the output folder (``<name>.index/``).
        show_progress: progress bars on encoding and searching.
    """

    build: BuildOptions = BuildOptions()
    search: SearchOptions = SearchOptions()
    keep_index: bool = False
    show_progress: bool = True


def measure_queries(retriever: Retriever, texts: Sequence[str], k: int, options: SearchOptions | None = None,
                    show_progress: bool = False) -> tuple[SearchResults, dict]:
    """Search all queries and measure: one query at a time (latency, with and without query encoding), then
    one batch (throughput). Every kernel and the encoder are warmed first.

    Returns the batch results and a dict of efficiency statistics.
    """
    options = options or SearchOptions()
    searcher = retriever.searcher(options)
    if texts:  # compile what this search runs (serial and parallel kernels) and warm the encoder first
        for batch in (list(texts[:1]), list(texts[:2])):
            retriever.search(batch, k, options)
            for variant in searcher.warm_variants(options):
                retriever.search(batch, k, variant)
    enc, idx = retriever.encoder, retriever.index
    two_stage = retriever.reranker is not None
    n = len(texts)
    enc_lat, search_lat = np.empty(n), np.empty(n)
    clock = time.perf_counter
    for i, text in enumerate(tqdm(texts, desc="queries", unit="q", disable=not show_progress, mininterval=1.0)):
        if two_stage:  # query encoding, first stage and re-scoring are one call
            t0 = clock()
            retriever.search([text], k, options)
            enc_lat[i], search_lat[i] = 0.0, clock() - t0
            continue
        t0 = clock()
        q = enc.encode_queries([text])
        t1 = clock()
        retriever.search_vectors(q, k, options)
        enc_lat[i], search_lat[i] = t1 - t0, clock() - t1
    t0 = clock()
    queries = retriever.reranker.first_stage(retriever.reranker.encode_queries(texts)) if two_stage \
        else enc.encode_queries(texts)
    t1 = clock()
    if two_stage:
        results, work = retriever.search(list(texts), k, options), None
    else:
        results, work = searcher.search_with_work(queries, _check_k(k, idx.n_docs), options)
    t2 = clock()
    stats = {
        "search_latency": latency_stats(search_lat),
        "query_encode_latency": None if two_stage else latency_stats(enc_lat),
        "encode_and_search_latency": latency_stats(enc_lat + search_lat),
        "search_latency_includes": ("query encoding + first stage + late-interaction re-scoring" if two_stage
                                    else "the search alone"),
        "throughput_qps": throughput(n, t2 - t1),
        "batch_query_encode_seconds": t1 - t0,
        "batch_search_seconds": t2 - t1,
        "query_nnz": vector_length_stats(queries.indptr),
        "flops": flops(queries.indices, n, idx.doc_frequencies(), idx.n_docs),
        "postings_per_query": work,
    }
    if two_stage:
        stats["rerank_candidates"] = retriever.reranker.candidates
        stats["doc_tokens_stored"] = int(retriever.token_store.tokens.shape[0])
    return results, stats


def evaluate_dataset(dataset: Dataset, encoder: SparseEncoder | str, *, name: str | None = None, k: int = 1000,
                     measures: Sequence | str | None = None, out_dir: str | os.PathLike | None = None,
                     settings: RunSettings | None = None) -> SystemResult:
    """Index ``dataset``'s corpus with ``encoder``, search its queries, score and time everything.

    Args:
        dataset: an :class:`eval.Dataset` with a corpus.
        encoder: an encoder or a spec for :func:`lsr.load_encoder`.
        name: label in reports (default: the encoder spec or kind).
        k: documents retrieved per query (1000 so that R@1000 is meaningful).
        measures: ir_measures names; default :data:`eval.DEFAULT_MEASURES`.
        out_dir: if given, the TREC run is written there as ``<name>.run`` (and the index as
            ``<name>.index/`` with ``settings.keep_index``).
        settings: :class:`RunSettings` (index layout, search options, keep_index, show_progress).

    Returns:
        :class:`eval.SystemResult` (effectiveness, per-query values, efficiency, the settings used).
    """
    settings = settings or RunSettings()
    spec = encoder if isinstance(encoder, str) else None
    if isinstance(encoder, (str, os.PathLike)):
        encoder = load_encoder(encoder)
    name = name or spec or encoder.kind
    parsed = parse_measures(measures)
    corpus = dataset.corpus  # raises MissingCorpusError for queries/qrels-only sets

    warm_up(**settings.build.to_json())
    retriever = Retriever.build(corpus, encoder, build=settings.build, show_progress=settings.show_progress)
    idx = retriever.index
    dataset.check_documents(lambda d: idx.doc_ids.position(d) is not None)
    search = settings.search
    searcher = retriever.searcher(search)  # another engine is built here, before the clock starts
    qids = list(dataset.queries)
    texts = [dataset.queries[q] for q in qids]
    if search.target_recall is not None and search.approx is None and searcher is idx:
        search = _tuned(retriever, texts, search)

    if out_dir is not None and settings.keep_index:
        retriever.save(Path(out_dir) / f"{_safe(name)}.index", overwrite=True)
        parts = retriever.parts()
    else:
        searchers = dict(retriever.searchers)  # saved only to be measured: keep the ones already built
        with tempfile.TemporaryDirectory(prefix="lsr-index-") as tmp:
            retriever.save(Path(tmp) / "index")
            parts = retriever.parts()
        retriever.searchers = searchers
        idx.path = None

    results, stats = measure_queries(retriever, texts, k, search, show_progress=settings.show_progress)
    run = results.to_run(qids, idx.doc_ids)
    evaluation = evaluate(run, dataset.qrels, parsed)

    run_file = None
    if out_dir is not None:
        run_file = str(write_trec_run(run, Path(out_dir) / f"{_safe(name)}.run", name=_safe(name)))

    efficiency = {
        **stats,
        "doc_nnz": vector_length_stats(np.concatenate([[0], np.cumsum(idx.doc_lengths(), dtype=np.int64)])),
        "index_bytes": parts["index"]["bytes"],
        "encoder_bytes": parts["encoder"]["bytes"],
        "parts": parts,
        "build_seconds": idx.build_seconds,
        "doc_encode_seconds": retriever.doc_encode_seconds,
        "n_docs": idx.n_docs,
        "n_postings": idx.nnz,
    }
    import numba

    if search.threads is None:
        search = dataclasses.replace(search, threads=numba.get_num_threads())
    run_settings = {"encoder": encoder.describe(), "k": k, "searcher": searcher.describe(),
                    "search": search.to_json(), "build": settings.build.to_json(),
                    "index": {"block_max": idx.has_block_max, "reorder": idx.manifest.get("reorder"),
                              "block_entry_ratio": idx.manifest.get("block_entry_ratio")},
                    "warmup": WARMUP_NOTE}
    logger.info("%s: %s", name, ", ".join(f"{m} {v:.4f}" for m, v in evaluation.aggregate.items()))
    return SystemResult(name=name, settings=run_settings, effectiveness=evaluation.aggregate,
                        efficiency=efficiency, per_query=evaluation.per_query, run_file=run_file)


def _tuned(retriever: Retriever, texts: Sequence[str], search: SearchOptions) -> SearchOptions:
    """``search`` with the cheapest approximate setting that reaches its ``target_recall`` against exact search
    on these queries (:func:`index.tune_approximate`), tuned on the stage the index serves: with a second stage
    (SLIM), the pooled first-stage queries whose candidates feed it. Exact search if nothing is faster."""
    from index import tune_approximate

    if retriever.reranker is not None:
        queries = retriever.reranker.first_stage(retriever.reranker.encode_queries(list(texts)))
    else:
        queries = retriever.encoder.encode_queries(list(texts))
    tuned = tune_approximate(retriever.index, queries, target_recall=search.target_recall, threads=search.threads)
    logger.info("tuned for recall@10 >= %.2f: %s (recall %.3f, %.3f ms/query vs exact %.3f)", search.target_recall,
                tuned.approx, tuned.recall, tuned.ms_per_query, tuned.exact_ms_per_query)
    return dataclasses.replace(search, approx=tuned.approx)


def compare(dataset: Dataset, encoders: dict[str, SparseEncoder | str], *, k: int = 1000,
            measures: Sequence | str | None = None, out_dir: str | os.PathLike | None = None,
            command: str | None = None, settings: RunSettings | None = None) -> Report:
    """Evaluate several systems on one data set and gather them in one :class:`eval.Report`.

    ``encoders`` maps a display name to an encoder or spec (a ``hybrid:<sparse>+dense,...`` spec is a fused
    dense + sparse system, :func:`lsr.hybrid.evaluate_hybrid`). With ``out_dir`` the report
    (``report.json``, ``report.md``, ``tradeoff.png``) and the runs are written there. ``settings``
    (:class:`RunSettings`) apply to every system.
    """
    if not encoders:
        raise ValueError("no encoders to evaluate")
    files: dict[str, str] = {}
    for name in encoders:  # each system's run file is <safe name>.run: two names must not share one
        if _safe(name) in files:
            raise ValueError(f"system names {files[_safe(name)]!r} and {name!r} would both write {_safe(name)}.run; "
                             "give names that differ in letters, digits or - _ . = (CLI: --name)")
        files[_safe(name)] = name
    parsed = parse_measures(measures)
    with write_lock(out_dir) if out_dir is not None else contextlib.nullcontext():
        from .hybrid import HybridSpec, evaluate_hybrid

        systems = [(evaluate_hybrid if HybridSpec.is_spec(enc) else evaluate_dataset)(
            dataset, enc, name=name, k=k, measures=parsed, out_dir=out_dir, settings=settings)
            for name, enc in encoders.items()]
        report = Report(dataset=dataset.describe(), measures=[str(m) for m in parsed], systems=systems,
                        command=command)
        if out_dir is not None:
            report.save(out_dir)
    return report


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in name)
