"""Metadata fields and filters: the mask a filter evaluates to, its checks, its storage, and search under a filter
equal to the oracle over the matching documents, for every engine, a reordered index and a live index."""

import numpy as np
import pytest
import scipy.sparse as sp

from index import Approx, InvertedIndex, brute_force_search
from index.fields import Fields, FilterError, parse_filter
from index.searcher import SearchOptions
from index.segments import SegmentedIndex

DIM = 60
RECORDS = [
    {"year": 2019, "lang": "en", "tags": ["a", "b"], "open": True},
    {"year": 2021, "lang": "fr"},
    None,
    {"year": 2015.5, "tags": "b"},
    {"lang": "en", "open": False},
]


def _mask(spec, records=RECORDS):
    return Fields.from_records(records).mask(spec).tolist()


@pytest.mark.parametrize("spec, want", [
    ({"year": 2019}, [True, False, False, False, False]),
    ({"lang": "en"}, [True, False, False, False, True]),
    ({"lang": ["en", "fr"]}, [True, True, False, False, True]),
    ({"lang": {"in": ["de"]}}, [False] * 5),
    ({"year": {"gte": 2015.5, "lt": 2021}}, [True, False, False, True, False]),
    ({"year": {"gt": 2019}}, [False, True, False, False, False]),
    ({"tags": "b"}, [True, False, False, True, False]),
    ({"tags": {"exists": False}}, [False, True, True, False, True]),
    ({"open": True}, [True, False, False, False, False]),
    ({"lang": "en", "year": {"lte": 2020}}, [True, False, False, False, False]),
    ({"or": [{"lang": "fr"}, {"tags": "a"}]}, [True, True, False, False, False]),
    ({"not": {"lang": "en"}}, [False, True, True, True, False]),
    ({"and": [{"year": {"exists": True}}, {"not": {"tags": "a"}}]}, [False, True, False, True, False]),
])
def test_filters_match_what_they_say(spec, want):
    assert _mask(spec) == want


@pytest.mark.parametrize("spec, message", [
    ({"yeer": 2019}, "no document has a field 'yeer'"),
    ({"lang": 3}, "keyword field"),
    ({"year": "2019"}, "numeric"),
    ({"lang": {"gte": "a"}}, "ranges"),
    ({"year": {"near": 1}}, "unknown operator 'near'"),
    ({"and": []}, "non-empty list"),
    ({}, "non-empty JSON object"),
    ([{"year": 1}], "non-empty JSON object"),
    ({"year": {"in": 2019}}, "takes a list"),
    ({"year": {"exists": "yes"}}, "true or false"),
    ('{"year": ', "not valid JSON"),
])
def test_bad_filters_are_refused_naming_the_part(spec, message):
    schema = Fields.from_records(RECORDS).schema
    with pytest.raises(FilterError, match=message):
        parse_filter(spec, schema)


@pytest.mark.parametrize("records, message", [
    ([{"year": 2019}, {"year": "2020"}], "keep one type per field"),
    ([{"year": [1, 2]}], "lists hold strings"),
    ([{"meta": {"a": 1}}], "neither a string"),
    ([{"year": float("nan")}], "not a finite number"),
    (["year"], "must be an object"),
])
def test_bad_field_values_are_refused_naming_the_document(records, message):
    with pytest.raises(TypeError, match=message):
        Fields.from_records(records, doc_ids=[f"d{i}" for i in range(len(records))])


def test_take_concat_and_records_round_trip():
    f = Fields.from_records(RECORDS)
    assert [f.record(i) for i in range(5)] == [
        {"year": 2019, "lang": "en", "tags": ["a", "b"], "open": "true"}, {"year": 2021, "lang": "fr"}, {},
        {"year": 2015.5, "tags": ["b"]}, {"lang": "en", "open": "false"}]  # a field given lists reads back as lists
    rows = [4, 0, 3]
    part = f.take(rows)
    assert [part.record(i) for i in range(3)] == [f.record(i) for i in rows]
    other = Fields.from_records([{"lang": "de", "extra": 1.0}])
    both = Fields.concat([part, other])
    assert both.n_docs == 4 and both.schema["extra"] == "numeric"
    assert [both.record(i) for i in range(4)] == [f.record(i) for i in rows] + [{"lang": "de", "extra": 1}]
    assert both.mask({"lang": ["de", "en"]}).tolist() == [True, True, False, True]


def _random_records(rng, n):
    langs = np.array(["en", "fr", "de", "yo"])
    return [{"year": int(rng.integers(1990, 2025)), "lang": str(langs[rng.integers(0, 4)]),
             "tags": [t for t in ("x", "y", "z") if rng.random() < 0.3] or None} if rng.random() > 0.05 else None
            for _ in range(n)]


def _vectors(rng, n, density=0.12):
    m = (rng.random((n, DIM)) < density) * rng.integers(1, 4, size=(n, DIM))  # small integers: many ties
    return sp.csr_array(m.astype(np.float32))


FILTERS = [
    {"year": {"gte": 2010}},
    {"lang": "yo", "year": {"lt": 2000}},  # a few percent of the documents
    {"or": [{"tags": "z"}, {"not": {"lang": ["en", "fr"]}}]},
    {"tags": {"exists": False}},
]


def _oracle(docs, queries, mask, k):
    """Brute force over the matching documents, as indices of the whole collection."""
    rows = np.flatnonzero(mask)
    if rows.size == 0:
        return None
    res = brute_force_search(docs[rows], queries, min(k, rows.size))
    return np.where(res.doc_idx >= 0, rows[np.maximum(res.doc_idx, 0)], -1), res.scores


@pytest.mark.parametrize("reorder", [None, "bp"])
def test_filtered_search_equals_the_oracle_over_matching_documents(tmp_path, rng, reorder):
    n, k = 400, 7
    docs = _vectors(rng, n)
    queries = _vectors(rng, 25, density=0.3)
    records = _random_records(rng, n)
    ids = [f"d{i}" for i in range(n)]
    built = InvertedIndex.build(docs, doc_ids=ids, fields=records, block_size=8, block_max=True, reorder=reorder)
    built.save(tmp_path / "idx")
    idx = InvertedIndex.load(tmp_path / "idx", verify=True)
    assert idx.schema == {"year": "numeric", "lang": "keyword", "tags": "keyword"}
    for i in range(0, n, 37):  # fields follow their documents through reordering, save and load
        rec = records[int(idx.doc_order[i]) if reorder else i]
        assert idx.fields.record(i) == {key: v for key, v in (rec or {}).items() if v is not None}
    original = np.asarray(idx.doc_order) if reorder else np.arange(n)
    for spec in FILTERS:
        mask = Fields.from_records(records).mask(spec)
        want = _oracle(docs, queries, mask, k)
        for engine in ("auto", "taat", "blockmax", "oracle"):
            got = idx.search(queries, k, SearchOptions(engine=engine), filter=spec)
            got_ids = np.where(got.doc_idx >= 0, original[np.maximum(got.doc_idx, 0)], -1)
            # ties break by internal order, which reordering changes: compare scores, and ids where no tie
            np.testing.assert_allclose(got.scores[:, :want[1].shape[1]], want[1], rtol=1e-6, err_msg=f"{engine} {spec}")
            assert mask[got_ids[got_ids >= 0]].all(), f"{engine} returned a document outside {spec}"
            if reorder is None:
                np.testing.assert_array_equal(got_ids[:, :want[0].shape[1]], want[0], err_msg=f"{engine} {spec}")


def test_approximate_search_under_a_narrow_filter_still_returns_k(rng):
    n, k = 3000, 10
    docs = _vectors(rng, n, density=0.08)
    queries = _vectors(rng, 15, density=0.3)
    records = [{"shard": i % 50} for i in range(n)]  # 2 % of the documents per value
    idx = InvertedIndex.build(docs, fields=records, block_size=16, block_max=True)
    spec = {"shard": 7}
    mask = np.arange(n) % 50 == 7
    want = _oracle(docs, queries, mask, k)
    for approx in (Approx(max_blocks=2), Approx(query_terms=2, candidates=12), Approx(max_postings=5)):
        got = idx.search(queries, k, approx=approx, filter=spec)
        found = got.doc_idx >= 0
        assert mask[got.doc_idx[found]].all()
        # as many results as exist for each query (some queries match fewer than k filtered documents)
        np.testing.assert_array_equal(found.sum(axis=1), (want[0] >= 0).sum(axis=1), err_msg=repr(approx))


def test_live_index_filters_across_segments_with_deletes_upserts_and_merges(tmp_path, rng):
    n, k = 300, 5
    live = SegmentedIndex.create(tmp_path / "live", DIM, build={"block_size": 8, "block_max": True},
                                 max_segments=3, merge_factor=2)
    docs, recs = {}, {}
    vecs = _vectors(rng, n)
    records = _random_records(rng, n)
    for lo in range(0, n, 60):
        ids = [f"d{i}" for i in range(lo, lo + 60)]
        live.add(ids, vecs[lo:lo + 60], records[lo:lo + 60])
        live.commit()
        docs.update(zip(ids, (vecs[[i]] for i in range(lo, lo + 60))))
        recs.update(zip(ids, records[lo:lo + 60]))
    gone = [f"d{i}" for i in range(0, n, 4)]
    live.delete(gone)
    moved = [f"d{i}" for i in range(1, n, 9)]  # upserts: new fields, same vectors, into a new segment
    live.add(moved, sp.vstack([docs[i] for i in moved], format="csr"), [{"lang": "yo", "year": 1999}] * len(moved))
    live.commit()
    for i in set(gone) - set(moved):  # an id deleted and then added again in one commit is live
        docs.pop(i), recs.pop(i)
    recs.update({i: {"lang": "yo", "year": 1999} for i in moved})
    queries = _vectors(rng, 20, density=0.3)

    def check():
        ids = live.doc_ids.tolist()
        all_docs = sp.vstack([docs[i] for i in ids], format="csr")
        for spec in FILTERS:
            mask = Fields.from_records([recs[i] for i in ids]).mask(spec)
            want = _oracle(all_docs, queries, mask, k)
            for engine in ("auto", "taat", "blockmax"):
                got = live.search(queries, k, SearchOptions(engine=engine), filter=spec)
                if want is None:
                    assert (got.doc_idx == -1).all()
                    continue
                np.testing.assert_array_equal(got.doc_idx[:, :want[0].shape[1]], want[0], err_msg=f"{engine} {spec}")
                np.testing.assert_allclose(got.scores[:, :want[1].shape[1]], want[1], rtol=1e-6)

    check()
    assert live.fields_of(moved[0]) == {"lang": "yo", "year": 1999}
    live.compact()
    assert len(live.segments) == 1
    check()
    reopened = SegmentedIndex.open(tmp_path / "live")
    assert reopened.fields_of(moved[0]) == {"lang": "yo", "year": 1999}
    with pytest.raises(TypeError, match="keep one type per field"):
        live.add(["new"], _vectors(rng, 1), [{"year": "recent"}])
    with pytest.raises(FilterError, match="no document has a field 'color'"):
        live.search(queries, k, filter={"color": "red"})
