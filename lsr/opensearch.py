"""OpenSearch / Elasticsearch: documents as ``_bulk`` NDJSON with a ``rank_features`` field, and the query
that scores them by the same dot product.

A ``rank_features`` field holds ``{feature: positive weight}``; a ``bool`` query whose ``should`` clauses
are ``rank_feature`` queries with the ``linear`` function and ``boost`` = the query term's weight sums
``boost x weight`` over the shared terms: the sparse dot product lsr computes. (Both engines store a
feature's weight with 9 significant bits, a relative error of about 0.4 %, so near-ties may reorder.)

Feature names are the encoder's tokens, with ``%`` and ``.`` percent-encoded (``%25``, ``%2E``): a dot in a
field path would be read as an object boundary, and BERT's vocabulary has ``.`` and tokens containing it.

Example:
    >>> write_opensearch_bulk("bulk.ndjson", ids, vectors, encoder.terms(), index="scifact")   # doctest: +SKIP
    >>> mapping = opensearch_mapping()                  # PUT /scifact with this body           # doctest: +SKIP
    >>> body = opensearch_query(query_vector, encoder.terms(), k=10)   # POST /scifact/_search  # doctest: +SKIP
    # curl -H 'Content-Type: application/x-ndjson' -XPOST localhost:9200/_bulk --data-binary @bulk.ndjson
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

DEFAULT_FIELD = "vector"


def feature_name(token: str) -> str:
    """The token as a feature name: ``%`` and ``.`` percent-encoded."""
    return token.replace("%", "%25").replace(".", "%2E")


def token_of(feature: str) -> str:
    """Inverse of :func:`feature_name`."""
    return feature.replace("%2E", ".").replace("%25", "%")


def opensearch_mapping(field: str = DEFAULT_FIELD) -> dict:
    """The index body (mappings) for documents written by :func:`write_opensearch_bulk`."""
    return {"mappings": {"properties": {"id": {"type": "keyword"}, "text": {"type": "text"},
                                        field: {"type": "rank_features"}}}}


def write_opensearch_bulk(path: str | os.PathLike, doc_ids: Sequence[str], vectors, terms: Sequence[str], *,
                          index: str = "lsr", field: str = DEFAULT_FIELD,
                          contents: Sequence[str] | None = None) -> Path:
    """Write ``_bulk`` NDJSON (``.ndjson`` or ``.ndjson.gz``): an ``index`` action, then the document
    ``{"id", "text", field: {feature: weight}}``, per document. Weights are written as they are (floats)."""
    path = Path(path)
    m = as_csr(vectors, dim=len(terms), name="vectors")
    if len(doc_ids) != m.shape[0]:
        raise ValueError(f"{len(doc_ids)} document ids for {m.shape[0]} vectors")
    names = [feature_name(t) for t in terms]
    with atomic_file(path) as tmp, open_text_for_writing(tmp) as f:
        for i, did in enumerate(doc_ids):
            lo, hi = m.indptr[i], m.indptr[i + 1]
            features = {names[int(t)]: float(w) for t, w in zip(m.indices[lo:hi], m.data[lo:hi]) if names[int(t)]}
            doc = {"id": str(did), "text": contents[i] if contents is not None else "", field: features}
            f.write(json.dumps({"index": {"_index": index, "_id": str(did)}}) + "\n")
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    return path


def opensearch_query(query, terms: Sequence[str], *, k: int = 10, field: str = DEFAULT_FIELD) -> dict:
    """The ``_search`` body that scores documents by their dot product with one query vector."""
    q = as_csr(query, dim=len(terms), name="query")
    if q.shape[0] != 1:
        raise ValueError(f"one query vector at a time, got {q.shape[0]}")
    should = [{"rank_feature": {"field": f"{field}.{feature_name(terms[int(t)])}", "linear": {}, "boost": float(w)}}
              for t, w in zip(q.indices, q.data)]
    return {"size": int(k), "query": {"bool": {"should": should}}}


def read_opensearch_bulk(path: str | os.PathLike, terms: Sequence[str], *,
                         field: str = DEFAULT_FIELD) -> tuple[list[str], sp.csr_array]:
    """Read bulk NDJSON written by :func:`write_opensearch_bulk` back into ids and vectors.

    Raises:
        DataFormatError: naming the file and line of a malformed action or document, or an unknown feature.
    """
    path = Path(path)
    lookup = {feature_name(t): i for i, t in enumerate(terms)}
    ids: list[str] = []
    indptr, indices, data = [0], [], []
    expect_action = True
    for lineno, obj in iter_jsonl(path):
        if expect_action:
            if not isinstance(obj.get("index"), dict) or "_id" not in obj["index"]:
                raise DataFormatError(f'{path}:{lineno}: expected an action line {{"index": {{"_id": ...}}}}')
            ids.append(str(obj["index"]["_id"]))
        else:
            features = obj.get(field)
            if not isinstance(features, dict):
                raise DataFormatError(f"{path}:{lineno}: the document has no {field!r} object of features")
            row = []
            for name, w in features.items():
                if name not in lookup:
                    raise DataFormatError(f"{path}:{lineno}: feature {name!r} ({token_of(name)!r}) is not in the "
                                          "vocabulary; read it with the terms of the encoder that wrote it")
                if isinstance(w, bool) or not isinstance(w, (int, float)):
                    raise DataFormatError(f"{path}:{lineno}: weight of {name!r} is not a number")
                row.append((lookup[name], float(w)))
            row.sort()
            indices += [t for t, _ in row]
            data += [w for _, w in row]
            indptr.append(len(indices))
        expect_action = not expect_action
    if not expect_action:
        raise DataFormatError(f"{path}: the last action line has no document after it; the file is truncated")
    m = sp.csr_array((np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int64),
                      np.asarray(indptr, dtype=np.int64)), shape=(len(ids), len(terms)))
    return ids, as_csr(m, name=str(path))


def score_query(body: dict, ids: Sequence[str], vectors: sp.csr_array, terms: Sequence[str], *,
                field: str = DEFAULT_FIELD) -> list[tuple[str, float]]:
    """What an engine answers for ``body`` (from :func:`opensearch_query`) over documents read back with
    :func:`read_opensearch_bulk`: the top ``size`` ``(id, score)``, ties by document order. Evaluates the
    query template itself, so that a test can check it scores the dot product."""
    lookup = {feature_name(t): i for i, t in enumerate(terms)}
    weights = np.zeros(len(terms), dtype=np.float64)
    for clause in body["query"]["bool"]["should"]:
        rf = clause["rank_feature"]
        prefix, _, feature = rf["field"].partition(".")
        if prefix != field or "linear" not in rf:
            raise ValueError(f"not a linear rank_feature clause on {field!r}: {clause}")
        weights[lookup[feature]] += rf.get("boost", 1.0)
    scores = vectors.astype(np.float64) @ weights
    order = np.lexsort((np.arange(scores.size), -scores))
    return [(ids[i], float(scores[i])) for i in order[:body["size"]] if scores[i] > 0]
