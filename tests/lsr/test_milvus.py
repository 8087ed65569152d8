"""The Milvus searcher on Milvus Lite: the oracle's scores, adds and deletes that show, and the protocol."""

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from index import brute_force_search  # noqa: E402
from index.searcher import Searcher, SearchOptions, searcher_class  # noqa: E402
from lsr.milvus import MilvusIndex  # noqa: E402


def _vectors(rng, n, dim=30, density=0.2):
    dense = np.where(rng.random((n, dim)) < density, rng.integers(1, 6, (n, dim)) / 4.0, 0).astype(np.float32)
    dense[np.arange(n), rng.integers(0, dim, n)] = 1.0  # no empty document
    return sp.csr_array(dense)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    rng = np.random.default_rng(3)
    docs, queries = _vectors(rng, 120), _vectors(rng, 10)
    ids = [f"doc-{i}" for i in range(120)]
    m = MilvusIndex.build(tmp_path_factory.mktemp("milvus") / "m", ids, docs, show_progress=False)
    yield m, docs, queries, ids
    m.close()


def test_scores_equal_the_oracle(built):
    m, docs, queries, _ = built
    assert isinstance(m, Searcher) and searcher_class("milvus") is MilvusIndex
    ref = brute_force_search(docs, queries, k=10)
    res = m.search(queries, k=10, options=SearchOptions(engine="milvus"))
    np.testing.assert_allclose(res.scores, ref.scores, rtol=1e-5)
    np.testing.assert_array_equal(res.doc_idx, ref.doc_idx)  # ties broken by document index, as lsr does


def test_adds_and_deletes_appear_and_disappear(built, tmp_path):
    m, docs, queries, ids = built
    q = sp.csr_array(np.eye(1, 30, 7, dtype=np.float32) * 100)  # a query for term 7 alone
    new = sp.csr_array(np.eye(1, 30, 7, dtype=np.float32) * 50)  # a document that wins it
    m.add(["fresh"], new)
    top = m.search(q, k=1)
    assert m.doc_ids[int(top.doc_idx[0, 0])] == "fresh" and top.scores[0, 0] == pytest.approx(5000)
    m.delete(["fresh"])
    assert m.doc_ids[int(m.search(q, k=1).doc_idx[0, 0])] != "fresh"
    reopened = MilvusIndex.load(m.path)  # the ids it handed out survive a reopen
    assert reopened.n_docs == 121 and reopened.doc_ids[-1] == "fresh"
    with pytest.raises(KeyError, match="unknown document id"):
        m.delete(["never-added"])


def test_save_load_and_describe(built, tmp_path):
    m, docs, queries, _ = built
    copy = MilvusIndex.load(m.save(tmp_path / "copy"))
    np.testing.assert_array_equal(copy.search(queries, k=5).doc_idx, m.search(queries, k=5).doc_idx)
    d = copy.describe()
    assert d["kind"] == "milvus" and d["uri"] == "milvus-lite" and d["bytes"] > 0
    copy.close()


def test_bad_input_is_refused(built, tmp_path):
    m, *_ = built
    with pytest.raises(ValueError, match="options for the 'taat' engine"):
        m.search(sp.csr_array((1, 30), dtype=np.float32), options=SearchOptions(engine="taat"))
    with pytest.raises(ValueError, match="dimension"):
        m.search(sp.csr_array((1, 31), dtype=np.float32))
    assert (m.search(sp.csr_array((2, 30), dtype=np.float32), k=3).doc_idx == -1).all()  # empty queries match nothing
    with pytest.raises(FileNotFoundError, match="not an lsr Milvus searcher"):
        MilvusIndex.load(tmp_path)
    with pytest.raises(ValueError, match="unique"):
        MilvusIndex.build(tmp_path / "dup", ["a", "a"], sp.csr_array(np.ones((2, 3), np.float32)))


def test_search_options_are_validated_values():
    from index import Approx

    assert SearchOptions().searcher == "lsr" and SearchOptions(engine="milvus").searcher == "milvus"
    with pytest.raises(ValueError, match="unknown engine"):
        SearchOptions(engine="elastic")
    with pytest.raises(ValueError, match="runs on lsr's engine"):
        SearchOptions(engine="milvus", approx=Approx(query_terms=3))
    opts = SearchOptions(engine="auto", approx=Approx(query_terms=3), threads=2, target_recall=0.95)
    assert SearchOptions.from_json(opts.to_json()) == opts


def test_cli_builds_a_milvus_lite_collection_beside_the_index(tiny_beir, tmp_path, capsys):
    from lsr.cli import main

    out = tmp_path / "idx"
    assert main(["-q", "index", "build", "--dataset", str(tiny_beir), "--encoder", "bm25", "--out", str(out),
                 "--milvus"]) == 0
    assert "Milvus collection" in capsys.readouterr().out and (out / "milvus").is_dir()
    assert main(["-q", "search", str(out), "cat on a mat", "--format", "json", "-k", "2"]) == 0
    lsr_hits = capsys.readouterr().out
    assert main(["-q", "search", str(out), "cat on a mat", "--format", "json", "-k", "2", "--engine", "milvus"]) == 0
    milvus_hits = capsys.readouterr().out
    import json

    got, want = json.loads(milvus_hits)["results"], json.loads(lsr_hits)["results"]
    assert [h["doc_id"] for h in got] == [h["doc_id"] for h in want] and len(want) == 2
