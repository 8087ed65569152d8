"""CIFF and OpenSearch exports, checked by round trip: what is written reads back to the same top-k."""

import gzip
import json

import numpy as np
import pytest
import scipy.sparse as sp

from eval.errors import DataFormatError
from index import InvertedIndex, brute_force_search
from lsr.ciff import read_ciff, write_ciff
from lsr.exports import quantize_weights
from lsr.opensearch import (
    feature_name,
    opensearch_mapping,
    opensearch_query,
    read_opensearch_bulk,
    score_query,
    token_of,
    write_opensearch_bulk,
)

pytest.importorskip("google.protobuf")

TERMS = ["cat", "dog", "##s", ".", "u.s.", "100%", "", "bark"]


def _vectors(rng, n, density=0.4):
    dense = np.where(rng.random((n, len(TERMS))) < density, rng.random((n, len(TERMS))) * 3 + 0.01, 0)
    dense[:, 6] = 0  # the empty token never carries weight
    return sp.csr_array(dense.astype(np.float32))


def _quantized(m, scale):
    q = sp.csr_array((quantize_weights(m.data, scale) / scale, m.indices, m.indptr), shape=m.shape)
    q.eliminate_zeros()
    return q


@pytest.mark.parametrize("name", ["x.ciff", "x.ciff.gz"])
def test_ciff_round_trip_gives_the_same_top_k(rng, tmp_path, name):
    docs, queries = _vectors(rng, 60), _vectors(rng, 8)
    ids = [f"doc-{i}" for i in range(60)]
    path = write_ciff(tmp_path / name, ids, docs, TERMS, scale=100)
    back_ids, back = read_ciff(path, TERMS, scale=100)
    assert back_ids == ids
    expected = _quantized(docs, 100)
    np.testing.assert_allclose(back.toarray(), expected.toarray(), rtol=1e-6)
    ours = InvertedIndex.build(expected).search(queries, k=10)
    theirs = brute_force_search(back, queries, k=10)
    np.testing.assert_array_equal(ours.doc_idx, theirs.doc_idx)


def test_ciff_layout_is_the_published_one(rng, tmp_path):
    docs = sp.csr_array(np.array([[0, 1.0, 0, 0, 0, 0, 0, 0.5], [2.0, 0, 0, 0, 0, 0, 0, 0.25]], np.float32))
    path = write_ciff(tmp_path / "x.ciff", ["a", "b"], docs, TERMS, scale=4)
    from lsr.ciff import _messages, _read_delimited

    msg = _messages()
    with open(path, "rb") as f:
        header = msg["Header"].FromString(_read_delimited(f, path, "header"))
        lists = [msg["PostingsList"].FromString(_read_delimited(f, path, "list")) for _ in range(3)]
        records = [msg["DocRecord"].FromString(_read_delimited(f, path, "doc")) for _ in range(2)]
        assert f.read() == b""
    assert (header.version, header.num_postings_lists, header.num_docs, header.total_terms_in_collection) == (1, 3, 2, 15)
    assert [pl.term for pl in lists] == ["bark", "cat", "dog"]  # lexicon in byte order
    bark = lists[0]
    assert (bark.df, bark.cf) == (2, 3)
    assert [(p.docid, p.tf) for p in bark.postings] == [(0, 2), (1, 1)]  # document ids as gaps
    assert [(r.docid, r.collection_docid, r.doclength) for r in records] == [(0, "a", 6), (1, "b", 9)]


def test_ciff_truncated_or_foreign_files_are_named(rng, tmp_path):
    path = write_ciff(tmp_path / "x.ciff", ["a", "b"], _vectors(rng, 2), TERMS)
    raw = path.read_bytes()
    path.write_bytes(raw[:-3])
    with pytest.raises(DataFormatError, match="x.ciff: the file ends inside"):
        read_ciff(path, TERMS)
    path.write_bytes(raw)
    with pytest.raises(DataFormatError, match="not in the vocabulary"):
        read_ciff(path, ["cat"])


def test_feature_names_escape_dots_and_percent():
    for token in TERMS:
        assert "." not in feature_name(token)
        assert token_of(feature_name(token)) == token
    assert feature_name("u.s.") == "u%2Es%2E" and feature_name("100%") == "100%25"


@pytest.mark.parametrize("name", ["bulk.ndjson", "bulk.ndjson.gz"])
def test_opensearch_bulk_and_query_score_the_dot_product(rng, tmp_path, name):
    docs, queries = _vectors(rng, 50), _vectors(rng, 6)
    ids = [f"d{i}" for i in range(50)]
    path = write_opensearch_bulk(tmp_path / name, ids, docs, TERMS, index="test")
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        first = [json.loads(next(f)) for _ in range(2)]
    assert first[0] == {"index": {"_index": "test", "_id": "d0"}}
    assert set(first[1]) == {"id", "text", "vector"}
    assert opensearch_mapping()["mappings"]["properties"]["vector"] == {"type": "rank_features"}
    back_ids, back = read_opensearch_bulk(path, TERMS)
    assert back_ids == ids
    np.testing.assert_array_equal(back.toarray(), docs.toarray())
    ours = InvertedIndex.build(docs).search(queries, k=10)
    for i in range(queries.shape[0]):
        body = opensearch_query(queries[[i]], TERMS, k=10)
        assert all("." not in c["rank_feature"]["field"].partition(".")[2] for c in body["query"]["bool"]["should"])
        hits = score_query(body, back_ids, back, TERMS)
        expected = [(ids[d], s) for d, s in zip(ours.doc_idx[i], ours.scores[i]) if d >= 0]
        assert [h for h, _ in hits] == [h for h, _ in expected]
        np.testing.assert_allclose([s for _, s in hits], [s for _, s in expected], rtol=1e-5)


def test_opensearch_bulk_errors_name_the_line(tmp_path):
    p = tmp_path / "b.ndjson"
    p.write_text('{"index": {"_id": "a"}}\n{"id": "a", "vector": {"nope": 1.0}}\n')
    with pytest.raises(DataFormatError, match="b.ndjson:2: feature 'nope'"):
        read_opensearch_bulk(p, TERMS)
    p.write_text('{"index": {"_id": "a"}}\n')
    with pytest.raises(DataFormatError, match="truncated"):
        read_opensearch_bulk(p, TERMS)


def test_cli_exports_a_real_index_that_reads_back_to_the_same_run(data_root, tmp_path, capsys):
    from lsr.cli import main
    from lsr.pipeline import Retriever

    idx_dir = tmp_path / "idx"
    assert main(["index", "build", "--dataset", "adi", "--data-dir", str(data_root), "--encoder", "bm25",
                 "--out", str(idx_dir), "-q"]) == 0
    r = Retriever.load(idx_dir)
    terms = r.encoder.terms()
    queries = r.encode_queries(["computer retrieval of documents", "automatic indexing of text"])
    ours = r.index.search(queries, k=10)
    assert main(["export", "--index", str(idx_dir), "--out", str(tmp_path / "adi.ciff.gz"), "--scale", "1000"]) == 0
    ids, vectors = read_ciff(tmp_path / "adi.ciff.gz", terms, scale=1000)
    theirs = brute_force_search(vectors, queries, k=10)
    assert ids == r.index.doc_ids.tolist()
    np.testing.assert_array_equal(theirs.doc_idx[:, :5], ours.doc_idx[:, :5])  # 3-digit impacts: the head agrees
    assert main(["export", "--index", str(idx_dir), "--out", str(tmp_path / "adi.ndjson")]) == 0
    assert json.loads((tmp_path / "adi.mapping.json").read_text()) == opensearch_mapping()
    ids, vectors = read_opensearch_bulk(tmp_path / "adi.ndjson", terms)
    np.testing.assert_array_equal(brute_force_search(vectors, queries, k=10).doc_idx, ours.doc_idx)
    assert "OpenSearch" in capsys.readouterr().out
