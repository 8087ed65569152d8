"""`lsr reproduce`: the matrix is validated, rows run and are checked, misses exit non-zero, the README table is the
matrix's."""

import json
from pathlib import Path

import pytest

from lsr.cli import main
from lsr.reproduce import MatrixError, load_matrix, record, render_table, reproduce, select

README = Path(__file__).resolve().parents[2] / "README.md"


def _matrix(tmp_path, rows, tolerance=None) -> Path:
    p = tmp_path / "matrix.json"
    p.write_text(json.dumps({"format": "lsr-reproduce-matrix", "tolerance": tolerance or {"nDCG@10": 0.001},
                             "rows": rows}), encoding="utf-8")
    return p


def test_the_shipped_matrix_loads_and_covers_every_local_collection():
    m = load_matrix()
    ids = {r.id for r in m.rows}
    for ds in ("scifact", "nfcorpus", "cranfield", "med", "adi", "miracl-yo"):
        assert f"{ds}/bm25" in ids
    for ds in ("scifact", "nfcorpus"):
        assert f"{ds}/splade-tiny" in ids and f"{ds}/inference-free-tiny" in ids
    assert all(v is not None for r in m.rows for v in r.expected.values()), "a row without an expected value"
    assert {r.id for r in select(m.rows, "msmarco")} == {"msmarco-dev-small/bm25", "trec-dl-2019/bm25", "trec-dl-2020/bm25"}
    assert {r.id for r in select(m.rows, "nfcorpus/*")} >= {"nfcorpus/bm25", "nfcorpus/inference-free-tiny"}


def test_the_readme_table_is_rendered_from_the_matrix():
    from lsr.reproduce import README_BEGIN, README_END

    text = README.read_text(encoding="utf-8")
    assert README_BEGIN in text, "README lost its reproduce-table markers"
    table = text.split(README_BEGIN, 1)[1].split(README_END, 1)[0].strip()
    assert table == render_table().strip(), "README table differs from the matrix: run `lsr reproduce --update-readme README.md`"


@pytest.mark.parametrize("bad,message", [
    ({"format": "something-else", "rows": []}, "not an lsr reproduction matrix"),
    ({"format": "lsr-reproduce-matrix", "rows": [{"id": "a", "dataset": "x", "encoder": "bm25",
                                                   "expected": {"nDCG@10": 0.5}, "tolerence": {}}]}, "unknown keys"),
    ({"format": "lsr-reproduce-matrix", "rows": [{"id": "a", "dataset": "x", "encoder": "bm25",
                                                   "expected": {"nDCG@10": 0.5}}] * 2}, "duplicate id"),
    ({"format": "lsr-reproduce-matrix", "rows": [{"id": "a", "dataset": "x", "encoder": "bm25",
                                                   "expected": {"nDCG@10": "high"}}]}, "map measures to numbers"),
])
def test_a_malformed_matrix_is_refused_with_the_file_and_row(tmp_path, bad, message):
    p = tmp_path / "m.json"
    p.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(MatrixError, match=message) as e:
        load_matrix(p)
    assert str(p) in str(e.value)


def test_rows_pass_miss_and_skip_and_the_exit_code_says_so(tmp_path, tiny_beir, capsys):
    rows = [{"id": "tiny/bm25", "dataset": str(tiny_beir), "encoder": "bm25", "k": 10,
             "expected": {"nDCG@10": None, "doc_nnz": None}},
            {"id": "absent/bm25", "dataset": str(tmp_path / "no-such-set"), "encoder": "bm25", "k": 10,
             "expected": {"nDCG@10": 0.5}, "requires": "a collection that is not here"}]
    path = _matrix(tmp_path, rows)
    first = reproduce(load_matrix(path), out_dir=tmp_path / "rep1")
    assert [o.status for o in first.outcomes] == ["fail", "skip"]  # no expected value yet: a miss
    assert "not here" in first.outcomes[1].reason
    record(first, load_matrix(path))
    recorded = json.loads(path.read_text())["rows"][0]
    assert 0 < recorded["expected"]["nDCG@10"] <= 1 and recorded["expected"]["doc_nnz"] > 0
    assert recorded["source"].startswith("measured by lsr")
    # now it reproduces, and the CLI exits 0; the skipped row is listed, not failed
    assert main(["-q", "reproduce", "--matrix", str(path), "--out", str(tmp_path / "rep2")]) == 0
    out = capsys.readouterr().out
    assert "tiny/bm25 | PASS" in out and "absent/bm25 | SKIP" in out
    report = json.loads((tmp_path / "rep2" / "report.json").read_text())
    assert report["counts"] == {"pass": 1, "fail": 0, "error": 0, "skip": 1} and report["ok"]
    # a number outside its tolerance is a miss: exit 1, the row marked
    data = json.loads(path.read_text())
    data["rows"][0]["expected"]["nDCG@10"] -= 0.01
    path.write_text(json.dumps(data), encoding="utf-8")
    assert main(["-q", "reproduce", "--matrix", str(path), "--out", str(tmp_path / "rep3"), "--only", "tiny"]) == 1
    assert "tiny/bm25 | FAIL" in capsys.readouterr().out
    # nothing could run: not a pass
    assert main(["-q", "reproduce", "--matrix", str(path), "--out", str(tmp_path / "rep4"), "--only", "absent"]) == 1
    assert main(["-q", "reproduce", "--matrix", str(path), "--only", "nothing-matches"]) == 2
