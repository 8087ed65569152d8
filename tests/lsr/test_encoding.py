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


def _index_files_equal(a, b):
    for name in ("posting_docs", "posting_weights", "offsets"):
        if name in a.arrays or name in b.arrays:
            np.testing.assert_array_equal(np.asarray(a.arrays[name]), np.asarray(b.arrays[name]))
    assert a.doc_ids.tolist() == b.doc_ids.tolist()


def test_parts_give_the_index_of_one_run(tmp_path):
    from lsr.encoding import encoding_parts, read_all_shards

    docs = corpus_of(47)  # 7 blocks of 7 (the last one short): parts of 3, 3 and 1 blocks
    one = encode_corpus("bm25", docs, tmp_path / "one", shard_size=7, show_progress=False)
    parts = [encode_corpus("bm25", docs, tmp_path / f"p{i}", shard_size=7, show_progress=False, part=f"{i}/3")
             for i in (1, 2, 3)]
    assert [p.n_shards for p in parts] == [3, 2, 2] and sum(p.n_docs for p in parts) == one.n_docs == 47
    assert sorted(f.name for f in (tmp_path / "p2").glob("shard-*")) == ["shard-00001.npz", "shard-00004.npz"]
    folders = [tmp_path / "p3", tmp_path / "p1", tmp_path / "p2"]  # any order
    ids, vectors = read_all_shards(folders)
    ids1, vectors1 = read_all_shards(tmp_path / "one")
    assert ids == ids1 == [d for d, _ in docs] and (vectors != vectors1).nnz == 0
    _index_files_equal(index_shards(folders, tmp_path / "idx-parts"), index_shards(tmp_path / "one", tmp_path / "idx"))
    # BM25 is fitted on the whole corpus in every part: the encoders are the same
    assert len(encoding_parts(folders)) == 3
    # a part resumes like a whole run, and refuses to resume as another part
    again = encode_corpus("bm25", docs, tmp_path / "p2", shard_size=7, show_progress=False, part=(2, 3))
    assert again.n_shards == 2
    with pytest.raises(ValueError, match="holds part 2/3"):
        encode_corpus("bm25", docs, tmp_path / "p2", shard_size=7, show_progress=False, part="1/3")


def test_parts_that_do_not_fit_together_are_refused(tmp_path):
    docs = corpus_of(30)
    for i in (1, 2):
        encode_corpus("bm25", docs, tmp_path / f"p{i}", shard_size=5, show_progress=False, part=(i, 2))
    with pytest.raises(ValueError, match="part\\(s\\) 2/2 .* missing"):
        list(read_shards(tmp_path / "p1"))
    with pytest.raises(ValueError, match="both part 1/2"):
        list(read_shards([tmp_path / "p1", tmp_path / "p1"]))
    encode_corpus("bm25", docs[:25], tmp_path / "short", shard_size=5, show_progress=False, part=(2, 2))
    with pytest.raises(ValueError, match="differ in (encoder|corpus_blocks)"):
        list(read_shards([tmp_path / "p1", tmp_path / "short"]))
    encode_corpus("bm25:k1=1.2", docs, tmp_path / "other", shard_size=5, show_progress=False, part=(2, 2))
    with pytest.raises(ValueError, match="differ in encoder"):
        list(read_shards([tmp_path / "p1", tmp_path / "other"]))
    with pytest.raises(ValueError, match="I/N"):
        encode_corpus("bm25", docs, tmp_path / "x", part="2-of-3", show_progress=False)
    with pytest.raises(ValueError, match="between 1 and N"):
        encode_corpus("bm25", docs, tmp_path / "x", part="4/3", show_progress=False)


def test_cli_encode_in_parts(data_root, tmp_path, capsys):
    from lsr.cli import main

    for i in (1, 2):
        assert main(["encode", "--dataset", "adi", "--data-dir", str(data_root), "--encoder", "bm25", "--out",
                     str(tmp_path / f"p{i}"), "--shard-size", "20", "--part", f"{i}/2", "-q"]) == 0
    out = capsys.readouterr().out
    assert "encoded 42 documents into 3 shards (part 1/2)" in out and "into 2 shards (part 2/2)" in out
    assert main(["index", "build", "--shards", str(tmp_path / "p1"), str(tmp_path / "p2"), "--out",
                 str(tmp_path / "idx"), "-q"]) == 0
    assert Retriever.load(tmp_path / "idx").index.n_docs == 82
    assert main(["encode", "--dataset", "adi", "--data-dir", str(data_root), "--encoder", "bm25", "--out",
                 str(tmp_path / "x"), "--part", "0/2", "-q"]) == 2
