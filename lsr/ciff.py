"""CIFF, the Common Index File Format: an index that PISA, Anserini, Terrier and JASS can import.

CIFF (Lin et al., "Supporting Interoperability Between Open-Source Search Engines with the Common Index
File Format", SIGIR 2020) is a stream of length-delimited protobuf messages: one ``Header``, one
``PostingsList`` per term (``term``, ``df``, ``cf``, postings as document-id gaps with a ``tf``), then one
``DocRecord`` per document (``docid``, ``collection_docid``, ``doclength``). Learned sparse indexes put
the quantized impact in ``tf`` (``round(weight * scale)``, as Anserini's impact indexes do), so an engine
that scores by the sum of ``tf`` over query terms (PISA's ``quantized`` scorer, Anserini's impact search)
ranks exactly as the dot product of the quantized vectors.

The messages are built from the published schema with ``protobuf`` itself (a descriptor made in code,
so neither ``protoc`` nor a generated module is needed; ``ciff-toolkit`` pins protobuf below 5, which
conflicts with the protobuf other dependencies bring).

Example:
    >>> from lsr.ciff import write_ciff, read_ciff
    >>> write_ciff("scifact.ciff.gz", idx.doc_ids.tolist(), idx.document_vectors(), encoder.terms())  # doctest: +SKIP
    >>> ids, vectors = read_ciff("scifact.ciff.gz", encoder.terms())                                   # doctest: +SKIP
    # PISA: ciff2pisa --ciff-file scifact.ciff --output scifact ; then queries with --scorer quantized
"""

from __future__ import annotations

import functools
import gzip
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from eval.atomic import atomic_file
from eval.errors import DataFormatError
from index.sparse import as_csr

from .exports import DEFAULT_SCALE, checked_vectors, quantize_weights

CIFF_VERSION = 1


@functools.lru_cache(maxsize=1)
def _messages() -> dict:
    """The CIFF message classes, from the schema of the CIFF repository (``io.osirrc.ciff``)."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError:
        raise ImportError("CIFF needs protobuf: pip install 'lsr[exports]'") from None
    F = descriptor_pb2.FieldDescriptorProto
    schema = {
        "Header": [("version", F.TYPE_INT32), ("num_postings_lists", F.TYPE_INT32), ("num_docs", F.TYPE_INT32),
                   ("total_postings_lists", F.TYPE_INT32), ("total_docs", F.TYPE_INT32),
                   ("total_terms_in_collection", F.TYPE_INT64), ("average_doclength", F.TYPE_DOUBLE),
                   ("description", F.TYPE_STRING)],
        "Posting": [("docid", F.TYPE_INT32), ("tf", F.TYPE_INT32)],
        "PostingsList": [("term", F.TYPE_STRING), ("df", F.TYPE_INT64), ("cf", F.TYPE_INT64),
                         ("postings", "Posting")],
        "DocRecord": [("docid", F.TYPE_INT32), ("collection_docid", F.TYPE_STRING), ("doclength", F.TYPE_INT32)],
    }
    fdp = descriptor_pb2.FileDescriptorProto(name="lsr_ciff.proto", package="io.osirrc.ciff", syntax="proto3")
    for name, fields in schema.items():
        msg = fdp.message_type.add(name=name)
        for number, (field, kind) in enumerate(fields, start=1):
            f = msg.field.add(name=field, number=number)
            if isinstance(kind, str):  # a repeated message field
                f.type, f.type_name, f.label = F.TYPE_MESSAGE, f".io.osirrc.ciff.{kind}", F.LABEL_REPEATED
            else:
                f.type, f.label = kind, F.LABEL_OPTIONAL
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"io.osirrc.ciff.{name}"))
            for name in schema}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _open(path: Path, mode: str):
    return gzip.open(path, mode) if path.suffix == ".gz" else open(path, mode)


def write_ciff(path: str | os.PathLike, doc_ids: Sequence[str], vectors, terms: Sequence[str], *,
               scale: float = DEFAULT_SCALE, description: str = "lsr export") -> Path:
    """Write document vectors as a CIFF file (``.ciff``, or ``.ciff.gz`` compressed), whole or not at all.

    Args:
        doc_ids: the collection's document ids (``DocRecord.collection_docid``); CIFF docids are row numbers.
        vectors: ``n_docs x len(terms)`` weights; ``tf = round(weight * scale)``, and weights that round to
            0 are left out (as Anserini's impact indexes do).
        terms: the token of every term id; postings lists are written in the tokens' byte order, as
            Lucene and PISA keep their lexicons.
    """
    path = Path(path)
    m = checked_vectors(vectors, doc_ids, terms, scale)
    msg = _messages()
    tf = quantize_weights(m.data, scale)
    if tf.size and tf.max() > np.iinfo(np.int32).max:
        raise ValueError(f"weight x scale exceeds int32 (max {tf.max()}); use a smaller scale")
    q = sp.csr_array((tf, m.indices, m.indptr), shape=m.shape)
    q.eliminate_zeros()
    post = sp.csc_array(q)  # term-major: documents ascending within each term
    post.sort_indices()
    df = np.diff(post.indptr)
    used = [t for t in np.flatnonzero(df) if terms[int(t)]]
    used.sort(key=lambda t: terms[int(t)].encode("utf-8"))
    doclen = np.asarray(q.sum(axis=1)).ravel().astype(np.int64)
    header = msg["Header"](version=CIFF_VERSION, num_postings_lists=len(used), num_docs=m.shape[0],
                           total_postings_lists=len(used), total_docs=m.shape[0],
                           total_terms_in_collection=int(doclen.sum()),
                           average_doclength=float(doclen.mean()) if m.shape[0] else 0.0, description=description)
    with atomic_file(path) as tmp, _open(tmp, "wb") as f:
        def put(message) -> None:
            data = message.SerializeToString()
            f.write(_varint(len(data)) + data)

        put(header)
        for t in used:
            lo, hi = post.indptr[t], post.indptr[t + 1]
            docs = post.indices[lo:hi].astype(np.int64)
            gaps = np.diff(docs, prepend=0)
            pl = msg["PostingsList"](term=terms[int(t)], df=int(hi - lo), cf=int(post.data[lo:hi].sum()))
            pl.postings.extend(msg["Posting"](docid=int(g), tf=int(w)) for g, w in zip(gaps, post.data[lo:hi]))
            put(pl)
        for i, did in enumerate(doc_ids):
            put(msg["DocRecord"](docid=i, collection_docid=str(did), doclength=int(doclen[i])))
    return path


def _read_delimited(f, path: Path, what: str) -> bytes:
    shift, size = 0, 0
    while True:
        b = f.read(1)
        if not b:
            raise DataFormatError(f"{path}: the file ends inside the {what}; it is truncated")
        size |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            break
        shift += 7
        if shift > 63:
            raise DataFormatError(f"{path}: a malformed message length before the {what}; not a CIFF file")
    data = f.read(size)
    if len(data) != size:
        raise DataFormatError(f"{path}: the file ends inside the {what}; it is truncated")
    return data


def read_ciff(path: str | os.PathLike, terms: Sequence[str], *,
              scale: float = DEFAULT_SCALE) -> tuple[list[str], sp.csr_array]:
    """Read a CIFF file back into document ids and vectors (``tf / scale``) over ``terms``.

    Raises:
        DataFormatError: naming the file, for a truncated or malformed file or a term outside ``terms``.
    """
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such CIFF file")
    msg = _messages()
    lookup = {t: i for i, t in enumerate(terms)}

    def parse(kind: str, data: bytes, what: str):
        m = msg[kind]()
        try:
            m.ParseFromString(data)
        except DecodeError as e:
            raise DataFormatError(f"{path}: {what} is not a CIFF {kind} ({e})") from None
        return m

    rows, cols, vals = [], [], []
    with _open(path, "rb") as f:
        header = parse("Header", _read_delimited(f, path, "header"), "the header")
        if header.version != CIFF_VERSION:
            raise DataFormatError(f"{path}: CIFF version {header.version}, this reader knows {CIFF_VERSION}")
        for n in range(header.num_postings_lists):
            pl = parse("PostingsList", _read_delimited(f, path, f"postings list {n}"), f"postings list {n}")
            t = lookup.get(pl.term)
            if t is None:
                raise DataFormatError(f"{path}: postings list {n} has term {pl.term!r}, which is not in the "
                                      "vocabulary; read it with the terms of the encoder that wrote it")
            docs = np.cumsum([p.docid for p in pl.postings], dtype=np.int64)
            rows.append(docs)
            cols.append(np.full(docs.size, t, dtype=np.int64))
            vals.append(np.array([p.tf for p in pl.postings], dtype=np.float64))
        ids = [""] * header.num_docs
        for n in range(header.num_docs):
            rec = parse("DocRecord", _read_delimited(f, path, f"document record {n}"), f"document record {n}")
            if not 0 <= rec.docid < header.num_docs:
                raise DataFormatError(f"{path}: document record {n} has docid {rec.docid} outside the collection")
            ids[rec.docid] = rec.collection_docid
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    if r.size and (r.min() < 0 or r.max() >= header.num_docs):
        raise DataFormatError(f"{path}: a posting refers to a document outside the collection")
    m = sp.csr_array(sp.coo_array(((np.concatenate(vals) if vals else np.zeros(0)) / scale,
                                   (r, np.concatenate(cols) if cols else np.zeros(0, np.int64))),
                                  shape=(header.num_docs, len(terms))))
    return ids, as_csr(m, name=str(path))
