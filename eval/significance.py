"""Is one system better than another on these queries? Paired tests over per-query scores.

A difference of aggregate scores says nothing about chance: on a few hundred queries (SciFact 300,
NFCorpus 323) a mean nDCG@10 gap of 0.005 is usually well inside the spread of per-query
differences. :func:`compare` pairs two systems' per-query values of one measure and reports the
mean difference with a bootstrap confidence interval of the per-query differences (queries
resampled with replacement, bias-corrected and accelerated: ``scipy.stats.bootstrap``'s BCa;
Efron and Tibshirani 1993) and the two-sided paired t-test
(``scipy.stats.ttest_rel``), the test Smucker, Allan and Carterette (CIKM 2007) found to agree
with randomisation and bootstrap tests on IR data. :func:`holm` adjusts the p-values of several
comparisons against one baseline (Holm 1979), as ``ranx`` and ``repro_eval`` users expect.

Queries missing from one system's per-query values (a judged query it returned nothing for) count
as 0 for that system, as ``trec_eval -c`` and :func:`eval.evaluate`'s aggregate count them.

Example:
    >>> from eval.significance import compare
    >>> a = {"q1": {"nDCG@10": 0.9}, "q2": {"nDCG@10": 0.7}, "q3": {"nDCG@10": 0.8}}
    >>> b = {"q1": {"nDCG@10": 0.6}, "q2": {"nDCG@10": 0.5}, "q3": {"nDCG@10": 0.7}}
    >>> c = compare(a, b, "nDCG@10", system="mine", baseline="bm25")
    >>> round(c.mean_diff, 3), c.wins, c.losses
    (0.2, 3, 0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np


class Comparison(NamedTuple):
    """One system against a baseline on one measure.

    Attributes:
        system, baseline, measure: what was compared.
        n_queries: queries paired.
        mean_diff: mean over queries of system minus baseline (the difference of the aggregates).
        ci_low, ci_high: bootstrap confidence interval of ``mean_diff`` (``confidence`` level).
        p_value: two-sided paired t-test (1.0 where every difference is 0).
        p_adjusted: ``p_value`` after a multiple-comparison correction (:func:`holm`), else equal.
        wins, losses, ties: queries where the system scores higher, lower, the same.
        confidence: level of the interval.
    """

    system: str
    baseline: str
    measure: str
    n_queries: int
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    wins: int
    losses: int
    ties: int
    confidence: float

    def significant(self, level: float = 0.05) -> bool:
        """Whether the (adjusted) p-value is below ``level``."""
        return self.p_adjusted < level


def paired_values(ours: Mapping[str, Mapping[str, float]], theirs: Mapping[str, Mapping[str, float]],
                  measure: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-query values of ``measure`` for both systems over the union of their queries (missing = 0)."""
    if not ours or not theirs:
        raise ValueError("per-query values are empty: evaluate both systems with per-query output first")
    queries = sorted(set(ours) | set(theirs))
    present = [q for q in queries if measure in ours.get(q, {}) or measure in theirs.get(q, {})]
    if not present:
        have = sorted({m for v in (*ours.values(), *theirs.values()) for m in v})
        raise ValueError(f"measure {measure!r} is not in the per-query values (they hold {have})")
    x = np.array([float(ours.get(q, {}).get(measure, 0.0)) for q in present])
    y = np.array([float(theirs.get(q, {}).get(measure, 0.0)) for q in present])
    return x, y


def compare(ours: Mapping[str, Mapping[str, float]], theirs: Mapping[str, Mapping[str, float]], measure: str,
            *, system: str = "system", baseline: str = "baseline", confidence: float = 0.95,
            n_boot: int = 10_000, seed: int = 0) -> Comparison:
    """Paired comparison of two systems' per-query ``{query: {measure: value}}`` on one measure.

    Args:
        ours: the system's per-query values (``SystemResult.per_query`` or ``Evaluation.per_query``).
        theirs: the baseline's, on the same queries.
        measure: the measure's name as ir_measures prints it (``nDCG@10``).
        system, baseline: labels carried into the result.
        confidence: level of the bootstrap interval, in (0, 1).
        n_boot: bootstrap resamples (10,000: the interval's ends move by ~0.001 between seeds).
        seed: random seed, so that a report is reproducible.
    """
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 100:
        raise ValueError(f"n_boot must be at least 100, got {n_boot}")
    x, y = paired_values(ours, theirs, measure)
    d = x - y
    n = d.size
    if n < 2 or np.all(d == d[0]):  # no spread: the interval is the point, the test has nothing to test
        lo = hi = float(d.mean())
        p = 1.0 if np.all(d == 0) or n < 2 else 0.0
    else:
        ci = stats.bootstrap((d,), np.mean, confidence_level=confidence, n_resamples=n_boot, method="BCa",
                             rng=np.random.default_rng(seed)).confidence_interval
        lo, hi = float(ci.low), float(ci.high)
        p = float(stats.ttest_rel(x, y).pvalue)
    return Comparison(system, baseline, measure, int(n), float(d.mean()), lo, hi, p, p,
                      int((d > 0).sum()), int((d < 0).sum()), int((d == 0).sum()), float(confidence))


def holm(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """Holm-Bonferroni step-down adjustment of the p-values of a family of comparisons (same order).

    The i-th smallest of m p-values is multiplied by (m - i + 1), made monotone, and capped at 1;
    it controls the family-wise error rate without assuming independence (Holm 1979).
    """
    m = len(comparisons)
    order = sorted(range(m), key=lambda i: comparisons[i].p_value)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * comparisons[i].p_value))
        adjusted[i] = running
    return [c._replace(p_adjusted=a) for c, a in zip(comparisons, adjusted)]


def comparisons_markdown(comparisons: Sequence[Comparison], level: float = 0.05) -> str:
    """A markdown table of comparisons (``*`` marks adjusted p below ``level``)."""
    lines = ["| system | baseline | measure | difference | CI | p (paired t) | p (Holm) | wins / losses / ties |",
             "|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        mark = " *" if c.significant(level) else ""
        lines.append(f"| {c.system} | {c.baseline} | {c.measure} | {c.mean_diff:+.4f}{mark} | "
                     f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}] | {c.p_value:.3g} | {c.p_adjusted:.3g} | "
                     f"{c.wins} / {c.losses} / {c.ties} |")
    return "\n".join(lines)
