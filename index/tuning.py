"""Recall of approximate search against exact search, and the cheapest setting for a target recall.

Example:
    >>> from index import tune_approximate
    >>> tuned = tune_approximate(idx, sample_queries, target_recall=0.95, k=10)    # doctest: +SKIP
    >>> tuned.approx, tuned.recall, tuned.ms_per_query                             # doctest: +SKIP
    (Approx(query_terms=6, candidates=100, max_blocks=0, alpha=1.0), 0.962, 0.08)
    >>> idx.search(queries, k=10, approx=tuned.approx)                             # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import time
from typing import NamedTuple

import numpy as np

from .inverted import Approx, InvertedIndex, numba_threads
from .results import NO_DOC, SearchResults

DEFAULT_TERMS = (2, 3, 4, 6, 8, 12, 16, 24, 32)
# times k; with lists cut short (static pruning) the partial scores rank candidates loosely, and
# re-scoring 1,000-2,000 of them (~0.3-0.6 us each) is what reaches recall 0.95 on SPLADE-like queries
DEFAULT_CANDIDATES = (2, 5, 10, 20, 50, 100, 200)
DEFAULT_BLOCKS = (4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
DEFAULT_ALPHAS = (1.0, 0.9, 0.8)
DEFAULT_POSTINGS = (0.002, 0.005, 0.01, 0.02, 0.05)  # static pruning: postings kept per term, times n_docs


def recall_at_k(approx: SearchResults, exact: SearchResults) -> float:
    """Mean over queries of ``|approx top-k ∩ exact top-k| / |exact top-k|`` (queries with no exact hit skipped)."""
    total, n = 0.0, 0
    for a, e in zip(approx.doc_idx, exact.doc_idx):
        e = e[e != NO_DOC]
        if e.size == 0:
            continue
        total += np.intersect1d(a[a != NO_DOC], e).size / e.size
        n += 1
    return total / n if n else 1.0


class Tuned(NamedTuple):
    """Outcome of :func:`tune_approximate`.

    Attributes:
        approx: the cheapest setting that reached the target (the exact setting if none did).
        recall: its recall@k against exact search on the sample.
        ms_per_query: its time per query (batch search, median of the confirmation turns).
        exact_ms_per_query: exact search's time on the same sample, same threads, same turns.
        trials: every setting tried, with recall (and time for those reaching the target).
    """

    approx: Approx
    recall: float
    ms_per_query: float
    exact_ms_per_query: float
    trials: list


def median_seconds(fn, repeats: int, min_seconds: float = 0.05) -> float:
    """Median seconds of ``fn()`` over at least ``repeats`` runs and at least ``min_seconds`` of runs
    (a small sample searched in a few milliseconds is too noisy to rank settings on one run)."""
    times: list[float] = []
    while len(times) < max(1, repeats) or (sum(times) < min_seconds and len(times) < 100):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def tune_approximate(index: InvertedIndex, queries, target_recall: float = 0.95, k: int = 10, *,
                     query_terms=DEFAULT_TERMS, candidates=DEFAULT_CANDIDATES, blocks=DEFAULT_BLOCKS,
                     alphas=DEFAULT_ALPHAS, postings=DEFAULT_POSTINGS, threads: int | None = None,
                     repeats: int = 3, finalists_kept: int = 3, confirm_turns: int = 3) -> Tuned:
    """Find the fastest :class:`Approx` setting whose recall@k on ``queries`` reaches ``target_recall``.

    Query-term pruning: for each number of candidates (``candidates`` x k), the fewest query terms
    that reach the target. Static pruning: for each posting budget (``postings`` x the number of
    documents, at least 100 per term) and number of candidates, the fewest query terms (all
    included). Block-max (only on an index with block-max metadata): for each query-term
    count and ``alpha``, the smallest block budget that reaches it. The qualifying settings are timed;
    the ``finalists_kept`` fastest are timed again with exact search (``engine="auto"``), in
    ``confirm_turns`` alternating turns, and the lowest median wins, unless exact search's is lower,
    in which case the exact setting ``Approx()`` is returned. Tune on sample queries, then check
    recall on others.
    """
    if finalists_kept < 1 or confirm_turns < 1:
        raise ValueError("finalists_kept and confirm_turns must be at least 1")
    if not 0 < target_recall <= 1:
        raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
    q = index.check_queries(queries)
    nq = max(q.shape[0], 1)
    trials: list[dict] = []

    def trial(ap: Approx) -> bool:
        r = recall_at_k(index.search(q, k=k, approx=ap), exact)
        trials.append({"approx": ap._asdict(), "recall": r})
        if r >= target_recall:
            trials[-1]["ms_per_query"] = 1e3 * median_seconds(lambda: index.search(q, k=k, approx=ap), repeats) / nq
            return True
        return False

    with numba_threads(threads):
        exact = index.search(q, k=k)
        exact_ms = 1e3 * median_seconds(lambda: index.search(q, k=k), repeats) / nq
        for c in candidates:
            for terms in sorted(query_terms):
                if trial(Approx(query_terms=terms, candidates=c * k)):
                    break
        longest = int(index.doc_frequencies().max(initial=0))
        budgets = sorted({max(100, int(f * index.n_docs)) for f in postings})
        for mp in (b for b in budgets if b < longest):
            for c in candidates:
                for terms in (*sorted(t for t in query_terms if t > 0), 0):
                    if trial(Approx(query_terms=terms, candidates=c * k, max_postings=mp)):
                        break
        if index.has_block_max:
            for terms, alpha in itertools.product((0, *query_terms), alphas):
                for nb in blocks:
                    if trial(Approx(query_terms=terms, max_blocks=nb, alpha=alpha)):
                        break
        ok = sorted((t for t in trials if "ms_per_query" in t), key=lambda t: t["ms_per_query"])
        if not ok or ok[0]["ms_per_query"] >= exact_ms:  # no approximation beats exact search here
            return Tuned(Approx(), 1.0, exact_ms, exact_ms, trials)
        # each trial was timed once, at its own moment; on a busy machine one slow or fast spell decides.
        # The finalists and exact search are timed again, in turns, and the medians of the turns decide
        ok = ok[:finalists_kept]
        turns: list[list[float]] = [[] for _ in range(len(ok) + 1)]
        for _ in range(confirm_turns):
            for i, ap in enumerate([None, *(Approx(**t["approx"]) for t in ok)]):
                turns[i].append(1e3 * median_seconds(lambda ap=ap: index.search(q, k=k, approx=ap), 1, 0.1) / nq)
    medians = [float(np.median(t)) for t in turns]
    for t, m in zip(ok, medians[1:]):
        t["confirmed_ms_per_query"] = m
    exact_ms = medians[0]
    i = int(np.argmin(medians[1:]))
    if medians[1 + i] >= exact_ms:
        return Tuned(Approx(), 1.0, exact_ms, exact_ms, trials)
    return Tuned(Approx(**ok[i]["approx"]), ok[i]["recall"], medians[1 + i], exact_ms, trials)
