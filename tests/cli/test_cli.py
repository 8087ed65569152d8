import json

import pytest

from lsr.cli import main


@pytest.fixture
def med_index(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "idx-med"
    assert main(["index", "build", "--dataset", "med", "--data-dir", str(data_root), "--encoder", "bm25",
                 "--out", str(out), "-q"]) == 0
    return out


def test_help_shows_examples(capsys):
    for argv in (["--help"], ["evaluate", "--help"], ["index", "build", "--help"], ["search", "--help"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "example" in out and "lsr " in out


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["index"]) == 2
    assert main(["evaluate"]) == 2  # no --dataset
    assert main(["search", "idx"]) == 2  # neither a query nor --queries
    assert main(["evaluate", "--dataset", "x", "-k", "0"]) == 2


def test_evaluate_end_to_end(data_root, tmp_path, capsys):
    out = tmp_path / "adi"
    rc = main(["evaluate", "--dataset", "adi", "--data-dir", str(data_root), "--encoder", "bm25",
               "--encoder", "bm25:k1=1.2,b=0.75", "--name", "bm25", "--name", "bm25-tuned", "--out", str(out), "-q"])
    assert rc == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].startswith("| system | nDCG@10 | RR@10 | R@100 | R@1000 | AP |")
    assert "| bm25 |" in table and "| bm25-tuned |" in table
    assert "| bm25-tuned | bm25 | nDCG@10 |" in table  # the paired test against the first encoder
    report = json.loads((out / "report.json").read_text())
    assert [s["name"] for s in report["systems"]] == ["bm25", "bm25-tuned"]
    assert 0.3 < report["systems"][0]["effectiveness"]["nDCG@10"] < 0.7
    assert report["dataset"]["n_docs"] == 82
    for f in ("report.md", "tradeoff.png", "bm25.run", "bm25-tuned.run"):
        assert (out / f).exists(), f


def test_evaluate_default_output_folder(data_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--dataset", "adi", "--data-dir", str(data_root), "--format", "json", "-q"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["systems"][0]["name"] == "bm25"
    assert (tmp_path / "runs" / "adi-test" / "report.json").exists()


def test_search_one_query_and_a_queries_file(med_index, data_root, tmp_path, capsys):
    assert main(["search", str(med_index), "crystalline lens in vertebrates", "-k", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and lines[0].split()[0] == "1"
    assert main(["search", str(med_index), "crystalline lens", "-k", "3", "--format", "json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert {t["term"] for t in obj["query_terms"]} == {"crystallin", "len"} and len(obj["results"]) == 3
    run = tmp_path / "med.run"
    assert main(["search", str(med_index), "--queries", str(data_root / "med" / "queries.jsonl"),
                 "-k", "100", "--out", str(run)]) == 0
    rows = run.read_text().splitlines()
    assert len({r.split()[0] for r in rows}) == 30 and rows[0].split()[3] == "1"
    tsv = tmp_path / "q.tsv"
    tsv.write_text("a\tlens\nb\tcrystalline lens\n")
    assert main(["search", str(med_index), "--queries", str(tsv), "-k", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_index_info(med_index, capsys):
    assert main(["index", "info", str(med_index), "--verify"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_docs"] == 1033 and info["verified"] and info["encoder"]["kind"] == "bm25"


def test_failures_exit_1_with_a_clear_message(med_index, tmp_path, capsys):
    assert main(["search", str(tmp_path / "nowhere"), "x"]) == 1
    assert "no such index directory" in capsys.readouterr().err
    assert main(["index", "build", "--dataset", "med", "--encoder", "bm25", "--out", str(med_index)]) in (1, 2)
    capsys.readouterr()
    bad = tmp_path / "bad.tsv"
    bad.write_text("no tab here\n")
    assert main(["search", str(med_index), "--queries", str(bad)]) == 1
    assert "bad.tsv:1: expected 'id<TAB>text'" in capsys.readouterr().err
    assert main(["evaluate", "--dataset", "nope", "--data-dir", str(tmp_path)]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["evaluate", "--dataset", "adi", "--data-dir", str(tmp_path), "--encoder", "splode"]) == 1


def test_query_with_no_known_terms(med_index, capsys):
    assert main(["search", str(med_index), "the of and"]) == 0
    assert "no matching documents" in capsys.readouterr().err


def test_engine_and_index_options(data_root, tmp_path, capsys):
    idx = tmp_path / "q8"
    assert main(["index", "build", "--dataset", "med", "--data-dir", str(data_root), "--encoder", "bm25",
                 "--out", str(idx), "--quantization", "uint8", "--block-size", "32", "--block-max", "yes", "-q"]) == 0
    capsys.readouterr()
    outputs = {}
    for engine in ("auto", "taat", "blockmax", "oracle"):
        assert main(["search", str(idx), "crystalline lens in vertebrates", "-k", "5", "--engine", engine]) == 0
        outputs[engine] = capsys.readouterr().out
    assert len(set(outputs.values())) == 1  # every exact engine, same ranking
    assert main(["search", str(idx), "lens", "--approximate", "--max-blocks", "2", "--query-terms", "1"]) == 0
    capsys.readouterr()
    run = tmp_path / "r.trec"
    assert main(["search", str(idx), "--queries", str(data_root / "med" / "queries.jsonl"), "--approximate",
                 "--target-recall", "0.9", "--out", str(run), "-k", "10"]) == 0
    assert run.exists()
    info = capsys.readouterr()
    assert main(["search", str(idx), "lens", "--max-blocks", "3"]) == 2  # knobs need --approximate
    assert main(["search", str(idx), "lens", "--approximate"]) == 2  # nothing to tune on
    assert main(["search", str(idx), "lens", "--approximate", "--alpha", "0.5", "--engine", "taat"]) == 2
    assert main(["search", str(idx), "lens", "--approximate", "--max-postings", "50", "--max-blocks", "4"]) == 2
    assert "does not combine" in capsys.readouterr().err
    assert main(["search", str(idx), "crystalline lens in vertebrates", "-k", "5", "--approximate",
                 "--max-postings", "100000", "--candidates", "2000"]) == 0  # lists uncut, every candidate: exact
    assert capsys.readouterr().out == outputs["auto"]
    assert info is not None


def test_evaluate_with_quantized_index_and_engine(data_root, tmp_path, capsys):
    out = tmp_path / "e"
    assert main(["evaluate", "--dataset", "adi", "--data-dir", str(data_root), "--out", str(out), "-q",
                 "--quantization", "uint16", "--block-max", "yes", "--engine", "blockmax", "--threads", "1"]) == 0
    report = json.loads((out / "report.json").read_text())
    s = report["systems"][0]["settings"]
    assert s["search"]["engine"] == "blockmax" and s["build"]["quantization"] == "uint16"
    assert s["search"]["threads"] == 1 and s["searcher"]["kind"] == "lsr"
    eff = report["systems"][0]["efficiency"]
    assert eff["postings_per_query"] > 0
    assert eff["index_bytes"] == eff["parts"]["index"]["bytes"] and eff["encoder_bytes"] > 0  # reported apart


def test_evaluate_tunes_for_a_target_recall_and_records_the_setting(data_root, tmp_path):
    out = tmp_path / "t"
    assert main(["evaluate", "--dataset", "adi", "--data-dir", str(data_root), "--out", str(out), "-q",
                 "--approximate", "--target-recall", "0.9"]) == 0
    s = json.loads((out / "report.json").read_text())["systems"][0]["settings"]["search"]
    assert s["target_recall"] == 0.9 and "approx" in s  # the tuner's pick (None: exact was fastest)


def test_evaluate_on_milvus_equals_lsr(data_root, tmp_path, capsys):
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    scores = {}
    for engine in ("auto", "milvus"):
        out = tmp_path / engine
        assert main(["evaluate", "--dataset", "adi", "--data-dir", str(data_root), "--out", str(out), "-q",
                     "--engine", engine, "-k", "100"]) == 0
        system = json.loads((out / "report.json").read_text())["systems"][0]
        scores[engine] = system["effectiveness"]["nDCG@10"]
        assert system["settings"]["searcher"]["kind"] == ("milvus" if engine == "milvus" else "lsr")
    assert abs(scores["milvus"] - scores["auto"]) < 0.001
