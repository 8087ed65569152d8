"""Exports to the engines users scale out to, and back.

* **Anserini / Pyserini** ``JsonVectorCollection``: one JSON object per document,
  ``{"id": ..., "contents": "", "vector": {token: integer weight}}``, weights quantized as
  ``round(weight * scale)`` (Anserini's impact indexes take integers; Pyserini's SPLADE indexes use
  a scale of 100). Index it with ``IndexCollection -collection JsonVectorCollection -impact -pretokenized``.
* **Anserini pre-encoded queries**: ``qid<TAB>token token ...``, each token repeated by its quantized weight
  (the format of Pyserini's pre-encoded SPLADE topics).
* **CIFF** and **OpenSearch / Elasticsearch** ``_bulk`` documents: :mod:`lsr.ciff`, :mod:`lsr.opensearch`.
* **OpenSearch / Sentence-Transformers** models: an inference-free encoder saved by lsr *is* that layout
  (Hugging Face files + ``idf.json``); see :class:`lsr.encoders.splade.InferenceFreeEncoder`.

Example:
    >>> from lsr.exports import write_anserini_vectors, read_anserini_vectors
    >>> write_anserini_vectors("vectors.jsonl.gz", doc_ids, vectors, encoder.terms())     # doctest: +SKIP
    >>> ids, vectors = read_anserini_vectors("vectors.jsonl.gz", encoder.terms())           # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from eval.atomic import atomic_file, open_text_for_writing
from eval.datasets import iter_jsonl
from eval.errors import DataFormatError
from index.sparse import as_csr

DEFAULT_SCALE = 100.0


def quantize_weights(data: np.ndarray, scale: float) -> np.ndarray:
    return np.rint(np.asarray(data, dtype=np.float64) * scale).astype(np.int64)


def checked_vectors(vectors, doc_ids: Sequence[str], terms: Sequence[str], scale: float):
    """The vectors as a CSR batch over ``terms``, refused unless there is one id per row and ``scale > 0``."""
    m = as_csr(vectors, dim=len(terms), name="vectors")
    if len(doc_ids) != m.shape[0]:
        raise ValueError(f"{len(doc_ids)} document ids for {m.shape[0]} vectors")
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    return m


def write_anserini_vectors(path: str | os.PathLike, doc_ids: Sequence[str], vectors, terms: Sequence[str],
                           scale: float = DEFAULT_SCALE, contents: Sequence[str] | None = None) -> Path:
    """Write documents as an Anserini ``JsonVectorCollection`` (``.jsonl`` or ``.jsonl.gz``).

    Terms whose quantized weight rounds to 0 are left out, as Anserini would ignore them.
    """
    path = Path(path)
    m = checked_vectors(vectors, doc_ids, terms, scale)
    with atomic_file(path) as tmp, open_text_for_writing(tmp) as f:
        for i, did in enumerate(doc_ids):
            lo, hi = m.indptr[i], m.indptr[i + 1]
            q = quantize_weights(m.data[lo:hi], scale)
            vector = {terms[int(t)]: int(w) for t, w in zip(m.indices[lo:hi], q) if w > 0}
            obj = {"id": str(did), "contents": contents[i] if contents is not None else "", "vector": vector}
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return path


def read_anserini_vectors(path: str | os.PathLike, terms: Sequence[str],
                          scale: float = DEFAULT_SCALE) -> tuple[list[str], sp.csr_array]:
    """Read a ``JsonVectorCollection`` back into ids and float vectors (weights divided by ``scale``).

    Raises:
        DataFormatError: naming the file and line of a malformed object or a token outside ``terms``.
    """
    path = Path(path)
    lookup = {t: i for i, t in enumerate(terms)}
    ids: list[str] = []
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for lineno, obj in iter_jsonl(path):
        if "id" not in obj or not isinstance(obj.get("vector"), dict):
            raise DataFormatError(f'{path}:{lineno}: expected {{"id": ..., "vector": {{token: weight}}}}')
        row = []
        for token, weight in obj["vector"].items():
            t = lookup.get(token)
            if t is None:
                raise DataFormatError(f"{path}:{lineno}: token {token!r} is not in the encoder's vocabulary; "
                                      "read it with the encoder that wrote it")
            if not isinstance(weight, (int, float)) or isinstance(weight, bool):
                raise DataFormatError(f"{path}:{lineno}: weight of {token!r} is not a number")
            row.append((t, float(weight) / scale))
        row.sort()
        ids.append(str(obj["id"]))
        indices += [t for t, _ in row]
        data += [w for _, w in row]
        indptr.append(len(indices))
    m = sp.csr_array((np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int64),
                      np.asarray(indptr, dtype=np.int64)), shape=(len(ids), len(terms)))
    return ids, as_csr(m, name=str(path))


def write_anserini_queries(path: str | os.PathLike, query_ids: Sequence[str], vectors, terms: Sequence[str],
                           scale: float = DEFAULT_SCALE) -> Path:
    """Pre-encoded queries for Anserini's impact search, in the format the file name asks for.

    * ``.jsonl`` / ``.jsonl.gz``: one ``{"id": qid, "vector": {token: integer weight}}`` per line
      (Anserini's ``JsonIntVector`` topic reader): the weights as they are;
    * anything else (``.tsv``): ``qid<TAB>`` then each token repeated by its weight (Anserini's
      pre-tokenized query convention), with the query's weights divided by their greatest common
      divisor first: the ranking is the same (every score scales by one constant per query), and a
      BM25 query (all weights 1.0) lists each token once instead of ``scale`` times.

    Tokens whose weight rounds to 0 are left out, as Anserini would ignore them.
    """
    path = Path(path)
    m = as_csr(vectors, dim=len(terms), name="queries")
    if len(query_ids) != m.shape[0]:
        raise ValueError(f"{len(query_ids)} query ids for {m.shape[0]} vectors")
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    as_json = path.name.endswith((".jsonl", ".jsonl.gz"))
    with atomic_file(path) as tmp, open_text_for_writing(tmp) as f:
        for i, qid in enumerate(query_ids):
            lo, hi = m.indptr[i], m.indptr[i + 1]
            q = quantize_weights(m.data[lo:hi], scale)
            keep = q > 0
            tokens, weights = [terms[int(t)] for t in m.indices[lo:hi][keep]], q[keep]
            if as_json:
                f.write(json.dumps({"id": str(qid), "vector": dict(zip(tokens, map(int, weights)))},
                                   ensure_ascii=False) + "\n")
                continue
            if weights.size:
                weights = weights // np.gcd.reduce(weights)
            f.write(f"{qid}\t{' '.join(t for t, w in zip(tokens, weights) for _ in range(int(w)))}\n")
    return path
