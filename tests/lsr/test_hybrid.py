"""Dense search on faiss and hybrid fusion, on a tiny random BERT (no download; MiniLM itself in slow tests)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("faiss")

from index import SearchResults  # noqa: E402
from index.fusion import reciprocal_rank_fusion  # noqa: E402
from lsr.dense import FaissIndex  # noqa: E402

WORDS = "the cat sat on mat dog dogs bark insulin resistance muscle cells fish swim river bank money".split()
CORPUS = [("d0", "the cat sat on the mat"), ("d1", "dogs bark at the cat"), ("d2", "insulin resistance in muscle cells"),
          ("d3", "fish swim in the river"), ("d4", "the bank has money"), ("d5", "cat and dog and fish")]


def _brute(docs, queries, k):
    scores = queries @ docs.T
    idx = np.array([sorted(range(len(docs)), key=lambda j: (-s[j], j))[:k] for s in scores])
    return idx, np.take_along_axis(scores, idx, axis=1)


def test_flat_faiss_equals_brute_force_with_ties_by_index(rng, tmp_path):
    docs = rng.normal(size=(50, 8)).astype(np.float32)
    docs[10] = docs[3]  # a tie: the smaller index first
    queries = np.vstack([docs[3], rng.normal(size=(4, 8)).astype(np.float32)])
    idx = FaissIndex.build([f"d{i}" for i in range(50)], docs)
    res = idx.search(queries, k=5)
    ref_idx, ref_scores = _brute(docs, queries, 5)
    np.testing.assert_array_equal(res.doc_idx, ref_idx)
    np.testing.assert_allclose(res.scores, ref_scores, rtol=1e-5)
    assert res.doc_idx[0, :2].tolist() == [3, 10]
    loaded = FaissIndex.load(idx.save(tmp_path / "f"))
    np.testing.assert_array_equal(loaded.search(queries, k=5).doc_idx, res.doc_idx)
    assert loaded.describe()["kind"] == "faiss" and loaded.size_bytes() > 0


def test_hnsw_finds_nearly_what_exact_search_finds(rng):
    docs = rng.normal(size=(2000, 16)).astype(np.float32)
    queries = rng.normal(size=(20, 16)).astype(np.float32)
    exact = FaissIndex.build(range(2000), docs).search(queries, k=10)
    approx = FaissIndex.build(range(2000), docs, index_type="hnsw", ef_search=256).search(queries, k=10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact.doc_idx, approx.doc_idx)])
    assert recall >= 0.9


def test_bad_input_is_refused(rng, tmp_path):
    with pytest.raises(ValueError, match="document ids"):
        FaissIndex.build(["a"], np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        FaissIndex.build(["a"], np.full((1, 3), np.nan, np.float32))
    idx = FaissIndex.build(["a", "b"], np.eye(2, dtype=np.float32))
    with pytest.raises(ValueError, match=r"\[n, 2\]"):
        idx.search(np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match="not a readable"):
        FaissIndex.load(tmp_path)


@pytest.fixture(scope="module")
def tiny_dense(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    d = tmp_path_factory.mktemp("dense")
    (d / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    BertTokenizerFast(vocab_file=str(d / "vocab.txt")).save_pretrained(d)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(WORDS) + 5, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(d)
    return str(d)


def test_dense_encoder_gives_unit_vectors(tiny_dense):
    from lsr.encoders.dense import DenseEncoder

    enc = DenseEncoder(tiny_dense, bf16=False)
    e = enc.embed([t for _, t in CORPUS])
    assert e.shape == (6, 16) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(enc.embed([CORPUS[2][1]])[0], e[2], rtol=1e-4, atol=1e-5)  # batching changes nothing


def test_hybrid_fuses_both_sides_in_the_sparse_index_order(tiny_dense):
    from lsr.hybrid import HybridRetriever, choose_weight

    h = HybridRetriever.build(CORPUS, "bm25", dense_model=tiny_dense, show_progress=False, candidates=6)
    queries = ["cat on the mat", "insulin in muscle"]
    sparse, dense = h.search_parts(queries, k=6)
    fused = h.search(queries, k=3)
    expected = reciprocal_rank_fusion([sparse, dense], 3)
    np.testing.assert_array_equal(fused.doc_idx, expected.doc_idx)
    assert isinstance(fused, SearchResults) and fused.k == 3
    qrels = {"a": {"d0": 1}, "b": {"d2": 1}}
    w = choose_weight(h, dict(zip("ab", queries)), qrels, k=6)
    assert 0 <= w <= 1
    linear = h.with_fusion("linear", weight=w).search(queries, k=3)
    assert linear.doc_idx.shape == (2, 3)
    assert h.describe()["fusion"] == "rrf"
    with pytest.raises(ValueError, match="fusion must be"):
        h.with_fusion("max")


def test_hybrid_specs_parse_or_say_how_to_write_them():
    from lsr.hybrid import HybridSpec

    s = HybridSpec.parse("hybrid:bm25+dense")
    assert (s.sparse, s.fusion, s.weight, s.dense_model) == ("bm25", "rrf", None, "all-MiniLM-L6-v2")
    s = HybridSpec.parse("hybrid:bm25:k1=1.2,b=0.75+dense:/models/mini,weight=auto,candidates=50")
    assert (s.sparse, s.dense_model, s.fusion, s.weight, s.candidates) == (
        "bm25:k1=1.2,b=0.75", "/models/mini", "linear", "auto", 50)
    for bad, message in [("hybrid:bm25", "write it as"), ("hybrid:bm25+sparse", "write it as"),
                         ("hybrid:bm25+dense,weight=2", r"in \[0, 1\]"), ("hybrid:bm25+dense,wieght=0.2", "unknown option"),
                         ("hybrid:bm25+dense,fusion=rrf,weight=auto", "drop fusion=rrf")]:
        with pytest.raises(ValueError, match=message):
            HybridSpec.parse(bad)


def test_evaluate_names_a_fusion_as_an_encoder(tiny_dense, tmp_path, make_beir, capsys):
    import json

    from lsr.cli import main

    corpus = [{"_id": d, "title": "", "text": t} for d, t in CORPUS]
    queries = [{"_id": "a", "text": "cat on the mat"}, {"_id": "b", "text": "insulin in muscle"},
               {"_id": "c", "text": "fish in the river"}]
    folder = make_beir(tmp_path / "tiny", corpus, queries,
                       {"test": [("a", "d0", 1), ("b", "d2", 1)], "dev": [("c", "d3", 1)]})
    out = tmp_path / "out"
    code = main(["-q", "evaluate", "--dataset", str(folder), "-k", "5", "--out", str(out), "--encoder", "bm25",
                 "--encoder", f"hybrid:bm25+dense:{tiny_dense},weight=auto", "--name", "bm25", "--name", "hybrid"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    hybrid = report["systems"][1]
    assert hybrid["name"] == "hybrid" and hybrid["settings"]["kind"] == "hybrid"
    assert hybrid["settings"]["fusion"] == "linear" and hybrid["settings"]["weight_chosen_on"] == "dev"
    assert 0 <= hybrid["effectiveness"]["nDCG@10"] <= 1 and (out / "hybrid.run").exists()
    assert main(["-q", "evaluate", "--dataset", str(folder), "--encoder", "hybrid:bm25+dens"]) == 1
