import json

import numpy as np
import pytest

from eval import MissingCorpusError, load_dataset
from index import brute_force_search
from index.searcher import BuildOptions
from lsr import build_index, evaluate_dataset, load_encoder
from lsr.pipeline import Retriever, RunSettings, compare

QUIET = RunSettings(show_progress=False)
QUIET_U16 = RunSettings(build=BuildOptions(quantization="uint16"), show_progress=False)
QUIET_U8 = RunSettings(build=BuildOptions(quantization="uint8"), show_progress=False)


def test_retriever_build_search_save_load(tiny_beir, tmp_path):
    ds = load_dataset(tiny_beir)
    r = build_index(ds.corpus, "bm25", show_progress=False)
    assert r.index.doc_ids.tolist() == ["d1", "d2", "d3", "d4"]
    res = r.search(["cat on a mat", "garden roses"], k=2)
    assert [r.index.doc_ids[i] for i in res.doc_idx[0]] == ["d1", "d2"]
    assert r.index.doc_ids[int(res.doc_idx[1, 0])] in ("d2", "d4")
    # the index's engine agrees with the oracle on the encoder's own vectors
    docs = r.encoder.encode_documents([t for _, t in ds.corpus])
    ref = brute_force_search(docs, r.encode_queries(["cat on a mat"]), k=4)
    np.testing.assert_array_equal(r.search(["cat on a mat"], k=4).doc_idx, ref.doc_idx)

    path = r.save(tmp_path / "idx")
    assert (path / "encoder" / "lsr.json").exists()
    again = Retriever.load(path)
    assert again.search_run({"q": "cat on a mat"}, k=2) == r.search_run({"q": "cat on a mat"}, k=2)
    assert again.index.manifest["encoder"]["kind"] == "bm25"


def test_loading_an_index_without_encoder(tiny_beir, tmp_path):
    r = build_index(load_dataset(tiny_beir).corpus, "bm25", show_progress=False)
    r.index.save(tmp_path / "bare")
    with pytest.raises(FileNotFoundError, match="no saved encoder"):
        Retriever.load(tmp_path / "bare")


def test_plain_texts_and_empty_corpus():
    r = build_index(["a cat", "a dog"], load_encoder("bm25"), show_progress=False)
    assert r.index.doc_ids.tolist() == ["0", "1"]
    with pytest.raises(ValueError, match="corpus is empty"):
        build_index([], "bm25", show_progress=False)


def test_evaluate_dataset_report_fields(tiny_beir, tmp_path):
    ds = load_dataset(tiny_beir)
    res = evaluate_dataset(ds, "bm25", k=10, out_dir=tmp_path, settings=QUIET)
    assert res.effectiveness["RR@10"] == pytest.approx(1.0)  # both queries find a relevant doc first
    eff = res.efficiency
    assert eff["search_latency"]["n"] == 2 and eff["search_latency"]["p50_ms"] > 0
    assert eff["query_nnz"]["mean"] == pytest.approx(2.0)  # "cat mat" and "garden rose"
    assert eff["doc_nnz"]["mean"] > 0 and eff["index_bytes"] > 0 and eff["flops"] > 0
    assert res.settings["encoder"]["config"]["k1"] == 0.9
    assert (tmp_path / "bm25.run").read_text().startswith("q1 Q0 d1 1 ")


def test_compare_writes_report_and_plot(tiny_beir, tmp_path):
    ds = load_dataset(tiny_beir)
    rep = compare(ds, {"a": "bm25", "b": "bm25:k1=1.2,b=0.75"}, k=10, out_dir=tmp_path, settings=QUIET)
    assert [s.name for s in rep.systems] == ["a", "b"]
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["dataset"]["n_docs"] == 4 and len(saved["systems"]) == 2
    assert (tmp_path / "tradeoff.png").exists() and (tmp_path / "report.md").exists()


def test_queries_only_set_is_refused(tiny_beir):
    (tiny_beir / "corpus.jsonl").unlink()
    with pytest.raises(MissingCorpusError):
        evaluate_dataset(load_dataset(tiny_beir), "bm25", settings=QUIET)


def test_qrels_naming_missing_document_is_refused(tiny_beir):
    with open(tiny_beir / "qrels" / "test.tsv", "a") as f:
        f.write("q1\tghost\t1\n")
    with pytest.raises(ValueError, match="test.tsv:5: .*'ghost'"):
        evaluate_dataset(load_dataset(tiny_beir), "bm25", settings=QUIET)


# ------------------------------------------------------------------ the bar on real data
ANSERINI_BM25_FLAT = {"scifact": (0.6789, 0.9253), "nfcorpus": (0.3218, 0.2457)}


@pytest.mark.parametrize("name", sorted(ANSERINI_BM25_FLAT))
def test_bm25_matches_anserini(data_root, name):
    """BM25 flat equals Anserini's regression to its four printed decimals (shared/datasets/README.md):
    same analysis (Lucene's Porter, UAX #29 words), same one-byte length norms, and equal scores kept
    in the engine's order (ties by corpus order) rather than re-sorted by document id."""
    ds = load_dataset(name, split="test", data_dir=data_root)
    res = evaluate_dataset(ds, "bm25", k=100, measures=["nDCG@10", "R@100"], settings=QUIET)
    ndcg, recall = ANSERINI_BM25_FLAT[name]
    assert res.effectiveness["nDCG@10"] == pytest.approx(ndcg, abs=5e-5)
    assert res.effectiveness["R@100"] == pytest.approx(recall, abs=5e-5)


def test_quantized_index_keeps_bm25_effectiveness(data_root):
    """uint8 impacts (one global scale) cost little nDCG@10 on real BM25 vectors; uint16 almost none."""
    ds = load_dataset("scifact", data_dir=data_root)
    full = evaluate_dataset(ds, "bm25", k=100, measures=["nDCG@10"], settings=QUIET)
    q16 = evaluate_dataset(ds, "bm25", k=100, measures=["nDCG@10"], settings=QUIET_U16)
    q8 = evaluate_dataset(ds, "bm25", k=100, measures=["nDCG@10"], settings=QUIET_U8)
    assert abs(q16.effectiveness["nDCG@10"] - full.effectiveness["nDCG@10"]) < 0.002
    assert abs(q8.effectiveness["nDCG@10"] - full.effectiveness["nDCG@10"]) < 0.01
    assert q8.efficiency["index_bytes"] < full.efficiency["index_bytes"]
