"""The result record of every search in lsr."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numba as nb
import numpy as np

#: Filler for result slots past the last matching document (fewer than k matches).
NO_DOC = -1


class SearchResults(NamedTuple):
    """Top-k documents of a batch of queries.

    Attributes:
        doc_idx: int32 ``[n_queries, k]``; row ``i`` lists the internal indices of the best
            documents for query ``i``, best first, ties broken by the smaller document index.
            Slots past the last matching document (a document that shares no term with the
            query does not match) hold ``-1``.
        scores: float32 ``[n_queries, k]``; the matching scores; ``-inf`` in empty slots.

    Example:
        >>> res = index.search(queries, k=10)                          # doctest: +SKIP
        >>> run = res.to_run(query_ids, index.doc_ids)                 # doctest: +SKIP
    """

    doc_idx: np.ndarray
    scores: np.ndarray

    @property
    def k(self) -> int:
        return int(self.doc_idx.shape[1])

    def n_found(self) -> np.ndarray:
        """Number of matching documents returned per query (int64 ``[n_queries]``)."""
        return (self.doc_idx != NO_DOC).sum(axis=1)

    def to_run(self, query_ids: Sequence[str], doc_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """Convert to a run ``{query_id: {doc_id: score}}`` as ir_measures and pytrec_eval take it.

        Evaluators re-sort a run by score and break ties by document id (trec_eval's rule), which
        would replace the engine's ranking of equal scores by an alphabetical one. So that the run
        keeps the ranking the engine returned, a score equal to the one ranked above it is lowered by
        one float32 step (``numpy.nextafter``) per tied position, as Anserini does; differences
        stay below 1e-6 relative.

        Args:
            query_ids: the id of each query row, in order (length ``n_queries``).
            doc_ids: maps an internal document index to its id (e.g. ``InvertedIndex.doc_ids``).
        """
        if len(query_ids) != self.doc_idx.shape[0]:
            raise ValueError(
                f"to_run: {len(query_ids)} query ids for {self.doc_idx.shape[0]} result rows"
            )
        run: dict[str, dict[str, float]] = {}
        scores = strictly_decreasing(self.scores, self.doc_idx != NO_DOC)
        for qid, idx_row, score_row in zip(query_ids, self.doc_idx, scores):
            hits = idx_row != NO_DOC
            run[str(qid)] = {
                doc_ids[int(d)]: float(s) for d, s in zip(idx_row[hits], score_row[hits])
            }
        return run


@nb.njit(cache=True)
def _nudge_ties(scores, valid):
    down = np.float32(-np.inf)
    for i in range(scores.shape[0]):
        for j in range(1, scores.shape[1]):
            if valid[i, j] and valid[i, j - 1] and scores[i, j] >= scores[i, j - 1]:
                scores[i, j] = np.nextafter(scores[i, j - 1], down)


def strictly_decreasing(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """A float32 copy of ranked ``scores`` in which each tie is lowered one float32 step below its predecessor."""
    out = np.array(scores, dtype=np.float32, copy=True)
    if out.size and out.shape[1] > 1:
        _nudge_ties(out, np.ascontiguousarray(valid))
    return out


def write_ranked(out: SearchResults, row: int, docs: np.ndarray, scores: np.ndarray) -> None:
    """Write the best ``out.k`` of ``(docs, scores)`` into ``row`` of ``out``: highest score first, ties by the
    smaller document index (the order every lsr searcher returns). Used where an engine or a fusion hands back
    unordered or differently-ordered candidates."""
    order = np.lexsort((docs, -scores))[:out.k]
    out.doc_idx[row, :order.size] = docs[order]
    out.scores[row, :order.size] = scores[order]


def empty_results(n_queries: int, k: int) -> SearchResults:
    """Preallocated results filled with the empty-slot values."""
    return SearchResults(
        doc_idx=np.full((n_queries, k), NO_DOC, dtype=np.int32),
        scores=np.full((n_queries, k), -np.inf, dtype=np.float32),
    )
