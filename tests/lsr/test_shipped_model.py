"""The model lsr trained and ships loads offline by name, with its card, and encodes like an IDF-aware model."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from lsr import load_encoder  # noqa: E402
from lsr.encoders import SHIPPED, shipped_path  # noqa: E402


@pytest.fixture(scope="module")
def shipped():
    return load_encoder("inference-free-tiny")


def test_it_loads_offline_by_name_as_an_inference_free_encoder(shipped):
    assert "inference-free-tiny" in SHIPPED
    assert shipped.kind == "inference-free" and shipped.corpus_idf and shipped.needs_fit
    assert all(p.dtype == torch.float32 for p in shipped.model.parameters())  # stored bf16, computed float32
    folder = shipped_path("inference-free-tiny")
    size = sum(f.stat().st_size for f in folder.iterdir())
    assert size < 20e6, f"the shipped model is {size / 1e6:.1f} MB; the package allows ~20 MB"
    meta = json.loads((folder / "lsr.json").read_text())
    assert meta["query_weights"]["file"] == "idf.json"
    # the name is also a backbone (another round of training starts from it)
    from lsr.encoders import models

    assert models.resolve("inference-free-tiny") == str(folder)


def test_it_encodes_documents_sparsely_and_queries_without_a_model(shipped):
    docs = shipped.encode_documents(["Insulin resistance in skeletal muscle is caused by lipid accumulation.",
                                     "The mitochondria is the powerhouse of the cell."])
    nnz = np.diff(docs.indptr)
    assert (nnz > 5).all() and (nnz <= 400).all()
    terms = dict(shipped.decode(docs[[0]], top=10))
    assert "insulin" in terms and "muscle" in terms
    q = shipped.encode_queries(["insulin resistance"])
    assert q.nnz == 2  # the query's own tokens, IDF-weighted (the shipped table, until a corpus is indexed)


def test_the_model_card_says_what_a_user_needs():
    card = (shipped_path("inference-free-tiny") / "README.md").read_text(encoding="utf-8")
    for must in ("splade-tiny", "license", "lsr train", "nDCG@10", "non-zeros", "not good for"):
        assert must.lower() in card.lower(), f"the model card lacks {must!r}"
