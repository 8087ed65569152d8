"""Sharded, resumable encoding and indexing from shards."""

import json

import numpy as np
import pytest

from eval import load_dataset
from lsr import load_encoder
from lsr.encoding import encode_corpus, index_shards, read_shards
from lsr.pipeline import Retriever


class Crash(RuntimeError):
    pass


class crashing:  # noqa: N801 - reads like a function at the call site
    """A re-iterable corpus whose encoding pass dies after ``after`` documents (a killed process).

    The first pass (BM25's fit) completes; the second pass, the encoding, is killed.
    """

    def __init__(self, corpus, after: int):
        self.corpus, self.after, self.passes = corpus, after, 0

    def __iter__(self):
        self.passes += 1
        for i, item in enumerate(self.corpus):
            if self.passes > 1 and i == self.after:
                raise Crash("killed")
            yield item


def corpus_of(n):
    return [(f"d{i}", f"document {i} about {'cats' if i % 2 else 'dogs'} and topic {i % 7}") for i in range(n)]


def test_resume_after_kill_equals_uninterrupted_run(tmp_path):
    docs = corpus_of(23)
    full = encode_corpus("bm25", docs, tmp_path / "full", shard_size=5, show_progress=False)
    assert (full.n_shards, full.n_docs, full.resumed_shards) == (5, 23, 0)
    with pytest.raises(Crash):
        encode_corpus("bm25", crashing(docs, 12), tmp_path / "part", shard_size=5, show_progress=False)
    state = json.loads((tmp_path / "part" / "encode.json").read_text())
    assert state["complete"] is False and state["n_shards"] == 2
    assert not list((tmp_path / "part").glob(".*tmp*"))  # no half-written shard
    again = encode_corpus("bm25", docs, tmp_path / "part", shard_size=5, show_progress=False)
    assert again.resumed_shards == 2 and again.n_docs == 23
    a, b = list(read_shards(tmp_path / "full")), list(read_shards(tmp_path / "part"))
    assert [ids for ids, _ in a] == [ids for ids, _ in b]
    for (_, x), (_, y) in zip(a, b):
        assert (x != y).nnz == 0
    # finished: running again does nothing
    assert encode_corpus("bm25", docs, tmp_path / "part", shard_size=5, show_progress=False).resumed_shards == 5


def test_resume_refuses_another_corpus_or_shard_size(tmp_path):
    docs = corpus_of(12)
    with pytest.raises(Crash):
        encode_corpus("bm25", crashing(docs, 6), tmp_path / "e", shard_size=5, show_progress=False)
    with pytest.raises(ValueError, match="shard_size 5"):
        encode_corpus("bm25", docs, tmp_path / "e", shard_size=4, show_progress=False)
    other = [(f"x{i}", t) for i, (_, t) in enumerate(docs)]
    with pytest.raises(ValueError, match="not the corpus of the first run"):
        encode_corpus("bm25", other, tmp_path / "e", shard_size=5, show_progress=False)
    with pytest.raises(ValueError, match="unfinished encoding"):
        list(read_shards(tmp_path / "e"))
    done = encode_corpus("bm25", other, tmp_path / "e", shard_size=5, overwrite=True, show_progress=False)
    assert done.n_docs == 12


def test_index_from_shards_equals_direct_build(tmp_path):
    docs = corpus_of(40)
    encode_corpus("bm25", docs, tmp_path / "enc", shard_size=7, show_progress=False)
    idx = index_shards(tmp_path / "enc", tmp_path / "idx")
    direct = Retriever.build(docs, load_encoder("bm25"), show_progress=False)
    assert idx.doc_ids.tolist() == direct.index.doc_ids.tolist()
    np.testing.assert_array_equal(np.asarray(idx.arrays["posting_docs"]), direct.index.arrays["posting_docs"])
    r = Retriever.load(tmp_path / "idx")
    assert r.search_run({"q": "cats topic 3"}, k=5) == direct.search_run({"q": "cats topic 3"}, k=5)


def test_cli_encode_and_index_shards(data_root, tmp_path, capsys):
    from lsr.cli import main

    assert main(["encode", "--dataset", "adi", "--data-dir", str(data_root), "--encoder", "bm25",
                 "--out", str(tmp_path / "enc"), "--shard-size", "20", "-q"]) == 0
    assert "encoded 82 documents into 5 shards" in capsys.readouterr().out
    assert main(["index", "build", "--shards", str(tmp_path / "enc"), "--out", str(tmp_path / "idx"), "-q"]) == 0
    assert main(["search", str(tmp_path / "idx"), "computer retrieval", "-k", "3"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4  # the index line + 3 results
    ds = load_dataset("adi", data_dir=data_root)
    assert Retriever.load(tmp_path / "idx").index.n_docs == ds.corpus.count()


def test_index_from_shards_with_reordering(tmp_path):
    docs = corpus_of(60)
    encode_corpus("bm25", docs, tmp_path / "enc", shard_size=7, show_progress=False)
    idx = index_shards(tmp_path / "enc", tmp_path / "idx", reorder="bp")
    assert idx.manifest["reorder"]["method"] == "bp"
    direct = Retriever.build(docs, load_encoder("bm25"), show_progress=False)
    r = Retriever.load(tmp_path / "idx")
    assert r.index.doc_order is not None and sorted(r.index.doc_ids.tolist()) == sorted(d for d, _ in docs)
    a, b = r.search_run({"q": "cats topic 3"}, k=60), direct.search_run({"q": "cats topic 3"}, k=60)
    assert a.keys() == b.keys() and all(a["q"][d] == pytest.approx(b["q"][d]) for d in b["q"])


def test_cli_index_build_reorder(data_root, tmp_path, capsys):
    from lsr.cli import main

    assert main(["index", "build", "--dataset", "med", "--data-dir", str(data_root), "--encoder", "bm25",
                 "--reorder", "bp", "--out", str(tmp_path / "idx"), "-q"]) == 0
    info = Retriever.load(tmp_path / "idx").index.manifest["reorder"]
    assert info["method"] == "bp" and info["log2_gap_after"] < 0.98 * info["log2_gap_before"]  # 4.12 -> 3.98 bits
