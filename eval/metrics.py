"""Effectiveness measures through ir_measures (no metric is re-implemented here).

Measures are written in ir_measures syntax (``nDCG@10``, ``RR@10``, ``R@100``, ``AP``,
``P(rel=2)@5``...). Judged queries that a run does not answer count as 0 (ir_measures' own
behaviour, which matches ``trec_eval -c``); queries of the run that have no judgements are ignored.

Example:
    >>> from eval import evaluate
    >>> qrels = {"q1": {"d1": 1, "d3": 2}}
    >>> run = {"q1": {"d1": 1.0, "d3": 0.5, "d4": 0.2}}
    >>> round(evaluate(run, qrels, ["nDCG@10"])["nDCG@10"], 4)
    0.8597
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

DEFAULT_MEASURES = ("nDCG@10", "RR@10", "R@100", "R@1000", "AP")


def parse_measures(measures: Iterable | str | None) -> list:
    """Parse measure names (or pass ir_measures objects through); a bad name names the syntax."""
    import ir_measures

    if measures is None:
        measures = DEFAULT_MEASURES
    if isinstance(measures, str):
        measures = [m.strip() for m in measures.split(",") if m.strip()]
    parsed = []
    for m in measures:
        if isinstance(m, str):
            try:
                parsed.append(ir_measures.parse_measure(m))
            except Exception as e:
                raise ValueError(
                    f"unknown measure {m!r} ({e}); use ir_measures syntax such as nDCG@10, RR@10, R@100, AP"
                ) from None
        else:
            parsed.append(m)
    if not parsed:
        raise ValueError("no measures given")
    return parsed


class Evaluation(NamedTuple):
    """Scores of one run.

    Attributes:
        aggregate: ``{measure name: mean over judged queries}``.
        per_query: ``{query_id: {measure name: value}}``.

    ``evaluation["nDCG@10"]`` reads an aggregate value.
    """

    aggregate: dict[str, float]
    per_query: dict[str, dict[str, float]]

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            return self.aggregate[key]
        return tuple.__getitem__(self, key)


#: prepared evaluators, most recent last: (qrels object, measure names, evaluator). ir_measures prepares
#: the qrels once per evaluator (pytrec_eval's parsing is most of a call's cost on small runs), and a
#: comparison scores every system, and every significance test every measure, against the same qrels.
_EVALUATORS: list = []
_EVALUATORS_KEPT = 4


def _qrels_fingerprint(qrels) -> int:
    """Content hash of qrels, order-free: a dict changed in place since it was prepared is prepared again."""
    return hash(frozenset((q, frozenset(docs.items())) for q, docs in qrels.items()))


def _evaluator(ir_measures, parsed, qrels):
    names = tuple(str(m) for m in parsed)
    fingerprint = _qrels_fingerprint(qrels)
    for i, (q, n, f, ev) in enumerate(_EVALUATORS):
        if q is qrels and n == names and f == fingerprint:
            _EVALUATORS.append(_EVALUATORS.pop(i))
            return ev
    ev = ir_measures.evaluator(parsed, qrels)
    _EVALUATORS.append((qrels, names, fingerprint, ev))
    del _EVALUATORS[:-_EVALUATORS_KEPT]
    return ev


def evaluate(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]],
             measures: Sequence | str | None = None) -> Evaluation:
    """Score a run against qrels with ir_measures.

    Args:
        run: ``{query_id: {doc_id: score}}``.
        qrels: ``{query_id: {doc_id: grade}}``.
        measures: ir_measures names or objects; default :data:`DEFAULT_MEASURES`.

    Returns:
        :class:`Evaluation` with aggregate and per-query values, keyed by the measure's name
        as ir_measures prints it.
    """
    import ir_measures

    if not qrels:
        raise ValueError("qrels are empty: nothing to evaluate against")
    parsed = parse_measures(measures)
    run = {str(q): {str(d): float(s) for d, s in docs.items()} for q, docs in run.items()}
    evaluator = _evaluator(ir_measures, parsed, qrels)
    per_query: dict[str, dict[str, float]] = {}
    for metric in evaluator.iter_calc(run):
        per_query.setdefault(metric.query_id, {})[str(metric.measure)] = float(metric.value)
    aggregate = {str(m): float(v) for m, v in evaluator.calc_aggregate(run).items()}
    # keep the order the caller asked for
    aggregate = {str(m): aggregate[str(m)] for m in parsed if str(m) in aggregate}
    return Evaluation(aggregate, per_query)
