import math

import pytest

from eval import evaluate, parse_measures

QRELS = {"q1": {"d1": 1, "d2": 0, "d3": 2}, "q2": {"d9": 1, "d8": 1}}
RUN = {"q1": {"d1": 3.0, "d3": 2.0, "d4": 1.0}, "q2": {"d5": 2.0, "d8": 1.0}}


def test_values_computed_by_hand():
    ev = evaluate(RUN, QRELS, ["nDCG@10", "RR@10", "R@100", "AP", "P@2"])
    # q1: ranking d1(1) d3(2) d4(-); DCG = 1/log2(2) + 2/log2(3); ideal = 2/log2(2) + 1/log2(3)
    ndcg_q1 = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    # q2: ranking d5(-) d8(1); ideal d9, d8 both 1: DCG = 1/log2(3); IDCG = 1 + 1/log2(3)
    ndcg_q2 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ev.per_query["q1"]["nDCG@10"] == pytest.approx(ndcg_q1)
    assert ev.per_query["q2"]["nDCG@10"] == pytest.approx(ndcg_q2)
    assert ev["nDCG@10"] == pytest.approx((ndcg_q1 + ndcg_q2) / 2)
    assert ev["RR@10"] == pytest.approx((1 + 1 / 2) / 2)
    assert ev["R@100"] == pytest.approx((1.0 + 0.5) / 2)
    # AP q1: relevant d1 at 1 (P=1), d3 at 2 (P=1) -> 1; q2: d8 at 2 (P=1/2), d9 missing -> 0.25
    assert ev["AP"] == pytest.approx((1 + 0.25) / 2)
    assert ev["P@2"] == pytest.approx((1.0 + 0.5) / 2)
    assert list(ev.aggregate) == ["nDCG@10", "RR@10", "R@100", "AP", "P@2"]


def test_unanswered_judged_query_counts_as_zero_and_unjudged_is_ignored():
    run = {"q1": RUN["q1"], "q7": {"d1": 1.0}}
    ev = evaluate(run, QRELS, ["RR@10"])
    assert ev["RR@10"] == pytest.approx(0.5)
    assert "q7" not in ev.per_query


def test_default_measures_and_bad_names():
    assert [str(m) for m in parse_measures(None)] == ["nDCG@10", "RR@10", "R@100", "R@1000", "AP"]
    assert [str(m) for m in parse_measures("nDCG@10, R@100")] == ["nDCG@10", "R@100"]
    with pytest.raises(ValueError, match="unknown measure 'nDGC@10'.*ir_measures syntax"):
        parse_measures(["nDGC@10"])
    with pytest.raises(ValueError, match="qrels are empty"):
        evaluate(RUN, {})


def test_prepared_evaluators_are_reused_and_never_stale():
    from eval import metrics

    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}
    run = {"q1": {"d1": 2.0, "d2": 1.0}, "q2": {"d1": 2.0, "d2": 1.0}}
    first = evaluate(run, qrels, ["nDCG@10"]).aggregate["nDCG@10"]
    prepared = metrics._EVALUATORS[-1][-1]
    assert evaluate(run, qrels, ["nDCG@10"]).aggregate["nDCG@10"] == first
    assert metrics._EVALUATORS[-1][-1] is prepared  # the same qrels: prepared once
    qrels["q2"]["d2"] = 0  # changed in place: prepared again, the new grades count
    assert evaluate(run, qrels, ["nDCG@10"]).aggregate["nDCG@10"] < first
