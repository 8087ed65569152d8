import pytest

from eval import DataFormatError, read_trec_qrels, read_trec_run, write_trec_qrels, write_trec_run


def test_run_roundtrip_and_ordering(tmp_path):
    run = {"q2": {"b": 1.0, "a": 1.0, "c": 3.5}, "q1": {"x": 0.25}}
    path = write_trec_run(run, tmp_path / "r.trec", name="bm25")
    lines = path.read_text().splitlines()
    assert lines[0] == "q1 Q0 x 1 0.250000 bm25"
    assert lines[1:] == ["q2 Q0 c 1 3.500000 bm25", "q2 Q0 a 2 1.000000 bm25", "q2 Q0 b 3 1.000000 bm25"]
    assert read_trec_run(path) == run
    assert [p.name for p in tmp_path.iterdir()] == ["r.trec"]


def test_malformed_runs(tmp_path):
    p = tmp_path / "bad.trec"
    p.write_text("q1 Q0 d1 1 2.0 x\nq1 Q0 d2 2\n")
    with pytest.raises(DataFormatError, match=r"bad.trec:2: expected 6 columns"):
        read_trec_run(p)
    p.write_text("q1 Q0 d1 1 high x\n")
    with pytest.raises(DataFormatError, match=r"bad.trec:1: score 'high'"):
        read_trec_run(p)
    p.write_text("q1 Q0 d1 1 2 x\nq1 Q0 d1 2 1 x\n")
    with pytest.raises(DataFormatError, match=r"bad.trec:2: document 'd1' appears twice"):
        read_trec_run(p)
    with pytest.raises(ValueError, match="white space"):
        write_trec_run({}, tmp_path / "x", name="two words")


def test_qrels_roundtrip(tmp_path):
    qrels = {"1": {"a": 2, "b": 0}, "2": {"c": 1}}
    assert read_trec_qrels(write_trec_qrels(qrels, tmp_path / "q.txt")) == qrels
