"""Live indexes through the lsr layer and the CLI: add, replace, delete, compact; the result equals a fresh build
over the final corpus; a built index becomes live without losing a document."""

import json

import pytest

pytest.importorskip("torch")

from lsr import load_encoder  # noqa: E402
from lsr.cli import main  # noqa: E402
from lsr.live import LiveRetriever, convert_in_place, is_live  # noqa: E402
from lsr.pipeline import Retriever  # noqa: E402

BASE = [("d1", "the cat sat on the mat"), ("d2", "a dog chased the cat around the garden"),
        ("d3", "stock markets fell sharply on monday"), ("d4", "roses need sun water and good soil"),
        ("d5", "insulin resistance in muscle cells"), ("d6", "the bank raised its loan rate")]
EXTRA = [("d7", "muscle cells burn glucose"), ("d2", "a dog barked at the mailman"),  # d2 replaced
         ("d8", "cats and dogs in the garden")]
QUERIES = ["cat in the garden", "insulin muscle", "loan rate", "dog", "soil for roses", "stock market"]


def _corpus_file(path, docs):
    path.write_text("".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in docs), encoding="utf-8")
    return path


def _hits(capsys, index_dir, k=10):
    hits = []
    for q in QUERIES:
        assert main(["-q", "search", str(index_dir), q, "--format", "json", "-k", str(k)]) == 0
        hits.append([(h["doc_id"], round(h["score"], 5)) for h in json.loads(capsys.readouterr().out)["results"]])
    return hits


def test_add_replace_and_delete_equal_a_fresh_build_of_the_final_corpus(tmp_path, capsys):
    base = _corpus_file(tmp_path / "base.jsonl", BASE)
    extra = _corpus_file(tmp_path / "extra.jsonl", EXTRA)
    idx = tmp_path / "idx"
    assert main(["-q", "index", "build", "--corpus", str(base), "--encoder", "splade-tiny", "--out", str(idx)]) == 0
    assert main(["-q", "index", "add", str(idx), "--corpus", str(extra)]) == 0
    assert "9 live documents" not in capsys.readouterr().out  # d2 replaced: 8 live
    assert is_live(idx) and not (idx / "manifest.json").exists()  # the old top-level index is gone
    assert main(["-q", "index", "delete", str(idx), "d3", "d5"]) == 0
    assert main(["-q", "index", "delete", str(idx), "nope"]) == 1
    assert "not in the index" in capsys.readouterr().err
    final = [p for p in BASE if p[0] not in ("d2", "d3", "d5")] + EXTRA[:1] + EXTRA[1:]
    fresh = tmp_path / "fresh"
    assert main(["-q", "index", "build", "--corpus", str(_corpus_file(tmp_path / "final.jsonl", final)),
                 "--encoder", "splade-tiny", "--out", str(fresh)]) == 0
    capsys.readouterr()
    want = _hits(capsys, fresh)
    assert _hits(capsys, idx) == want
    assert main(["-q", "index", "info", str(idx)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_docs"] == 6 and info["n_deleted"] >= 2 and len(info["segments"]) == 2
    assert main(["-q", "index", "compact", str(idx)]) == 0
    capsys.readouterr()
    assert _hits(capsys, idx) == want
    assert main(["-q", "index", "info", str(idx)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_deleted"] == 0 and len(info["segments"]) == 1


def test_python_api_and_guards(tmp_path):
    enc = load_encoder("bm25")
    with pytest.raises(ValueError, match="needs corpus statistics"):
        LiveRetriever.create(tmp_path / "a", enc)
    live = LiveRetriever.create(tmp_path / "b", load_encoder("bm25"), fit_texts=[t for _, t in BASE])
    live.add(BASE)
    live.commit()
    res = live.search(["insulin muscle"], k=2)
    assert live.doc_ids[int(res.doc_idx[0, 0])] == "d5"
    live.delete(["d5"])
    live.commit()
    again = LiveRetriever.open(tmp_path / "b")
    assert "d5" not in again.index and again.index.n_docs == 5
    # a swapped encoder folder is refused
    load_encoder("bm25:k1=2.0").fit([t for _, t in BASE]).save(tmp_path / "b" / "encoder", overwrite=True)
    with pytest.raises(ValueError, match="not the encoder"):
        LiveRetriever.open(tmp_path / "b")


def test_a_built_index_with_engines_beside_it_is_not_made_live(tmp_path):
    r = Retriever.build(BASE, load_encoder("bm25"), show_progress=False)
    r.save(tmp_path / "idx")
    (tmp_path / "idx" / "lucene").mkdir()
    with pytest.raises(ValueError, match="lucene"):
        convert_in_place(tmp_path / "idx")
    assert (tmp_path / "idx" / "manifest.json").exists() and not is_live(tmp_path / "idx")
    (tmp_path / "idx" / "lucene").rmdir()
    convert_in_place(tmp_path / "idx")
    live = LiveRetriever.open(tmp_path / "idx")
    assert sorted(live.doc_ids) == sorted(d for d, _ in BASE)


def test_fields_from_corpus_lines_filter_built_and_live_indexes(tmp_path, capsys):
    years = {"d1": 2001, "d2": 2010, "d3": 2015, "d4": 2020, "d5": 2021, "d6": 2022}
    lines = [{"_id": d, "title": "", "text": t, "fields": {"year": years[d], "kind": "pet" if d in ("d1", "d2") else "other"}}
             for d, t in BASE]
    base = tmp_path / "base.jsonl"
    base.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    idx = tmp_path / "idx"
    assert main(["-q", "index", "build", "--corpus", str(base), "--encoder", "bm25", "--out", str(idx)]) == 0
    capsys.readouterr()

    def ids(query, flt):
        assert main(["-q", "search", str(idx), query, "--format", "json", "--filter", json.dumps(flt)]) == 0
        return [h["doc_id"] for h in json.loads(capsys.readouterr().out)["results"]]

    assert ids("the cat", {"kind": "pet"}) == ["d1", "d2"]
    assert set(ids("the", {"year": {"gte": 2015}})) <= {"d3", "d4", "d5", "d6"}
    assert ids("the cat", {"year": {"lt": 2000}}) == []
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"_id": "d7", "title": "", "text": "a cat in the garden",
                                 "fields": {"year": 2023, "kind": "pet"}}) + "\n", encoding="utf-8")
    assert main(["-q", "index", "add", str(idx), "--corpus", str(extra)]) == 0
    capsys.readouterr()
    assert ids("cat garden", {"kind": "pet", "year": {"gt": 2005}}) == ["d7", "d2"]
    assert LiveRetriever.open(idx).index.fields_of("d7") == {"year": 2023, "kind": "pet"}
    # bad filters and bad field values are refused with the reason
    assert main(["-q", "search", str(idx), "cat", "--filter", '{"colour": "red"}']) == 2
    assert "no document has a field 'colour'" in capsys.readouterr().err
    assert main(["-q", "search", str(idx), "cat", "--filter", "{year"]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    extra.write_text(json.dumps({"_id": "d8", "text": "x", "fields": {"year": "new"}}) + "\n", encoding="utf-8")
    assert main(["-q", "index", "add", str(idx), "--corpus", str(extra)]) == 1
    assert "keep one type per field" in capsys.readouterr().err
    extra.write_text(json.dumps({"_id": "d8", "text": "x", "fields": [1]}) + "\n", encoding="utf-8")
    assert main(["-q", "index", "add", str(idx), "--corpus", str(extra)]) == 1
    assert "extra.jsonl:1" in capsys.readouterr().err
