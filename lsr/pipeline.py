"""The pipeline: encode a corpus, build an index, search it, evaluate it.

Five lines from a data set to a result::

    from lsr import load_encoder, evaluate_dataset
    from eval import load_dataset
    ds = load_dataset("scifact")
    result = evaluate_dataset(ds, load_encoder("bm25"))
    print(result.effectiveness["nDCG@10"], result.efficiency["search_latency"]["p50_ms"])

A :class:`Retriever` keeps an index with the encoder that made it, so that queries are always
encoded in the index's vocabulary; on disk it is the index directory with the encoder saved in
its ``encoder/`` subdirectory.
"""

from __future__ import annotations

import contextlib
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
from index import Approx, InvertedIndex, SearchResults, atomic_dir, directory_size
from index.inverted import DEFAULT_BLOCK_SIZE
from index.oracle import _check_k
from index.results import empty_results
from index.storage import write_lock
from index.warmup import WARMUP_NOTE, warm_up

from .encoders import SparseEncoder, load_encoder
from .encoders.base import folder_identity

logger = logging.getLogger(__name__)

ENCODER_SUBDIR = "encoder"
TOKEN_SUBDIR = "slim"
LUCENE_SUBDIR = "lucene"
#: engines of :meth:`Retriever.search`: lsr's own (see :meth:`index.InvertedIndex.search`) and Lucene
ENGINES = ("auto", "taat", "blockmax", "oracle", "lucene")


class _CorpusTexts:
    """One pass over ``(doc_id, text)`` pairs or plain texts, yielding texts and collecting ids."""

    def __init__(self, corpus):
        self.corpus = corpus
        self._items = iter(corpus)
        first = next(self._items, None)
        if first is None:
            raise ValueError("the corpus is empty: nothing to index")
        self._items = itertools.chain([first], self._items)
        self.ids: list[str] = []
        self.plain = False
        self.n = 0

    def __iter__(self):
        for item in self._items:
            if isinstance(item, str):
                self.plain = True
                text = item
            else:
                did, text = item
                self.ids.append(did)
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
    """An inverted index plus the encoder whose vocabulary it uses.

    Example:
        >>> r = Retriever.build(ds.corpus, load_encoder("bm25"))            # doctest: +SKIP
        >>> r.search(["what causes insulin resistance"], k=10)             # doctest: +SKIP
        >>> r.save("idx/scifact"); r = Retriever.load("idx/scifact")       # doctest: +SKIP
    """

    def __init__(self, index: InvertedIndex, encoder: SparseEncoder, doc_encode_seconds: float | None = None,
                 token_store=None, lucene=None):
        if index.vocabulary is not None and index.vocabulary != encoder.vocabulary:
            raise ValueError(
                f"the encoder's vocabulary {encoder.vocabulary.id!r} is not the index's {index.vocabulary.id!r}"
            )
        self.index = index
        self.encoder = encoder
        self.doc_encode_seconds = doc_encode_seconds
        self.token_store = token_store  # SLIM: per-token document vectors for late-interaction re-scoring
        self.lucene = lucene  # an lsr.lucene.LuceneIndex of the same vectors (engine="lucene")

    @classmethod
    def build(cls, corpus, encoder: SparseEncoder | str, *, quantization: str | None = None,
              block_size: int = DEFAULT_BLOCK_SIZE, block_max: bool | str = "auto", reorder: str | None = None,
              show_progress: bool = True) -> Retriever:
        """Encode ``corpus`` (``(doc_id, text)`` pairs or plain texts) and index it.

        Encoders that need corpus statistics (BM25) are fitted on this corpus first.
        ``quantization`` (``None``, ``"uint8"``, ``"uint16"``), ``block_size``, ``block_max`` and
        ``reorder`` (``None`` or ``"bp"``) go to the index (see :meth:`index.InvertedIndex.build`).
        """
        if isinstance(encoder, (str, os.PathLike)):
            encoder = load_encoder(encoder)
        texts = _CorpusTexts(corpus)
        t0 = time.perf_counter()
        token_store = None
        if hasattr(encoder, "encode_document_tokens"):  # SLIM: token vectors kept, pooled ones indexed
            token_store = encoder.encode_document_tokens(list(texts))
            docs = encoder.pool(token_store)
        elif encoder.needs_fit:
            docs = encoder.fit_encode_documents(texts, show_progress=show_progress)
        else:
            docs = encoder.encode_documents(texts, show_progress=show_progress)
        encode_seconds = time.perf_counter() - t0
        if texts.plain and texts.ids:
            raise ValueError("the corpus mixes plain texts and (doc_id, text) pairs; give one or the other")
        logger.info("encoded %d documents in %.1fs", texts.n, encode_seconds)
        ids = None if texts.plain else texts.ids
        index = InvertedIndex.build(docs, doc_ids=ids, vocabulary=encoder.vocabulary, encoder=encoder.describe(),
                                    quantization=quantization, block_size=block_size, block_max=block_max,
                                    reorder=reorder)
        if token_store is not None and index.doc_order is not None:  # token vectors follow the documents
            from .encoders.slim import TokenStore

            tokens, bounds = token_store.rows(np.asarray(index.doc_order))
            token_store = TokenStore(bounds, tokens)
        return cls(index, encoder, doc_encode_seconds=encode_seconds, token_store=token_store)

    def encode_queries(self, texts: Sequence[str]):
        return self.encoder.encode_queries(texts)

    def add_lucene(self, path: str | os.PathLike | None = None, *, threads: int = 1, overwrite: bool = False):
        """Index the same document vectors with Lucene (Anserini), for ``engine="lucene"``.

        Args:
            path: where the Lucene index goes; default ``<index dir>/lucene`` for a saved index (so
                :meth:`load` finds it), else a temporary directory removed with this object.
            threads: Anserini indexing threads.
            overwrite: replace an existing Lucene index at ``path``.

        Needs ``pip install 'lsr[lucene]'``; see :mod:`lsr.lucene`.
        """
        from .lucene import LuceneIndex

        if path is None:
            if self.index.path is not None:
                path = Path(self.index.path) / LUCENE_SUBDIR
            else:
                tmp = tempfile.mkdtemp(prefix="lsr-lucene-")
                weakref.finalize(self, shutil.rmtree, tmp, True)
                path = Path(tmp) / LUCENE_SUBDIR
        self.lucene = LuceneIndex.build(path, self.index.document_vectors(), self.index.doc_ids, self.encoder.terms(),
                                        vocabulary=self.encoder.vocabulary, encoder=self.encoder.describe(),
                                        threads=threads, overwrite=overwrite)
        return self.lucene

    def search_vectors(self, queries, k: int = 10, *, engine: str = "auto", approx: Approx | None = None,
                       threads: int | None = None) -> SearchResults:
        """Top-k documents of encoded queries, on lsr's engine or (``engine="lucene"``) on Lucene."""
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        k = _check_k(k, self.index.n_docs)
        if engine != "lucene":
            return self.index.search(queries, k=k, vocabulary=self.encoder.vocabulary, engine=engine, approx=approx,
                                     threads=threads)
        if approx is not None and not approx.exact:
            raise ValueError("approximate search runs on lsr's engine; Lucene's impact search is exact")
        if self.lucene is None:
            logger.info("no Lucene index yet: building one from the index's vectors")
            self.add_lucene()
        return self.lucene.search(queries, self.encoder.terms(), k=k, vocabulary=self.encoder.vocabulary,
                                  threads=threads or 1)

    def search(self, texts: Sequence[str], k: int = 10, *, engine: str = "auto", approx: Approx | None = None,
               threads: int | None = None) -> SearchResults:
        """Encode query texts and return their top-k documents (options as :meth:`InvertedIndex.search`)."""
        if isinstance(texts, str):
            texts = [texts]
        k = _check_k(k, self.index.n_docs)
        if self.token_store is not None:
            return self._search_late_interaction(texts, k, engine=engine, approx=approx, threads=threads)
        q = self.encoder.encode_queries(texts)
        return self.search_vectors(q, k, engine=engine, approx=approx, threads=threads)

    def _search_late_interaction(self, texts, k: int, **options) -> SearchResults:
        """SLIM: candidates from the index over pooled vectors, re-scored by late interaction."""
        from .encoders.slim import late_interaction_batch

        qstore = self.encoder.encode_query_tokens(texts)
        first = self.search_vectors(self.encoder.pool(qstore), max(k, self.encoder.rerank), **options)
        scores = late_interaction_batch(qstore, self.token_store, first.doc_idx, threads=options.get("threads"))
        out = empty_results(len(texts), k)
        for i in range(len(texts)):
            cands = first.doc_idx[i]
            found = cands >= 0
            order = np.lexsort((cands, -scores[i], ~found))[:k]  # best score first, ties by document index
            keep = order[found[order] & (scores[i][order] > 0)]
            out.doc_idx[i, :keep.size] = cands[keep]
            out.scores[i, :keep.size] = scores[i][keep]
        return out

    def search_run(self, queries: dict[str, str], k: int = 1000, **options) -> dict[str, dict[str, float]]:
        """Search ``{query_id: text}`` and return a run ``{query_id: {doc_id: score}}``."""
        qids = list(queries)
        res = self.search([queries[q] for q in qids], k=k, **options)
        return res.to_run(qids, self.index.doc_ids)

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Save the index with the encoder in ``encoder/`` (and a Lucene index in ``lucene/``), atomically."""
        path = Path(path)
        with atomic_dir(path, overwrite=overwrite) as tmp:
            self.index.write_into(tmp)
            save_encoder_into(self.encoder, tmp)
            if self.token_store is not None:
                self.token_store.save(tmp / TOKEN_SUBDIR)
            if self.lucene is not None:
                shutil.copytree(self.lucene.path, tmp / LUCENE_SUBDIR)
        self.index.path = path
        if self.lucene is not None:
            from .lucene import LuceneIndex

            self.lucene = LuceneIndex.load(path / LUCENE_SUBDIR)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, verify: bool = False) -> Retriever:
        """Load an index directory written by :meth:`save` (memory-mapped)."""
        path = Path(path)
        index = InvertedIndex.load(path, verify=verify)
        enc_dir = path / ENCODER_SUBDIR
        if not enc_dir.is_dir():
            raise FileNotFoundError(
                f"{enc_dir}: the index has no saved encoder, so queries cannot be encoded; "
                "rebuild it with `lsr index build` (or Retriever.save)"
            )
        check_encoder_identity(path, index.manifest)
        token_store = None
        if (path / TOKEN_SUBDIR).is_dir():
            from .encoders.slim import TokenStore

            token_store = TokenStore.load(path / TOKEN_SUBDIR)
            if len(token_store) != index.n_docs:
                raise ValueError(f"{path / TOKEN_SUBDIR} holds {len(token_store)} documents, the index "
                                 f"{index.n_docs}; rebuild the index")
        lucene = None
        if (path / LUCENE_SUBDIR).is_dir():
            from .lucene import LuceneIndex

            lucene = LuceneIndex.load(path / LUCENE_SUBDIR)
            if lucene.n_docs != index.n_docs:
                raise ValueError(f"{path / LUCENE_SUBDIR} holds {lucene.n_docs} documents, the index "
                                 f"{index.n_docs}; rebuild the index")
        return cls(index, load_encoder(enc_dir), token_store=token_store, lucene=lucene)


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


def search_texts(retriever: Retriever, texts: Sequence[str], k: int = 10, **options) -> SearchResults:
    """Top-k documents for query texts; see :meth:`Retriever.search`."""
    return retriever.search(texts, k=k, **options)


def measure_queries(retriever: Retriever, texts: Sequence[str], k: int, show_progress: bool = False, *,
                    engine: str = "auto", approx: Approx | None = None,
                    threads: int | None = None) -> tuple[SearchResults, dict]:
    """Search all queries and measure: one query at a time (latency), then one batch (throughput).

    Returns the batch results and a dict of efficiency statistics.
    """
    opts = {"engine": engine, "approx": approx, "threads": threads}
    if texts:  # compile what this search runs (serial and parallel kernels) and warm the encoder first
        for batch in (list(texts[:1]), list(texts[:2])):
            retriever.search(batch, k, **opts)
            if engine == "auto" and retriever.token_store is None and retriever.index.has_block_max:
                for forced in ("taat", "blockmax"):
                    retriever.search(batch, k, **{**opts, "engine": forced})
    if retriever.token_store is not None:
        return _measure_late_interaction(retriever, texts, k, show_progress, opts)
    enc, idx = retriever.encoder, retriever.index
    n = len(texts)
    enc_lat = np.empty(n)
    search_lat = np.empty(n)
    clock = time.perf_counter
    search = retriever.search_vectors
    for i, text in enumerate(tqdm(texts, desc="queries", unit="q", disable=not show_progress, mininterval=1.0)):
        t0 = clock()
        q = enc.encode_queries([text])
        t1 = clock()
        search(q, k, **opts)
        t2 = clock()
        enc_lat[i] = t1 - t0
        search_lat[i] = t2 - t1
    t0 = clock()
    queries = enc.encode_queries(texts)
    t1 = clock()
    if engine == "lucene":  # Lucene does not report what it touched
        results, postings = search(queries, k, **opts), None
    else:
        detailed = idx.search_detailed(queries, k=k, vocabulary=enc.vocabulary, **opts)
        results, postings = detailed.results, float(detailed.stats.postings.mean()) if n else 0.0
    t2 = clock()
    stats = {
        "search_latency": latency_stats(search_lat),
        "query_encode_latency": latency_stats(enc_lat),
        "encode_and_search_latency": latency_stats(enc_lat + search_lat),
        "throughput_qps": throughput(n, t2 - t1),
        "batch_query_encode_seconds": t1 - t0,
        "batch_search_seconds": t2 - t1,
        "query_nnz": vector_length_stats(queries.indptr),
        "flops": flops(queries.indices, n, idx.doc_frequencies(), idx.n_docs),
        "postings_per_query": postings,
    }
    return results, stats


def _measure_late_interaction(retriever: Retriever, texts: Sequence[str], k: int, show_progress: bool,
                              opts: dict) -> tuple[SearchResults, dict]:
    """SLIM: latency covers query encoding, the index stage and the re-scoring together."""
    enc, idx = retriever.encoder, retriever.index
    n = len(texts)
    lat = np.empty(n)
    clock = time.perf_counter
    for i, text in enumerate(tqdm(texts, desc="queries", unit="q", disable=not show_progress, mininterval=1.0)):
        t0 = clock()
        retriever.search([text], k=k, **opts)
        lat[i] = clock() - t0
    t0 = clock()
    results = retriever.search(list(texts), k=k, **opts)
    t1 = clock()
    pooled = enc.pool(enc.encode_query_tokens(texts))
    stats = {
        "search_latency": latency_stats(lat),
        "encode_and_search_latency": latency_stats(lat),
        "search_latency_includes": "query encoding + index candidates + late-interaction re-scoring",
        "throughput_qps": throughput(n, t1 - t0),
        "query_nnz": vector_length_stats(pooled.indptr),
        "flops": flops(pooled.indices, n, idx.doc_frequencies(), idx.n_docs),
        "rerank_candidates": enc.rerank,
        "doc_tokens_stored": int(retriever.token_store.tokens.shape[0]),
    }
    return results, stats


def evaluate_dataset(
    dataset: Dataset,
    encoder: SparseEncoder | str,
    *,
    name: str | None = None,
    k: int = 1000,
    measures: Sequence | str | None = None,
    out_dir: str | os.PathLike | None = None,
    keep_index: bool = False,
    show_progress: bool = True,
    engine: str = "auto",
    approx: Approx | None = None,
    quantization: str | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    block_max: bool | str = "auto",
    reorder: str | None = None,
    threads: int | None = None,
) -> SystemResult:
    """Index ``dataset``'s corpus with ``encoder``, search its queries, score and time everything.

    Args:
        dataset: an :class:`eval.Dataset` with a corpus.
        encoder: an encoder or a spec for :func:`lsr.load_encoder`.
        name: label in reports (default: the encoder spec or kind).
        k: documents retrieved per query (1000 so that R@1000 is meaningful).
        measures: ir_measures names; default :data:`eval.DEFAULT_MEASURES`.
        out_dir: if given, the TREC run is written there as ``<name>.run`` (and the index as
            ``<name>.index/`` with ``keep_index``).
        keep_index: keep the saved index in ``out_dir`` (otherwise it is saved to a temporary
            directory only to measure its size).
        show_progress: progress bars on encoding.
        engine, approx, threads: search options (see :meth:`index.InvertedIndex.search`).
        quantization, block_size, block_max, reorder: index options (see :meth:`index.InvertedIndex.build`).

    Returns:
        :class:`eval.SystemResult` (effectiveness, per-query values, efficiency, settings).
    """
    spec = encoder if isinstance(encoder, str) else None
    if isinstance(encoder, (str, os.PathLike)):
        encoder = load_encoder(encoder)
    name = name or spec or encoder.kind
    parsed = parse_measures(measures)
    corpus = dataset.corpus  # raises MissingCorpusError for queries/qrels-only sets

    warm_up(quantization=quantization, block_size=block_size, block_max=block_max, reorder=reorder)
    retriever = Retriever.build(corpus, encoder, quantization=quantization, block_size=block_size,
                                block_max=block_max, reorder=reorder, show_progress=show_progress)
    idx = retriever.index
    dataset.check_documents(lambda d: idx.doc_ids.position(d) is not None)

    if out_dir is not None and keep_index:
        index_path = retriever.save(Path(out_dir) / f"{_safe(name)}.index", overwrite=True)
        index_bytes = directory_size(index_path)
    else:
        with tempfile.TemporaryDirectory(prefix="lsr-index-") as tmp:
            index_bytes = directory_size(retriever.save(Path(tmp) / "index"))
        idx.path = None

    lucene_stats = {}
    if engine == "lucene":  # built before the clock starts, and measured like lsr's index
        lucene = retriever.add_lucene(threads=threads or 1)
        lucene_stats = {"lucene_index_bytes": lucene.size_bytes(), "lucene_build_seconds": lucene.build_seconds}

    qids = list(dataset.queries)
    texts = [dataset.queries[q] for q in qids]
    results, stats = measure_queries(retriever, texts, k, show_progress=show_progress, engine=engine, approx=approx,
                                     threads=threads)
    run = results.to_run(qids, idx.doc_ids)
    evaluation = evaluate(run, dataset.qrels, parsed)

    run_file = None
    if out_dir is not None:
        run_file = str(write_trec_run(run, Path(out_dir) / f"{_safe(name)}.run", name=_safe(name)))

    efficiency = {
        **stats,
        "doc_nnz": vector_length_stats(np.concatenate([[0], np.cumsum(idx.doc_lengths(), dtype=np.int64)])),
        "index_bytes": index_bytes,
        "build_seconds": idx.build_seconds,
        "doc_encode_seconds": retriever.doc_encode_seconds,
        "n_docs": idx.n_docs,
        "n_postings": idx.nnz,
        **lucene_stats,
    }
    import numba

    settings = {"encoder": encoder.describe(), "k": k, "engine": engine, "warmup": WARMUP_NOTE,
                "approx": approx._asdict() if approx is not None else None,
                "index": {"quantization": quantization, "block_size": block_size, "block_max": idx.has_block_max,
                          "reorder": idx.manifest.get("reorder"),
                          "block_entry_ratio": idx.manifest.get("block_entry_ratio")},
                "threads": threads or numba.get_num_threads()}
    logger.info("%s: %s", name, ", ".join(f"{m} {v:.4f}" for m, v in evaluation.aggregate.items()))
    return SystemResult(name=name, settings=settings, effectiveness=evaluation.aggregate,
                        efficiency=efficiency, per_query=evaluation.per_query, run_file=run_file)


def compare(dataset: Dataset, encoders: dict[str, SparseEncoder | str], *, k: int = 1000,
            measures: Sequence | str | None = None, out_dir: str | os.PathLike | None = None,
            command: str | None = None, keep_index: bool = False, show_progress: bool = True,
            **options) -> Report:
    """Evaluate several systems on one data set and gather them in one :class:`eval.Report`.

    ``encoders`` maps a display name to an encoder or spec. With ``out_dir`` the report
    (``report.json``, ``report.md``, ``tradeoff.png``) and the runs are written there. ``options``
    (engine, approx, quantization, block_size, threads) apply to every system.
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
        systems = [
            evaluate_dataset(dataset, enc, name=name, k=k, measures=parsed, out_dir=out_dir,
                             keep_index=keep_index, show_progress=show_progress, **options)
            for name, enc in encoders.items()
        ]
        report = Report(dataset=dataset.describe(), measures=[str(m) for m in parsed], systems=systems,
                        command=command)
        if out_dir is not None:
            report.save(out_dir)
    return report


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in name)
