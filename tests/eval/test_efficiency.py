import numpy as np
import pytest

from eval import flops, latency_stats, throughput, vector_length_stats


def test_latency_stats():
    s = latency_stats(np.arange(1, 101) / 1000.0)  # 1..100 ms
    assert s["mean_ms"] == pytest.approx(50.5)
    assert s["p50_ms"] == pytest.approx(50.5)
    assert s["p95_ms"] == pytest.approx(95.05)
    assert s["p99_ms"] == pytest.approx(99.01)
    assert s["max_ms"] == pytest.approx(100) and s["n"] == 100
    with pytest.raises(ValueError):
        latency_stats([])


def test_flops_by_hand():
    # 4 documents; term 0 in all of them, term 1 in one, term 2 in none.
    df = np.array([4, 1, 0])
    # query A = {0, 1}, query B = {2}: expected overlaps per pair = ((4 + 1)/4 + 0/4) / 2
    assert flops(np.array([0, 1, 2]), 2, df, 4) == pytest.approx(0.625)
    # the SPLADE form: sum_j p_q(j) p_d(j)
    p_q = np.array([0.5, 0.5, 0.5])
    assert flops(np.array([0, 1, 2]), 2, df, 4) == pytest.approx(float((p_q * df / 4).sum()))
    assert flops(np.array([], dtype=int), 0, df, 4) == 0.0


def test_vector_lengths_and_throughput():
    s = vector_length_stats(np.array([0, 2, 2, 7]))  # lengths 2, 0, 5; p99 = 2 + 0.98 * 3
    assert s == {"mean": pytest.approx(7 / 3), "median": 2.0, "p99": pytest.approx(4.94), "max": 5}
    assert throughput(100, 0.5) == 200.0
