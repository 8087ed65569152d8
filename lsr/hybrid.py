"""Hybrid search: a sparse retriever and a dense one over the same corpus, their result lists fused.

The sparse side is any :class:`~lsr.pipeline.Retriever` (BM25, SPLADE, an inference-free model, on any
engine); the dense side a :class:`~lsr.encoders.dense.DenseEncoder` with a :class:`~lsr.dense.FaissIndex`.
Each retrieves ``candidates`` documents per query; :mod:`index.fusion` combines them: reciprocal rank
fusion (default) or a normalized linear combination whose weight is best chosen on a dev split
(:func:`choose_weight`). Results are in the sparse index's document indices.

Example:
    >>> h = HybridRetriever.build(ds.corpus, "bm25")                   # BM25 + all-MiniLM-L6-v2       # doctest: +SKIP
    >>> h.search(["insulin resistance"], k=10)                         # RRF                            # doctest: +SKIP
    >>> h = h.with_fusion("linear", weight=choose_weight(h, dev.queries, dev.qrels))                    # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from index import SearchResults
from index.fusion import linear_fusion, reciprocal_rank_fusion
from index.oracle import _check_k
from index.searcher import SearchOptions

FUSIONS = ("rrf", "linear")


@dataclasses.dataclass
class HybridRetriever:
    """A sparse :class:`~lsr.pipeline.Retriever` and a dense encoder + faiss index, fused.

    Attributes:
        sparse: the sparse retriever (its index's document indices are the results').
        dense_encoder, dense: the dense encoder and its :class:`~lsr.dense.FaissIndex`.
        fusion: ``"rrf"`` or ``"linear"``; ``weight``: the dense list's weight in ``[0, 1]`` (linear fusion:
            the sparse list gets ``1 - weight``; RRF: both 1 unless given); ``candidates``: documents each side
            retrieves per query; ``normalization``: ``"minmax"`` or ``"zscore"`` for linear fusion.
    """

    sparse: object
    dense_encoder: object
    dense: object
    fusion: str = "rrf"
    weight: float | None = None
    candidates: int = 100
    normalization: str = "minmax"

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.weight is not None and not 0 <= self.weight <= 1:
            raise ValueError(f"weight must be in [0, 1], got {self.weight}")
        if self.candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")
        ids = self.sparse.index.doc_ids
        pos = np.array([ids.position(d) for d in self.dense.doc_ids], dtype=object)
        if any(p is None for p in pos) or len(pos) != self.sparse.index.n_docs:
            raise ValueError("the sparse and dense sides index different documents; build both from one corpus")
        self._to_sparse = pos.astype(np.int64)  # dense document index -> sparse document index

    @classmethod
    def build(cls, corpus, sparse_encoder, *, dense_model: str = "all-MiniLM-L6-v2", index_type: str = "flat",
              show_progress: bool = True, **settings) -> HybridRetriever:
        """Encode ``corpus`` (re-iterable ``(doc_id, text)`` pairs) with both encoders and index both sides."""
        from .dense import FaissIndex
        from .encoders.dense import DenseEncoder
        from .pipeline import Retriever

        sparse = Retriever.build(corpus, sparse_encoder, show_progress=show_progress)
        pairs = list(corpus)
        encoder = DenseEncoder(dense_model)
        emb = encoder.embed([t for _, t in pairs], show_progress=show_progress)
        dense = FaissIndex.build([d for d, _ in pairs], emb, index_type=index_type, encoder=encoder.describe())
        return cls(sparse, encoder, dense, **settings)

    def with_fusion(self, fusion: str, weight: float | None = None, normalization: str = "minmax") -> HybridRetriever:
        return dataclasses.replace(self, fusion=fusion, weight=weight, normalization=normalization)

    def search_parts(self, texts: Sequence[str], k: int, options: SearchOptions | None = None
                     ) -> tuple[SearchResults, SearchResults]:
        """Each side's own top ``max(k, candidates)``, both in the sparse index's document indices."""
        n = max(k, self.candidates)
        sparse = self.sparse.search(list(texts), n, options)
        dense = self.dense.search(self.dense_encoder.embed(list(texts)), n)
        mapped = np.where(dense.doc_idx >= 0, self._to_sparse[np.maximum(dense.doc_idx, 0)], -1).astype(np.int32)
        return sparse, SearchResults(mapped, dense.scores)

    def fuse(self, sparse: SearchResults, dense: SearchResults, k: int) -> SearchResults:
        if self.fusion == "rrf":
            weights = None if self.weight is None else [1 - self.weight, self.weight]
            return reciprocal_rank_fusion([sparse, dense], k, weights=weights)
        w = 0.5 if self.weight is None else self.weight
        return linear_fusion([sparse, dense], k, weights=[1 - w, w], normalization=self.normalization)

    def search(self, texts: Sequence[str], k: int = 10, options: SearchOptions | None = None) -> SearchResults:
        """Top-k fused documents of query texts (document indices of the sparse index)."""
        if isinstance(texts, str):
            texts = [texts]
        k = _check_k(k, self.sparse.index.n_docs)
        return self.fuse(*self.search_parts(texts, k, options), k)

    def describe(self) -> dict:
        return {"kind": "hybrid", "sparse": self.sparse.encoder.describe(), "dense": self.dense.describe(),
                "fusion": self.fusion, "weight": self.weight, "candidates": self.candidates,
                "normalization": self.normalization if self.fusion == "linear" else None}


def choose_weight(hybrid: HybridRetriever, queries: dict[str, str], qrels: dict, *, measure: str = "nDCG@10",
                  grid: Sequence[float] = tuple(np.round(np.linspace(0, 1, 11), 2)), k: int = 100) -> float:
    """The dense weight of linear fusion that maximises ``measure`` on a dev split (ties: the smaller weight).

    Each side is searched once; only the fusion is repeated for every weight on the grid.
    """
    from eval import evaluate

    qids = [q for q in queries if q in qrels]
    sparse, dense = hybrid.search_parts([queries[q] for q in qids], k)
    best, best_w = -1.0, 0.0
    for w in grid:
        fused = dataclasses.replace(hybrid, fusion="linear", weight=float(w)).fuse(sparse, dense, k)
        value = evaluate(fused.to_run(qids, hybrid.sparse.index.doc_ids), qrels, [measure]).aggregate[measure]
        if value > best + 1e-12:
            best, best_w = value, float(w)
    return best_w


@dataclasses.dataclass(frozen=True)
class HybridSpec:
    """A hybrid system named on the command line: ``hybrid:<sparse spec>+dense[:<model>][,key=value...]``.

    Keys after the dense part: ``weight`` (the dense list's weight in [0, 1], or ``auto``: chosen on the
    data set's dev split, else its train split, never on the queries evaluated), ``fusion`` (``rrf`` or
    ``linear``; a weight alone means ``linear``), ``candidates`` (documents each side retrieves, default 100),
    ``normalization`` (``minmax`` or ``zscore``).

    Example:
        >>> s = HybridSpec.parse("hybrid:bm25:k1=1.2,b=0.75+dense,weight=0.3")
        >>> s.sparse, s.dense_model, s.fusion, s.weight
        ('bm25:k1=1.2,b=0.75', 'all-MiniLM-L6-v2', 'linear', 0.3)
    """

    sparse: str
    dense_model: str = "all-MiniLM-L6-v2"
    fusion: str = "rrf"
    weight: float | str | None = None
    candidates: int = 100
    normalization: str = "minmax"

    PREFIX = "hybrid:"

    @classmethod
    def is_spec(cls, spec) -> bool:
        return isinstance(spec, str) and spec.startswith(cls.PREFIX)

    @classmethod
    def parse(cls, spec: str) -> HybridSpec:
        usage = ("write it as hybrid:<sparse encoder>+dense[:<model>][,weight=W|auto][,fusion=rrf|linear]"
                 "[,candidates=N][,normalization=minmax|zscore], e.g. hybrid:bm25+dense,weight=0.3")
        if not cls.is_spec(spec) or "+" not in spec:
            raise ValueError(f"hybrid spec {spec!r}: {usage}")
        sparse, _, dense = spec[len(cls.PREFIX):].rpartition("+")
        head, *items = [p.strip() for p in dense.split(",")]
        kind, _, model = head.partition(":")
        if not sparse or kind != "dense":
            raise ValueError(f"hybrid spec {spec!r}: {usage}")
        options: dict = {}
        for item in items:
            key, eq, value = item.partition("=")
            if not eq or key not in ("weight", "fusion", "candidates", "normalization"):
                raise ValueError(f"hybrid spec {spec!r}: unknown option {item!r}; {usage}")
            options[key] = value
        weight = options.get("weight")
        if weight is not None and weight != "auto":
            try:
                weight = float(weight)
            except ValueError:
                raise ValueError(f"hybrid spec {spec!r}: weight must be a number in [0, 1] or 'auto'") from None
            if not 0 <= weight <= 1:
                raise ValueError(f"hybrid spec {spec!r}: weight must be in [0, 1], got {weight}")
        fusion = options.get("fusion") or ("linear" if weight is not None else "rrf")
        if fusion not in FUSIONS:
            raise ValueError(f"hybrid spec {spec!r}: fusion must be one of {FUSIONS}")
        if weight == "auto" and fusion != "linear":
            raise ValueError(f"hybrid spec {spec!r}: weight=auto chooses a linear fusion's weight; drop fusion=rrf")
        try:
            candidates = int(options.get("candidates", 100))
        except ValueError:
            raise ValueError(f"hybrid spec {spec!r}: candidates must be an integer") from None
        return cls(sparse=sparse, dense_model=model or "all-MiniLM-L6-v2", fusion=fusion, weight=weight,
                   candidates=candidates, normalization=options.get("normalization", "minmax"))


def _weight_split(dataset) -> object:
    """The split that chooses a linear weight: ``dev``, else ``train``, never the split evaluated."""
    from eval import load_dataset
    from eval.datasets import DatasetNotFoundError

    if dataset.split is None:  # an ir_datasets id names its split: another split is another id
        raise ValueError(f"weight=auto needs a BEIR folder with a dev or train split; {dataset.name!r} is an "
                         "ir_datasets id: give weight=W")
    for split in ("dev", "train"):
        if split == dataset.split:
            continue
        try:
            return load_dataset(dataset.source, split=split)
        except (DatasetNotFoundError, ValueError):
            continue
    raise ValueError(f"weight=auto needs a dev or train split of {dataset.name!r} to choose the weight on (never "
                     "the queries evaluated); give weight=W instead")


def evaluate_hybrid(dataset, spec: str | HybridSpec, *, name: str | None = None, k: int = 1000, measures=None,
                    out_dir=None, settings=None):
    """:func:`~lsr.pipeline.evaluate_dataset` for a hybrid system: both sides built on ``dataset``'s corpus,
    the weight chosen on a dev split when asked (``weight=auto``), all queries searched one at a time (latency
    covers both query encoders, both searches and the fusion) and as a batch, scored with ir_measures."""
    import time

    from eval import SystemResult, evaluate
    from eval.efficiency import latency_stats, throughput
    from eval.metrics import parse_measures
    from eval.trec import write_trec_run

    from .pipeline import RunSettings, _safe

    settings = settings or RunSettings()
    spec = spec if isinstance(spec, HybridSpec) else HybridSpec.parse(spec)
    name = name or "hybrid"
    parsed = parse_measures(measures)
    t0 = time.perf_counter()
    hybrid = HybridRetriever.build(dataset.corpus, spec.sparse, dense_model=spec.dense_model,
                                   candidates=spec.candidates, show_progress=settings.show_progress,
                                   fusion=spec.fusion, normalization=spec.normalization,
                                   weight=None if spec.weight == "auto" else spec.weight)
    build_seconds = time.perf_counter() - t0
    chosen_on = None
    if spec.weight == "auto":
        dev = _weight_split(dataset)
        hybrid = hybrid.with_fusion("linear", weight=choose_weight(hybrid, dev.queries, dev.qrels,
                                                                   k=spec.candidates),
                                    normalization=spec.normalization)
        chosen_on = dev.split
    qids = list(dataset.queries)
    texts = [dataset.queries[q] for q in qids]
    options = settings.search
    if texts:
        hybrid.search(texts[:2], k, options)  # warm both encoders and the kernels
    lat = np.empty(len(texts))
    for i, text in enumerate(texts):
        t1 = time.perf_counter()
        hybrid.search([text], k, options)
        lat[i] = time.perf_counter() - t1
    t1 = time.perf_counter()
    results = hybrid.search(texts, k, options)
    batch = time.perf_counter() - t1
    run = results.to_run(qids, hybrid.sparse.index.doc_ids)
    evaluation = evaluate(run, dataset.qrels, parsed)
    run_file = None
    if out_dir is not None:
        run_file = str(write_trec_run(run, Path(out_dir) / f"{_safe(name)}.run", name=_safe(name)))
    efficiency = {"encode_and_search_latency": latency_stats(lat),
                  "search_latency_includes": "both query encoders, both searches and the fusion",
                  "throughput_qps": throughput(len(texts), batch), "build_seconds": build_seconds,
                  "n_docs": hybrid.sparse.index.n_docs}
    run_settings = {**hybrid.describe(), "k": k, "search": options.to_json(), "weight_chosen_on": chosen_on}
    return SystemResult(name=name, settings=run_settings, effectiveness=evaluation.aggregate, efficiency=efficiency,
                        per_query=evaluation.per_query, run_file=run_file)
