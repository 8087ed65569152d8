import json

import numpy as np
import pytest
import scipy.sparse as sp

from eval import DataFormatError
from lsr.exports import read_anserini_vectors, write_anserini_queries, write_anserini_vectors

TERMS = ["cat", "dog", "##s", "bark"]


@pytest.mark.parametrize("name", ["v.jsonl", "v.jsonl.gz"])
def test_vectors_roundtrip(tmp_path, name):
    m = sp.csr_array(np.array([[1.234, 0, 0.5, 0], [0, 0, 0, 0], [0, 2.0, 0, 0.004]], np.float32))
    path = write_anserini_vectors(tmp_path / name, ["a", "b", "c"], m, TERMS, scale=100)
    ids, back = read_anserini_vectors(path, TERMS, scale=100)
    assert ids == ["a", "b", "c"]
    # integer-quantized: 1.234 -> 123, 0.004 -> 0 (dropped)
    np.testing.assert_allclose(back.toarray(), [[1.23, 0, 0.5, 0], [0, 0, 0, 0], [0, 2.0, 0, 0]], rtol=1e-6)
    if name.endswith(".jsonl"):
        first = json.loads(path.read_text().splitlines()[0])
        assert first == {"id": "a", "contents": "", "vector": {"cat": 123, "##s": 50}}


def test_bad_vector_files(tmp_path):
    p = tmp_path / "v.jsonl"
    p.write_text('{"id": "a", "vector": {"cat": 1}}\n{"id": "b", "vector": {"unicorn": 3}}\n')
    with pytest.raises(DataFormatError, match=r"v.jsonl:2: token 'unicorn'"):
        read_anserini_vectors(p, TERMS)
    p.write_text('{"id": "a", "vector": [1, 2]}\n')
    with pytest.raises(DataFormatError, match=r"v.jsonl:1: expected"):
        read_anserini_vectors(p, TERMS)


def test_queries_repeat_tokens_by_weight(tmp_path):
    q = sp.csr_array(np.array([[0.02, 0, 0, 0.031], [0.04, 0, 0, 0.06], [1.0, 1.0, 0, 0]], np.float32))
    path = write_anserini_queries(tmp_path / "q.tsv", ["7", "8", "bm25"], q, TERMS, scale=100)
    # 4:6 is 2:3 (same ranking); a BM25 query of weights 1.0 lists each token once, not 100 times
    assert path.read_text() == "7\tcat cat bark bark bark\n8\tcat cat bark bark bark\nbm25\tcat dog\n"


def test_queries_as_json_vectors_keep_weights(tmp_path):
    q = sp.csr_array(np.array([[1.0, 0, 0, 0.031]], np.float32))
    path = write_anserini_queries(tmp_path / "q.jsonl", ["7"], q, TERMS, scale=100)
    assert json.loads(path.read_text()) == {"id": "7", "vector": {"cat": 100, "bark": 3}}


def test_cli_export_from_index_and_shards(data_root, tmp_path, capsys):
    from lsr.cli import main
    from lsr.pipeline import Retriever

    assert main(["index", "build", "--dataset", "adi", "--data-dir", str(data_root), "--encoder", "bm25",
                 "--out", str(tmp_path / "idx"), "-q"]) == 0
    assert main(["export", "--index", str(tmp_path / "idx"), "--out", str(tmp_path / "v.jsonl.gz"), "-q"]) == 0
    r = Retriever.load(tmp_path / "idx")
    ids, vectors = read_anserini_vectors(tmp_path / "v.jsonl.gz", r.encoder.terms())
    assert ids == r.index.doc_ids.tolist()
    orig = r.index.document_vectors().toarray()
    np.testing.assert_allclose(vectors.toarray(), np.rint(orig * 100) / 100, atol=1e-6)
    assert main(["export", "--index", str(tmp_path / "idx"), "--queries",
                 str(data_root / "adi" / "queries.jsonl"), "--out", str(tmp_path / "q.tsv"), "-q"]) == 0
    assert len((tmp_path / "q.tsv").read_text().splitlines()) == 35
    assert main(["encode", "--dataset", "adi", "--data-dir", str(data_root), "--encoder", "bm25",
                 "--out", str(tmp_path / "enc"), "-q"]) == 0
    assert main(["export", "--shards", str(tmp_path / "enc"), "--out", str(tmp_path / "s.jsonl"), "-q"]) == 0
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 82
    assert main(["export", "--out", str(tmp_path / "x.jsonl")]) == 2
    capsys.readouterr()
