"""One model for training and serving: a trained model, saved and loaded as an encoder, serves exactly the vectors
the trainer's forward pass produces (same function, :mod:`lsr.encoders.projection`, with and without gradients)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from lsr import load_encoder  # noqa: E402
from lsr.encoders.models import random_mlm  # noqa: E402
from lsr.encoders.projection import pooled_tokens  # noqa: E402
from training import Trainer, config_from_dict  # noqa: E402

WORDS = ("the cat sat on mat dog dogs bark insulin resistance muscle cells cause causes what is a of in and "
         "to for with fish swim water river bank money loan rate high low garden roses sun soil stock market").split()
TRIPLES = [
    ("cat on a mat", "the cat sat on the mat", "stock market money loan rate"),
    ("insulin resistance", "insulin resistance in muscle cells", "fish swim in the river"),
    ("garden roses", "roses need sun and soil in the garden", "dogs bark at the cat"),
    ("bank loan rate", "the bank has a high loan rate", "roses need water"),
]
DOCS = [t[1] for t in TRIPLES] + [t[2] for t in TRIPLES]
QUERIES = [t[0] for t in TRIPLES] + ["what causes high rate", "a"]


@pytest.fixture(scope="module")
def backbone(tmp_path_factory, make_tokenizer):
    d = tmp_path_factory.mktemp("backbone")
    tok = make_tokenizer(d, WORDS)
    random_mlm(vocab_size=len(tok), hidden=16, layers=1, heads=2, seed=4).save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


def _trained(tmp_path, backbone, kind, **model):
    triples = tmp_path / "triples.tsv"
    triples.write_text("".join("\t".join(t) + "\n" for t in TRIPLES), encoding="utf-8")
    cfg = config_from_dict({
        "output_dir": str(tmp_path / "run"),
        "model": {"kind": kind, "backbone": backbone, "doc_max_length": 32, "query_max_length": 16, "bf16": False,
                  **model},
        "data": {"train": [{"triples": str(triples)}], "n_negatives": 1},
        "regularizer": {"doc": {"kind": "flops", "weight": 1e-3}},
        "optim": {"lr": 5e-3, "steps": 3, "batch_size": 4, "warmup_steps": 0, "threads": 1},
        "checkpoint": {"every": 100, "keep": 1}}, "parity")
    trainer = Trainer(cfg, show_progress=False)
    for _ in range(3):
        trainer.train_step()
    return trainer


def _dense(csr) -> np.ndarray:
    return csr.toarray().astype(np.float32)


@pytest.mark.parametrize("kind,model", [("inference-free", {}), ("inference-free", {"query_weights": "learned"}),
                                        ("splade", {}), ("splade", {"activation": "log_log"}),
                                        ("slim", {"token_top_k": 5})])
def test_a_trained_model_serves_the_vectors_it_was_trained_on(tmp_path, backbone, kind, model):
    trainer = _trained(tmp_path, backbone, kind, **model)
    m = trainer.model
    m.mlm.eval()  # dropout off: the forward pass the encoder runs
    with torch.no_grad():
        if kind == "slim":
            docs = pooled_tokens(m.encode_tokens(DOCS, m.doc_max_length), m.dim)
            queries = pooled_tokens(m.encode_tokens(QUERIES, m.query_max_length), m.dim)
        else:
            docs = m.encode(DOCS, m.doc_max_length)
            if kind == "inference-free":
                queries = m.inference_free_queries(QUERIES, [trainer.idf[0]] * len(QUERIES))
            else:
                queries = m.encode(QUERIES, m.query_max_length)
    path = trainer.save_model(tmp_path / "model")
    enc = load_encoder(path)
    enc.batch_size = 64  # one batch, as in the trainer (the encoder sorts by length; padding is the same)
    assert enc.kind == kind
    served_docs = _dense(enc.encode_documents(DOCS))
    served_queries = _dense(enc.encode_queries(QUERIES))
    assert docs.numpy().any() and queries.numpy().any()
    np.testing.assert_array_equal(served_docs, docs.numpy())
    np.testing.assert_array_equal(served_queries, queries.numpy())
    if kind == "inference-free" and not model:  # the IDF table saved is the one the trainer scored queries with
        np.testing.assert_array_equal(enc.query_weights, trainer.idf[0].numpy().astype(np.float32)
                                      * (enc.query_weights > 0))
