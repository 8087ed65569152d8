"""Recall of approximate search against exact search, and the cheapest setting for a target recall.

Example:
    >>> from index import tune_approximate
    >>> tuned = tune_approximate(idx, sample_queries, target_recall=0.95, k=10)    # doctest: +SKIP
    >>> tuned.approx, tuned.recall, tuned.ms_per_query                             # doctest: +SKIP
    (Approx(query_terms=6, candidates=100, max_blocks=0, alpha=1.0), 0.962, 0.08)
    >>> idx.search(queries, k=10, approx=tuned.approx)                             # doctest: +SKIP
"""

from __future__ import annotations

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


def per_query_recall(approx: SearchResults, exact: SearchResults) -> np.ndarray:
    """Per query, ``|approx top-k ∩ exact top-k| / |exact top-k|``; queries with no exact hit are left out."""
    a, e = np.asarray(approx.doc_idx), np.asarray(exact.doc_idx)
    have = (e != NO_DOC).sum(axis=1)
    keep = have > 0
    if a.shape[1] <= 64:  # one vectorised comparison of every pair in a row
        found = ((e[:, None, :] == a[:, :, None]) & (e[:, None, :] != NO_DOC)).any(axis=1).sum(axis=1)
    else:
        found = np.array([np.intersect1d(x[x != NO_DOC], y[y != NO_DOC]).size for x, y in zip(a, e)])
    return found[keep] / have[keep]


def recall_at_k(approx: SearchResults, exact: SearchResults) -> float:
    """Mean over queries of ``|approx top-k ∩ exact top-k| / |exact top-k|`` (queries with no exact hit skipped)."""
    r = per_query_recall(approx, exact)
    return float(r.mean()) if r.size else 1.0


class Tuned(NamedTuple):
    """Outcome of :func:`tune_approximate`.

    Attributes:
        approx: the cheapest setting that reached the target (the exact setting if none did).
        recall: its recall@k against exact search on the sample.
        ms_per_query: its time per query (batch search, median of the confirmation turns).
        exact_ms_per_query: exact search's time on the same sample, same threads, same turns.
        trials: every setting tried: its recall, the confidence bound the target was checked against,
            how many sample queries it was checked on, its time, and why it stopped (if it did).
        seconds: how long the tuning took.
    """

    approx: Approx
    recall: float
    ms_per_query: float
    exact_ms_per_query: float
    trials: list
    seconds: float = 0.0


def median_seconds(fn, repeats: int, min_seconds: float = 0.05) -> float:
    """Median seconds of ``fn()`` over at least ``repeats`` runs and at least ``min_seconds`` of runs
    (a small sample searched in a few milliseconds is too noisy to rank settings on one run)."""
    times: list[float] = []
    while len(times) < max(1, repeats) or (sum(times) < min_seconds and len(times) < 100):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _stderr(r: np.ndarray) -> float:
    """Standard error of a mean of per-query recalls (0 for fewer than two)."""
    return float(r.std(ddof=1) / np.sqrt(r.size)) if r.size > 1 else 0.0


class _Trials:
    """Runs and records the trials of one tuning: recall against exact results on a first slice of the
    sample, in pieces, then on the rest only if the slice leaves the target within reach and the time is not
    already beaten; a trial's time comes from those same runs."""

    def __init__(self, index, q, exact: SearchResults, k: int, target: float, z: float, first: int):
        self.index, self.q, self.exact, self.k, self.target, self.z = index, q, exact, k, target, z
        self.first = first
        self.log: list[dict] = []
        self.best_ms = float("inf")  # the fastest qualifying trial's time so far

    def bound(self, r: np.ndarray) -> float:
        """Lower confidence bound of the mean recall (normal approximation, ``z`` standard errors)."""
        return float(r.mean()) - self.z * _stderr(r) if r.size else 1.0

    def run(self, ap: Approx) -> str:
        """``"ok"`` (reaches the target), ``"low"`` (recall too low) or ``"slow"`` (slower than a qualifying
        trial already found: a setting with more of the same knob is slower still)."""
        n = self.q.shape[0]
        piece = max(8, self.first // 4)
        # the first slice in pieces (a slow setting stops after one), then the rest at once
        cuts = [*range(0, self.first, piece), self.first, n] if self.first < n else [*range(0, n, piece), n]
        recalls, seconds = [], 0.0
        entry = {"approx": ap._asdict()}
        self.log.append(entry)
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            if lo >= hi:
                continue
            t0 = time.perf_counter()
            res = self.index.search(self.q[lo:hi], k=self.k, approx=ap)
            seconds += time.perf_counter() - t0
            recalls.append(per_query_recall(res, SearchResults(self.exact.doc_idx[lo:hi], self.exact.scores[lo:hi])))
            r = np.concatenate(recalls)
            entry.update(recall=float(r.mean()) if r.size else 1.0, queries=hi,
                         ms_per_query=1e3 * seconds / hi, seconds=seconds)
            # a time per query above the fastest qualifying trial's (by a quarter again: a few queries
            # are a noisy measure) ends the trial; so does a first slice whose recall is clearly below
            # the target (by more than its own noise)
            if entry["ms_per_query"] > 1.25 * self.best_ms:
                entry["stopped"] = "time"
                return "slow"
            if hi == self.first < n and r.size > 1 and float(r.mean()) + 2 * self.z * _stderr(r) < self.target:
                entry["stopped"] = "recall"
                return "low"
        r = np.concatenate(recalls)
        entry["recall_bound"] = self.bound(r)
        if entry["recall_bound"] < self.target:
            return "low"
        entry["qualifies"] = True
        self.best_ms = min(self.best_ms, entry["ms_per_query"])
        return "ok"

    def frontier(self, make, rows, cols) -> None:
        """Every cheapest qualifying setting ``make(row, col)`` of a grid whose recall and time both grow
        along the ascending ``rows`` and ``cols``: a staircase walk from the most rows and fewest columns,
        at most ``len(rows) + len(cols)`` trials (a low recall needs more columns, a qualifying or slow
        setting is tried again with fewer rows)."""
        i, j = len(rows) - 1, 0
        while i >= 0 and j < len(cols):
            if self.run(make(rows[i], cols[j])) == "low":
                j += 1
            else:
                i -= 1


def tune_approximate(index: InvertedIndex, queries, target_recall: float = 0.95, k: int = 10, *,
                     query_terms=DEFAULT_TERMS, candidates=DEFAULT_CANDIDATES, blocks=DEFAULT_BLOCKS,
                     alphas=DEFAULT_ALPHAS, postings=DEFAULT_POSTINGS, threads: int | None = None,
                     repeats: int = 3, finalists_kept: int = 3, confirm_turns: int = 3,
                     confidence: float = 1.64) -> Tuned:
    """Find the fastest :class:`Approx` setting whose recall@k on ``queries`` reaches ``target_recall``.

    A setting qualifies when the lower confidence bound of its mean recall on the sample (``confidence``
    standard errors below the mean; 1.64: one-sided 95 %) reaches the target, so that recall on other
    queries reaches it too; ``confidence=0`` checks the sample mean alone.

    Families searched: static pruning (for each posting budget, ``postings`` x the number of documents and
    at least 100 per term, tried from the middle budget outward), query-term pruning over the full lists, and
    block-max on an index with block-max metadata (for each ``alpha``). Within a family, recall and time both
    grow with each knob (query terms and candidates, ``candidates`` x k; query terms and block budgets), so the
    cheapest qualifying settings lie on a staircase, walked in at most as many trials as the two knobs have
    values. Each trial runs the first quarter of the sample in small pieces and stops as soon as its time per
    query is above the fastest qualifying setting's (by a quarter: more of the same knob would be slower
    still; exact search's time is the first bar to beat), or when that quarter's recall is clearly below the
    target; the rest of the sample runs only for settings still in reach. Forward index and pruned lists are
    built before their family's first trial, outside its clock. The ``finalists_kept`` fastest qualifying
    settings are then timed again with exact search (``engine="auto"``) in ``confirm_turns`` alternating turns
    (median of at least ``repeats`` runs each), and the lowest median wins, unless exact search's is lower, in
    which case the exact setting ``Approx()`` is returned. At a million documents this takes 12-40 s on one
    thread (it took 4-5 minutes with a full grid).

    Tune on sample queries (a few hundred give a tight bound), then check recall on others.
    """
    if finalists_kept < 1 or confirm_turns < 1:
        raise ValueError("finalists_kept and confirm_turns must be at least 1")
    if not 0 < target_recall <= 1:
        raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
    if confidence < 0:
        raise ValueError(f"confidence must be >= 0 (standard errors), got {confidence}")
    t_start = time.perf_counter()
    q = index.check_queries(queries)
    nq = max(q.shape[0], 1)
    terms_up = sorted({int(t) for t in query_terms if t > 0})
    cands = sorted({int(c) for c in candidates if c > 0})
    with numba_threads(threads):
        exact = index.search(q, k=k)
        exact_ms = 1e3 * median_seconds(lambda: index.search(q, k=k), repeats) / nq
        tr = _Trials(index, q, exact, k, target_recall, confidence, first=max(1, min(nq, max(50, nq // 4))))
        tr.best_ms = exact_ms  # an approximate setting slower than exact search is of no use

        def warm(ap: Approx) -> None:
            """Build what a family reads on first use (forward index, pruned lists) outside any trial's clock."""
            index.search(q[:1], k=k, approx=ap)

        warm(Approx(query_terms=1, candidates=k))
        # static pruning first (a fast qualifying setting found early lets later trials stop on time), from
        # the middle budget outward
        longest = int(index.doc_frequencies().max(initial=0))
        budgets = sorted({max(100, int(f * index.n_docs)) for f in postings})
        budgets = [b for b in budgets if b < longest]
        budgets = sorted(budgets, key=lambda b: abs(budgets.index(b) - len(budgets) // 2))
        for mp in budgets:
            warm(Approx(candidates=k, max_postings=mp))
            tr.frontier(lambda t, c, mp=mp: Approx(query_terms=t, candidates=c * k, max_postings=mp),
                        [*terms_up, 0], cands)
        tr.frontier(lambda t, c: Approx(query_terms=t, candidates=c * k), terms_up, cands)
        if index.has_block_max:
            nbs = sorted({int(b) for b in blocks if b > 0})
            for alpha in sorted(alphas, reverse=True):
                tr.frontier(lambda t, nb, a=alpha: Approx(query_terms=t, max_blocks=nb, alpha=a), [*terms_up, 0], nbs)
        trials = tr.log
        ok = sorted((t for t in trials if t.get("qualifies")), key=lambda t: t["ms_per_query"])
        if not ok:  # no approximation beats exact search here
            return Tuned(Approx(), 1.0, exact_ms, exact_ms, trials, time.perf_counter() - t_start)
        # each trial was timed once, at its own moment; on a busy machine one slow or fast spell decides.
        # The finalists and exact search are timed again, in turns, and the medians of the turns decide
        ok = ok[:finalists_kept]
        turns: list[list[float]] = [[] for _ in range(len(ok) + 1)]
        for _ in range(confirm_turns):
            for i, ap in enumerate([None, *(Approx(**t["approx"]) for t in ok)]):
                turns[i].append(1e3 * median_seconds(lambda ap=ap: index.search(q, k=k, approx=ap), repeats, 0.1)
                                / nq)
    medians = [float(np.median(t)) for t in turns]
    for t, m in zip(ok, medians[1:]):
        t["confirmed_ms_per_query"] = m
    exact_ms = medians[0]
    i = int(np.argmin(medians[1:]))
    seconds = time.perf_counter() - t_start
    if medians[1 + i] >= exact_ms:
        return Tuned(Approx(), 1.0, exact_ms, exact_ms, trials, seconds)
    return Tuned(Approx(**ok[i]["approx"]), ok[i]["recall"], medians[1 + i], exact_ms, trials, seconds)
