"""Shipping a trained model: half-precision weights that load back into float32 and serve (nearly) the same vectors."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from lsr import load_encoder  # noqa: E402
from lsr.encoders.models import random_mlm  # noqa: E402
from lsr.encoders.splade import InferenceFreeEncoder  # noqa: E402
from training.ship import ShipCheckError, ship  # noqa: E402

WORDS = "the cat sat on mat dog bark insulin resistance muscle cells fish swim river bank money loan rate".split()
TEXTS = ["the cat sat on the mat", "insulin resistance in muscle cells", "fish swim in the river", "bank loan rate"]


@pytest.fixture
def trained(tmp_path, make_tokenizer):
    (tmp_path / "tok").mkdir()
    tok = make_tokenizer(tmp_path / "tok", WORDS)
    enc = InferenceFreeEncoder(random_mlm(vocab_size=len(tok), hidden=32, layers=1, heads=2, seed=7), tok)
    enc.fit(TEXTS)
    return enc.save(tmp_path / "trained")


def test_shipped_weights_are_half_precision_and_load_back_as_float32(tmp_path, trained):
    out = ship(trained, "tiny-test", sample=TEXTS, dest_root=tmp_path / "models", card="# tiny-test\n")
    assert (out / "README.md").read_text() == "# tiny-test\n"
    assert json.loads((out / "config.json").read_text()).get("dtype") == "bfloat16"
    assert (out / "model.safetensors").stat().st_size < 0.6 * (trained / "model.safetensors").stat().st_size
    enc = load_encoder(out)
    assert all(p.dtype == torch.float32 for p in enc.model.parameters())
    assert enc.corpus_idf and enc.needs_fit  # IDF-aware: refit on the corpus it indexes
    a, b = load_encoder(trained).encode_documents(TEXTS), enc.encode_documents(TEXTS)
    assert np.abs(a.toarray() - b.toarray()).max() < 0.02 * np.abs(a.toarray()).max()
    # the trained model is left as it was (float32, same weights)
    again = load_encoder(trained)
    assert all(p.dtype == torch.float32 for p in again.model.parameters())


def test_a_lossy_precision_is_refused(tmp_path, trained):
    with pytest.raises(ShipCheckError, match="agreement"):
        ship(trained, "tiny-test", sample=TEXTS, dest_root=tmp_path / "models", min_agreement=1.01)
    assert not (tmp_path / "models" / "tiny-test").exists()  # nothing half-written


def test_a_document_term_bound_ships_with_the_model(tmp_path, trained):
    full = load_encoder(trained).encode_documents(TEXTS)
    assert np.diff(full.indptr).max() > 3
    out = ship(trained, "tiny-test", sample=TEXTS, dest_root=tmp_path / "models", doc_top_k=3)
    enc = load_encoder(out)
    assert enc.top_k == 3 and json.loads((out / "lsr.json").read_text())["config"]["top_k"] == 3
    docs = enc.encode_documents(TEXTS)
    assert np.diff(docs.indptr).max() <= 3
    for i in range(len(TEXTS)):  # the heaviest terms are the ones kept
        kept = set(docs.indices[docs.indptr[i]:docs.indptr[i + 1]])
        row = full[[i]].toarray().ravel()
        assert kept <= set(np.argsort(-row)[:4])
    with pytest.raises(ValueError, match="doc_top_k"):
        ship(trained, "tiny-test", sample=TEXTS, dest_root=tmp_path / "models2", doc_top_k=-1)
