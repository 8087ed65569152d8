import json

import numpy as np
import pytest
import scipy.sparse as sp

from index import (
    IndexFormatError,
    InvertedIndex,
    Vocabulary,
    VocabularyMismatchError,
    brute_force_search,
)


@pytest.fixture
def built(make_csr, rng):
    docs = make_csr(rng, 80, 30, 0.15, integer=True)
    ids = [f"doc-{i}" for i in range(80)]
    return InvertedIndex.build(docs, doc_ids=ids, vocabulary=Vocabulary("test-vocab", 30),
                               encoder={"kind": "test"}), docs


def test_search_equals_oracle(built, make_csr, rng):
    idx, docs = built
    queries = make_csr(rng, 15, 30, 0.2, integer=True)
    ref = brute_force_search(docs, queries, k=10)
    res = idx.search(queries, k=10)
    np.testing.assert_array_equal(res.doc_idx, ref.doc_idx)
    np.testing.assert_array_equal(res.scores, ref.scores)


def test_postings_layout(built):
    idx, docs = built
    dense = docs.toarray()
    for t in range(idx.dim):
        d, w = idx.postings(t)
        assert (np.diff(d) > 0).all()
        np.testing.assert_array_equal(d, np.flatnonzero(dense[:, t]))
        np.testing.assert_array_equal(w, dense[d, t])
    np.testing.assert_array_equal(idx.doc_frequencies(), (dense > 0).sum(axis=0))
    np.testing.assert_array_equal(idx.doc_lengths(), (dense > 0).sum(axis=1))


def test_save_load_roundtrip_memory_mapped(built, tmp_path, make_csr, rng):
    idx, _ = built
    path = idx.save(tmp_path / "idx")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == "lsr-index" and manifest["format_version"] == 2
    assert manifest["vocabulary"] == {"id": "test-vocab", "size": 30}
    assert set(manifest["arrays"]) >= {"term_offsets", "posting_docs", "posting_impacts"}
    assert all(len(a["sha256"]) == 64 for a in manifest["arrays"].values())
    loaded = InvertedIndex.load(path, verify=True)
    assert isinstance(loaded.arrays["posting_docs"], np.memmap)
    assert loaded.doc_ids[3] == "doc-3" and loaded.doc_ids.position("doc-79") == 79
    assert loaded.encoder == {"kind": "test"}
    q = make_csr(rng, 5, 30, 0.3)
    np.testing.assert_array_equal(loaded.search(q, k=20).doc_idx, idx.search(q, k=20).doc_idx)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp dirs left


def test_save_refuses_to_clobber_and_overwrites_on_request(built, tmp_path):
    idx, _ = built
    idx.save(tmp_path / "idx")
    with pytest.raises(FileExistsError, match="overwrite"):
        idx.save(tmp_path / "idx")
    idx.save(tmp_path / "idx", overwrite=True)
    InvertedIndex.load(tmp_path / "idx")


def test_failed_write_leaves_nothing(built, tmp_path, monkeypatch):
    idx, _ = built
    import index.inverted as inv

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(inv, "write_json", boom)
    with pytest.raises(OSError, match="disk full"):
        idx.save(tmp_path / "idx")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_manifest(built, tmp_path):
    idx, _ = built
    path = idx.save(tmp_path / "idx")
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(IndexFormatError, match="manifest.json is corrupt"):
        InvertedIndex.load(path)


def test_truncated_array(built, tmp_path):
    idx, _ = built
    path = idx.save(tmp_path / "idx")
    f = path / "posting_impacts.npy"
    f.write_bytes(f.read_bytes()[:-7])
    with pytest.raises(IndexFormatError, match="posting_impacts.npy.*truncated"):
        InvertedIndex.load(path)


def test_flipped_byte_caught_by_verify(built, tmp_path):
    idx, _ = built
    path = idx.save(tmp_path / "idx")
    f = path / "posting_docs.npy"
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(IndexFormatError, match="posting_docs: a posting refers to a document outside"):
        InvertedIndex.load(path)  # the structural checks run on every load
    idx.save(path, overwrite=True)
    f = path / "docid_bytes.npy"  # an id changed into another id: structurally fine, only the checksum tells
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0x01
    f.write_bytes(bytes(raw))
    InvertedIndex.load(path)
    with pytest.raises(IndexFormatError, match="checksum"):
        InvertedIndex.load(path, verify=True)


def test_missing_array_and_foreign_directories(built, tmp_path):
    idx, _ = built
    path = idx.save(tmp_path / "idx")
    (path / "doc_nnz.npy").unlink()
    with pytest.raises(IndexFormatError, match="doc_nnz.npy is missing"):
        InvertedIndex.load(path)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with pytest.raises(IndexFormatError, match="no manifest.json"):
        InvertedIndex.load(foreign)
    (foreign / "manifest.json").write_text(json.dumps({"format": "seismic"}))
    with pytest.raises(IndexFormatError, match="not an 'lsr-index'"):
        InvertedIndex.load(foreign)
    (foreign / "manifest.json").write_text(json.dumps({"format": "lsr-index", "format_version": 99}))
    with pytest.raises(IndexFormatError, match="newer than this lsr reads"):
        InvertedIndex.load(foreign)
    with pytest.raises(FileNotFoundError, match="no such index directory"):
        InvertedIndex.load(tmp_path / "nowhere")


def test_inconsistent_manifest_counts(built, tmp_path):
    idx, _ = built
    path = idx.save(tmp_path / "idx")
    m = json.loads((path / "manifest.json").read_text())
    m["nnz"] += 1
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexFormatError, match="corrupt"):
        InvertedIndex.load(path)


def test_vocabulary_and_dimension_checks(built, make_csr, rng):
    idx, _ = built
    q = make_csr(rng, 2, 30, 0.3)
    idx.search(q, k=3, vocabulary=Vocabulary("test-vocab", 30))
    with pytest.raises(VocabularyMismatchError, match="other-vocab"):
        idx.search(q, k=3, vocabulary=Vocabulary("other-vocab", 30))
    with pytest.raises(ValueError, match="dimension 31"):
        idx.search(sp.csr_array((1, 31), dtype=np.float32), k=3)
    with pytest.raises(ValueError, match="unknown engine"):
        idx.search(q, k=3, engine="warp")


def test_build_input_checks(make_csr, rng):
    docs = make_csr(rng, 3, 5, 0.5)
    with pytest.raises(ValueError, match="2 document ids for 3 documents"):
        InvertedIndex.build(docs, doc_ids=["a", "b"])
    with pytest.raises(ValueError, match="'a' occurs more than once"):
        InvertedIndex.build(docs, doc_ids=["a", "b", "a"])
    with pytest.raises(ValueError, match="has 6 terms"):
        InvertedIndex.build(docs, vocabulary=Vocabulary("v", 6))


def test_empty_postings_and_empty_documents(tmp_path):
    docs = sp.csr_array(np.array([[0, 0, 0], [0, 1.0, 0], [0, 0, 0]], np.float32))
    idx = InvertedIndex.build(docs)
    assert idx.doc_ids.tolist() == ["0", "1", "2"]
    res = idx.search(np.array([[1.0, 0, 1.0], [0, 2.0, 0]]), k=2)
    assert res.doc_idx.tolist() == [[-1, -1], [1, -1]]
    loaded = InvertedIndex.load(idx.save(tmp_path / "i"), verify=True)
    assert loaded.search(np.array([[0, 2.0, 0]]), k=1).doc_idx.tolist() == [[1]]


def test_manifest_pointing_outside_the_folder_is_refused(built, tmp_path):
    idx, _ = built
    path = idx.save(tmp_path / "idx")
    outside = tmp_path / "elsewhere.npy"
    outside.write_bytes((path / "doc_nnz.npy").read_bytes())
    manifest = json.loads((path / "manifest.json").read_text())
    for name in ("../elsewhere.npy", str(outside), "sub/doc_nnz.npy", ".."):
        manifest["arrays"]["doc_nnz"]["file"] = name
        (path / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(IndexFormatError, match="not a plain file name inside the index folder"):
            InvertedIndex.load(path)
    (path / "doc_nnz.npy").unlink()
    (path / "doc_nnz.npy").symlink_to(outside)
    manifest["arrays"]["doc_nnz"]["file"] = "doc_nnz.npy"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="symbolic link"):
        InvertedIndex.load(path)
