"""Paired significance tests of per-query scores (eval.significance, Report.significance)."""

import numpy as np
import pytest
from scipy import stats

from eval import Report, SystemResult
from eval.significance import compare, holm


def per_query(values, measure="nDCG@10"):
    return {f"q{i}": {measure: float(v)} for i, v in enumerate(values)}


def test_compare_matches_scipy_and_counts_wins():
    rng = np.random.default_rng(3)
    base = rng.random(200)
    ours = np.clip(base + rng.normal(0.03, 0.1, 200), 0, 1)
    c = compare(per_query(ours), per_query(base), "nDCG@10", system="a", baseline="b")
    assert (c.system, c.baseline, c.n_queries) == ("a", "b", 200)
    assert c.mean_diff == pytest.approx(ours.mean() - base.mean())
    assert c.p_value == pytest.approx(stats.ttest_rel(ours, base).pvalue)
    assert c.ci_low < c.mean_diff < c.ci_high
    # the bootstrap interval is about mean +- 1.96 standard errors
    se = (ours - base).std(ddof=1) / np.sqrt(200)
    assert c.ci_high - c.ci_low == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert c.wins + c.losses + c.ties == 200
    assert c.wins == int((ours > base).sum())


def test_identical_systems_are_not_different():
    v = per_query([0.1, 0.5, 0.9, 0.3])
    c = compare(v, v, "nDCG@10")
    assert (c.mean_diff, c.ci_low, c.ci_high, c.p_value, c.ties) == (0.0, 0.0, 0.0, 1.0, 4)
    assert not c.significant()


def test_a_query_one_system_did_not_answer_counts_zero():
    ours = {"q1": {"AP": 0.5}, "q2": {"AP": 0.5}}
    theirs = {"q1": {"AP": 0.5}}
    c = compare(ours, theirs, "AP")
    assert c.n_queries == 2 and c.mean_diff == pytest.approx(0.25) and c.wins == 1


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="'R@5' is not in the per-query values"):
        compare(per_query([0.1]), per_query([0.2]), "R@5")
    with pytest.raises(ValueError, match="empty"):
        compare({}, per_query([0.2]), "nDCG@10")
    with pytest.raises(ValueError, match="confidence"):
        compare(per_query([0.1]), per_query([0.2]), "nDCG@10", confidence=95)


def test_holm_step_down():
    v = per_query([0.1])
    cs = [compare(v, v, "nDCG@10")._replace(p_value=p) for p in (0.01, 0.04, 0.03)]
    assert [round(c.p_adjusted, 6) for c in holm(cs)] == [0.03, 0.06, 0.06]
    assert [c.p_value for c in holm(cs)] == [0.01, 0.04, 0.03]


def test_report_compares_every_system_with_the_first(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.random(50)
    systems = [SystemResult(name, {}, {"nDCG@10": float(v.mean())}, {}, per_query(v))
               for name, v in (("bm25", base), ("better", np.clip(base + 0.2, 0, 1)), ("same", base))]
    rep = Report(dataset={"name": "toy", "split": "test"}, measures=["nDCG@10"], systems=systems)
    cs = rep.significance()
    assert [c.system for c in cs] == ["better", "same"]
    assert cs[0].significant() and not cs[1].significant()
    assert cs[0].p_adjusted == pytest.approx(min(1.0, 2 * cs[0].p_value))
    assert [c.baseline for c in rep.significance(baseline="same")] == ["same", "same"]
    with pytest.raises(ValueError, match="baseline 'nope' is not in the report"):
        rep.significance(baseline="nope")
    rep.save(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "## Against bm25" in md and "| better | bm25 | nDCG@10 | +0." in md
