"""Encoding a corpus into CSR shards on disk: bounded memory, resumable after a crash.

Layout of an encoding directory::

    encode.json          encoder description, shard size, progress (complete or not)
    encoder/             the encoder itself (fitted statistics included), so a resume is identical
    shard-00000.npz      indptr, indices, data, shape, and the shard's document ids

Each shard is written to a temporary file and renamed, so a killed run leaves only whole shards.
Run again with the same encoder and corpus: finished shards are kept (their document ids are
checked against the corpus as it is re-read) and encoding continues with the next one.

Example:
    >>> from lsr.encoding import encode_corpus, read_shards
    >>> encode_corpus(load_encoder("splade-tiny"), ds.corpus, "enc/scifact")          # doctest: +SKIP
    >>> for ids, vectors in read_shards("enc/scifact"): ...                            # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from eval.atomic import atomic_file
from index import DocIds, IndexBuilder, InvertedIndex
from index._version import library_version
from index.storage import artifact_kind, remove_stale_temporaries, write_lock

from .encoders import SparseEncoder, load_encoder
from .encoders.base import ENCODER_FOLDER

logger = logging.getLogger(__name__)

STATE = "encode.json"
ENCODER_DIR = ENCODER_FOLDER


class EncodingSummary(NamedTuple):
    """What :func:`encode_corpus` did: shards and documents in total, and how many were resumed."""

    path: Path
    n_shards: int
    n_docs: int
    resumed_shards: int
    seconds: float


def _shard_path(directory: Path, i: int) -> Path:
    return directory / f"shard-{i:05d}.npz"


def _write_shard(path: Path, ids: list[str], m: sp.csr_array) -> None:
    d = DocIds.from_strings(ids)
    with atomic_file(path) as tmp:
        np.savez(tmp, indptr=m.indptr, indices=m.indices, data=m.data, shape=np.asarray(m.shape, dtype=np.int64),
                 id_bytes=d.data, id_offsets=d.offsets)


def read_shard(path: Path) -> tuple[list[str], sp.csr_array]:
    """Document ids and vectors of one shard file."""
    try:
        with np.load(path, allow_pickle=False) as z:
            m = sp.csr_array((z["data"], z["indices"], z["indptr"]), shape=tuple(int(x) for x in z["shape"]))
            ids = DocIds(z["id_bytes"], z["id_offsets"]).tolist()
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path} is not a readable shard ({e}); delete it and resume the encoding") from None
    if len(ids) != m.shape[0]:
        raise ValueError(f"{path}: {len(ids)} ids for {m.shape[0]} vectors; delete it and resume")
    return ids, m


def _state(directory: Path) -> dict | None:
    p = directory / STATE
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{p} is corrupt ({e}); delete the folder to start over") from None


def _write_state(directory: Path, state: dict) -> None:
    with atomic_file(directory / STATE) as tmp:
        tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")


def encode_corpus(encoder: SparseEncoder | str, corpus: Iterable[tuple[str, str]], out_dir: str | os.PathLike, *,
                  shard_size: int = 4096, overwrite: bool = False, show_progress: bool = True) -> EncodingSummary:
    """Encode ``(doc_id, text)`` pairs into shards under ``out_dir``, resuming an unfinished run.

    Args:
        encoder: an encoder or spec. Encoders that need corpus statistics are fitted first (one
            extra pass over the corpus) and saved with the shards.
        corpus: re-iterable ``(doc_id, text)`` pairs in a fixed order (e.g. ``Dataset.corpus``).
        out_dir: the encoding directory.
        shard_size: documents per shard (memory holds one shard's texts and vectors).
        overwrite: start over even if ``out_dir`` holds a resumable or finished encoding.
    """
    out = Path(out_dir)
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    with write_lock(out):  # two encodings into one folder would interleave their shards
        if out.is_dir():
            remove_stale_temporaries(out)
        return _encode_corpus(encoder, corpus, out, shard_size, overwrite, show_progress)


def _encode_corpus(encoder, corpus, out: Path, shard_size: int, overwrite: bool, show_progress: bool) -> EncodingSummary:
    start = time.perf_counter()
    state = _state(out) if out.exists() else None
    if state is not None and not overwrite:
        if state.get("shard_size") != shard_size:
            raise ValueError(f"{out} was encoded with shard_size {state.get('shard_size')}, not {shard_size}; "
                             "pass the same size to resume, or overwrite=True (CLI: --overwrite)")
        if isinstance(encoder, (str, os.PathLike)) or encoder.needs_fit:
            encoder = load_encoder(out / ENCODER_DIR)  # the very encoder (and statistics) of the first run
        elif encoder.describe() != state.get("encoder"):
            raise ValueError(f"{out} holds an encoding by another encoder ({state.get('encoder', {}).get('kind')}); "
                             "use another folder or overwrite=True")
        if state.get("complete"):
            logger.info("%s is already complete: %d documents", out, state["n_docs"])
            return EncodingSummary(out, state["n_shards"], state["n_docs"], state["n_shards"], 0.0)
    else:
        if out.exists() and any(out.iterdir()):
            if not overwrite or artifact_kind(out) != "encoding":
                raise FileExistsError(f"{out} exists and is not an lsr encoding; choose another folder")
            for p in out.glob("shard-*.npz"):
                p.unlink()
            (out / STATE).unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        if isinstance(encoder, (str, os.PathLike)):
            encoder = load_encoder(encoder)
        if encoder.needs_fit:
            if iter(corpus) is corpus:
                raise ValueError(f"{type(encoder).__name__} needs corpus statistics first, so the corpus must be "
                                 "re-iterable (a list or eval.Corpus), not a one-shot iterator")
            encoder.fit((text for _, text in corpus), show_progress=show_progress)
        encoder.save(out / ENCODER_DIR, overwrite=True)
        state = {"format": "lsr-encoding", "library_version": library_version(), "encoder": encoder.describe(),
                 "shard_size": shard_size, "n_shards": 0, "n_docs": 0, "complete": False}
        _write_state(out, state)

    done = 0
    while _shard_path(out, done).exists():
        done += 1
    items = iter(corpus)
    n_docs = 0
    # re-read the finished shards' documents and check that the corpus is the same one
    for i in range(done):
        ids, _ = read_shard(_shard_path(out, i))
        for expected in ids:
            item = next(items, None)
            if item is None or item[0] != expected:
                found = None if item is None else item[0]
                raise ValueError(f"{_shard_path(out, i)} holds document {expected!r} where the corpus now has "
                                 f"{found!r}: not the corpus of the first run; use overwrite=True to start over")
        n_docs += len(ids)
    if done:
        logger.info("resuming %s after %d shards (%d documents)", out, done, n_docs)
    shard = done
    bar = tqdm(desc="encoding", unit="doc", initial=n_docs, disable=not show_progress, mininterval=1.0)
    while True:
        batch = list(itertools.islice(items, shard_size))
        if not batch:
            break
        ids = [d for d, _ in batch]
        vectors = encoder.encode_documents([t for _, t in batch])
        _write_shard(_shard_path(out, shard), ids, vectors)
        shard += 1
        n_docs += len(batch)
        bar.update(len(batch))
        state.update(n_shards=shard, n_docs=n_docs)
        _write_state(out, state)
    bar.close()
    if n_docs == 0:
        raise ValueError("the corpus is empty: nothing to encode")
    state.update(complete=True, n_shards=shard, n_docs=n_docs, seconds=time.perf_counter() - start)
    _write_state(out, state)
    return EncodingSummary(out, shard, n_docs, done, time.perf_counter() - start)


def read_shards(directory: str | os.PathLike) -> Iterator[tuple[list[str], sp.csr_array]]:
    """``(ids, vectors)`` of every shard of a complete encoding, in order."""
    directory = Path(directory)
    state = _state(directory)
    if state is None:
        raise FileNotFoundError(f"{directory} has no {STATE}: not an lsr encoding (see `lsr encode`)")
    if not state.get("complete"):
        raise ValueError(f"{directory} is an unfinished encoding ({state.get('n_docs')} documents so far); "
                         "run the same `lsr encode` again to finish it")
    for i in range(int(state["n_shards"])):
        yield read_shard(_shard_path(directory, i))


def read_all_shards(directory: str | os.PathLike) -> tuple[list[str], sp.csr_array]:
    """Every document id and vector of a complete encoding, in one CSR matrix (in memory)."""
    ids, parts = [], []
    for shard_ids, vectors in read_shards(directory):
        ids += shard_ids
        parts.append(vectors)
    return ids, sp.csr_array(sp.vstack(parts, format="csr"))


def index_shards(directory: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False,
                 **index_options) -> InvertedIndex:
    """Build an index (with the encoder in ``encoder/``) from a complete encoding, one shard at a time.

    With ``reorder`` (document reordering needs every vector at once) the shards are read into memory
    and indexed together.
    """
    directory = Path(directory)
    encoder = load_encoder(directory / ENCODER_DIR)
    if encoder.has_second_stage:
        raise ValueError(f"{directory} was encoded by {encoder.kind!r}, whose second stage (late interaction) needs "
                         "each document's token vectors, which encoding shards do not keep; build the index from the "
                         "texts instead: lsr index build --dataset/--corpus ... --encoder ...")
    if index_options.get("reorder") is not None:
        from .pipeline import Retriever

        ids, vectors = read_all_shards(directory)
        index = InvertedIndex.build(vectors, doc_ids=ids, vocabulary=encoder.vocabulary, encoder=encoder.describe(),
                                    **index_options)
        Retriever(index, encoder).save(out, overwrite=overwrite)
        return index
    index_options.pop("reorder", None)
    builder = IndexBuilder(out, dim=encoder.vocabulary.size, vocabulary=encoder.vocabulary,
                           encoder=encoder.describe(), overwrite=overwrite, **index_options)
    try:
        for ids, vectors in read_shards(directory):
            builder.add(vectors, doc_ids=ids)
    except BaseException:
        builder.abort()
        raise
    from .pipeline import save_encoder_into

    return builder.finish(extra=lambda tmp: save_encoder_into(encoder, tmp))
