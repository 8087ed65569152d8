"""Shared fixtures. Real data comes only through $LSR_DATA (CI sets it to ../shared/datasets)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = os.environ.get("LSR_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("real data sets not available: set LSR_DATA to the shared datasets folder")
    return Path(root).resolve()


def random_csr(rng: np.random.Generator, n: int, dim: int, density: float, integer: bool = False) -> sp.csr_array:
    """Random sparse vectors with positive weights (integers make ties likely)."""
    mask = rng.random((n, dim)) < density
    vals = rng.integers(1, 4, size=(n, dim)).astype(np.float32) if integer else rng.random((n, dim)).astype(np.float32) + 0.01
    return sp.csr_array(np.where(mask, vals, 0).astype(np.float32))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def write_beir(folder: Path, corpus: list[dict] | None, queries: list[dict], qrels: dict[str, list[tuple]]) -> Path:
    """Write a small BEIR folder (``qrels``: split -> rows of (qid, docid, score))."""
    folder.mkdir(parents=True, exist_ok=True)
    if corpus is not None:
        (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    (folder / "qrels").mkdir(exist_ok=True)
    for split, rows in qrels.items():
        text = "query-id\tcorpus-id\tscore\n" + "".join(f"{a}\t{b}\t{c}\n" for a, b, c in rows)
        (folder / "qrels" / f"{split}.tsv").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def tiny_beir(tmp_path) -> Path:
    corpus = [
        {"_id": "d1", "title": "Cats", "text": "The cat sat on the mat."},
        {"_id": "d2", "title": "Dogs", "text": "A dog chased the cat around the garden."},
        {"_id": "d3", "title": "", "text": "Stock markets fell sharply on Monday."},
        {"_id": "d4", "title": "Gardening", "text": "Roses need sun, water and good soil."},
    ]
    queries = [
        {"_id": "q1", "text": "cat on a mat"},
        {"_id": "q2", "text": "garden roses"},
        {"_id": "q3", "text": "unjudged query"},
    ]
    return write_beir(tmp_path / "tiny", corpus, queries,
                      {"test": [("q1", "d1", 1), ("q2", "d4", 2), ("q2", "d2", 1)], "dev": [("q1", "d2", 1)]})


@pytest.fixture
def make_csr():
    """The :func:`random_csr` helper, as a fixture (tests import nothing from conftest)."""
    return random_csr


@pytest.fixture
def make_beir():
    """The :func:`write_beir` helper, as a fixture."""
    return write_beir


def vocab_tokenizer(folder: Path, words):
    """A WordPiece tokenizer whose vocabulary is the special tokens then ``words`` (no download)."""
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return BertTokenizerFast(vocab=str(folder / "vocab.txt"))


@pytest.fixture(scope="session")
def make_tokenizer():
    """The :func:`vocab_tokenizer` helper, as a fixture."""
    return vocab_tokenizer
