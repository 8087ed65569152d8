"""The live index: adds, upserts and deletes over segments and commit points; search equals the oracle over the live
documents after every step; commit points survive a torn write; merges and compaction keep everything."""

import json

import numpy as np
import pytest
import scipy.sparse as sp

from index import InvertedIndex, brute_force_search
from index.errors import IndexFormatError
from index.searcher import SearchOptions
from index.segments import SegmentedIndex

DIM = 40


def _vectors(rng, n, density=0.15):
    m = (rng.random((n, DIM)) < density) * rng.integers(1, 4, size=(n, DIM))  # small integers: many ties
    return sp.csr_array(m.astype(np.float32))


class Model:
    """What the live index should hold: id -> vector, in live order."""

    def __init__(self):
        self.docs: dict[str, sp.csr_array] = {}

    def expected(self, live: SegmentedIndex, queries, k):
        ids = live.doc_ids.tolist()
        assert sorted(ids) == sorted(self.docs), "live ids differ from the documents added and not deleted"
        docs = sp.vstack([self.docs[i] for i in ids], format="csr") if ids else sp.csr_array((0, DIM))
        return brute_force_search(docs, queries, k) if ids else None


def _check(live, model, queries, k=3):
    want = model.expected(live, queries, min(k, max(live.n_docs, 1)))
    for engine in ("auto", "taat", "blockmax", "oracle"):
        got = live.search(queries, k, SearchOptions(engine=engine))
        if want is None:
            assert (got.doc_idx == -1).all()
            continue
        np.testing.assert_array_equal(got.doc_idx, want.doc_idx, err_msg=engine)
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-6, err_msg=engine)


def test_adds_upserts_and_deletes_search_like_the_oracle_after_every_commit(tmp_path, rng):
    live = SegmentedIndex.create(tmp_path / "live", DIM, build={"block_size": 4, "block_max": True},
                                 max_segments=4, merge_factor=3)
    model = Model()
    queries = _vectors(rng, 20, density=0.4)
    next_id = 0
    for _ in range(14):
        n_new = int(rng.integers(0, 30))
        ids = [f"d{next_id + i}" for i in range(n_new)]
        next_id += n_new
        existing = list(model.docs)
        upserts = list(rng.choice(existing, size=min(3, len(existing)), replace=False)) if existing else []
        vecs = _vectors(rng, len(ids) + len(upserts))
        if ids or upserts:
            live.add(ids + upserts, vecs)  # upserts move a document into the new segment
            for j, doc_id in enumerate(ids + upserts):
                model.docs[doc_id] = vecs[[j]]
        doomed = [d for d in model.docs if rng.random() < 0.25 and d not in upserts]
        if doomed:
            assert live.delete(doomed) == len(doomed)
            for d in doomed:
                del model.docs[d]
        live.commit()
        assert len(live.segments) <= 4, "the merge policy keeps at most max_segments"
        _check(live, model, queries)
        _check(SegmentedIndex.open(tmp_path / "live"), model, queries)  # what is on disk is what was committed
    live.compact()
    assert len(live.segments) == 1 and live.n_deleted == 0
    _check(live, model, queries)
    # everything deleted: an empty, searchable index
    live.delete(list(model.docs))
    model.docs.clear()
    live.commit()
    assert live.n_docs == 0 and live.segments == []
    _check(SegmentedIndex.open(tmp_path / "live"), model, queries)


def test_uncommitted_changes_are_invisible_and_a_torn_commit_point_falls_back(tmp_path, rng):
    live = SegmentedIndex.create(tmp_path / "live", DIM)
    live.add(["a", "b", "c"], _vectors(rng, 3, density=0.5))
    live.commit()
    live.delete(["a"])
    live.add(["d"], _vectors(rng, 1, density=0.5))
    assert sorted(SegmentedIndex.open(tmp_path / "live").doc_ids) == ["a", "b", "c"]  # not committed yet
    gen = live.commit()
    assert sorted(SegmentedIndex.open(tmp_path / "live").doc_ids) == ["b", "c", "d"]
    # a crash in the middle of writing the next commit point: the reader falls back to the last whole one
    (tmp_path / "live" / f"commit-{gen + 1:010d}.json").write_text('{"format": "lsr-segm', encoding="utf-8")
    assert SegmentedIndex.open(tmp_path / "live").generation == gen
    # a segment folder left by a commit that died before its commit point does not block the next commit
    live = SegmentedIndex.open(tmp_path / "live")
    (tmp_path / "live" / "segments" / f"seg-{live.commit_point['next_segment']:08d}").mkdir()
    (tmp_path / "live" / f"commit-{gen + 1:010d}.json").unlink()
    live.add(["e"], _vectors(rng, 1, density=0.5))
    live.commit()
    assert sorted(SegmentedIndex.open(tmp_path / "live").doc_ids) == ["b", "c", "d", "e"]


def test_a_second_writer_and_bad_input_are_refused(tmp_path, rng):
    a = SegmentedIndex.create(tmp_path / "live", DIM)
    b = SegmentedIndex.open(tmp_path / "live")
    a.add(["x"], _vectors(rng, 1, density=0.5))
    a.commit()
    b.add(["y"], _vectors(rng, 1, density=0.5))
    with pytest.raises(RuntimeError, match="another writer committed"):
        b.commit()
    with pytest.raises(KeyError, match="'nope'"):
        a.delete(["nope"])
    assert a.delete(["nope"], missing_ok=True) == 0
    with pytest.raises(ValueError, match="dimension"):
        a.add(["z"], sp.csr_array((1, DIM + 1), dtype=np.float32))
    with pytest.raises(ValueError, match="ids for"):
        a.add(["z", "w"], _vectors(rng, 1))
    with pytest.raises(FileExistsError):
        SegmentedIndex.create(tmp_path / "live", DIM)
    (tmp_path / "other").mkdir()
    with pytest.raises(FileNotFoundError, match="neither a live index"):
        SegmentedIndex.open(tmp_path / "other")
    marker = tmp_path / "live" / "segments.json"
    marker.write_text(json.dumps({"format": "something"}), encoding="utf-8")
    with pytest.raises(IndexFormatError, match="not an lsr live index"):
        SegmentedIndex.open(tmp_path / "live")


def test_an_index_built_today_opens_as_one_segment(tmp_path, rng):
    docs = _vectors(rng, 30)
    ids = [f"p{i}" for i in range(30)]
    InvertedIndex.build(docs, doc_ids=ids).save(tmp_path / "plain")
    queries = _vectors(rng, 5, density=0.3)
    live = SegmentedIndex.open(tmp_path / "plain")
    assert live.n_docs == 30 and len(live.segments) == 1
    np.testing.assert_array_equal(live.search(queries, 5).doc_idx, brute_force_search(docs, queries, 5).doc_idx)
    with pytest.raises(ValueError, match="read-only"):
        live.delete(["p1"])
    converted = SegmentedIndex.from_index(tmp_path / "plain", tmp_path / "live")
    converted.delete(["p0"])
    converted.commit()
    assert converted.n_docs == 29 and "p0" not in converted


def test_deleting_a_query_s_best_documents_still_gives_its_exact_top_k(tmp_path, rng):
    docs = sp.csr_array(np.outer(np.arange(200, 0, -1), np.ones(4)).astype(np.float32))  # doc i scores 200 - i
    docs = sp.hstack([docs, _vectors(rng, 200)[:, 4:]], format="csr")
    live = SegmentedIndex.create(tmp_path / "live", DIM)
    ids = [f"d{i}" for i in range(200)]
    live.add(ids, docs)
    live.commit()
    live.delete(ids[:150])  # the 150 best for the query below: the first searches come back all deleted
    live.commit()
    q = sp.csr_array(np.r_[np.ones(4), np.zeros(DIM - 4)].astype(np.float32)[None, :])
    res = live.search(q, k=5)
    assert [live.doc_ids[int(j)] for j in res.doc_idx[0]] == ids[150:155]
    want = brute_force_search(docs[150:], q, 5)
    np.testing.assert_allclose(res.scores, want.scores)


def test_the_tuner_runs_on_a_live_index(tmp_path, rng):
    from index.tuning import recall_at_k, tune_approximate

    live = SegmentedIndex.create(tmp_path / "live", DIM, build={"block_size": 4, "block_max": True}, max_segments=5)
    for part in range(3):
        live.add([f"p{part}-{i}" for i in range(60)], _vectors(rng, 60))
        live.commit()
    live.delete([f"p1-{i}" for i in range(0, 60, 3)])
    live.commit()
    queries = _vectors(rng, 30, density=0.4)
    tuned = tune_approximate(live, queries, target_recall=0.9, k=5, repeats=1, confirm_turns=1)
    exact = live.search(queries, 5)
    assert recall_at_k(live.search(queries, 5, approx=tuned.approx), exact) >= 0.9
