"""Encoding a corpus into CSR shards on disk: bounded memory, resumable after a crash.

Layout of an encoding directory::

    encode.json          encoder description, shard size, progress (complete or not)
    encoder/             the encoder itself (fitted statistics included), so a resume is identical
    shard-00000.npz      indptr, indices, data, shape, and the shard's document ids

Each shard is written to a temporary file and renamed, so a killed run leaves only whole shards.
Run again with the same encoder and corpus: finished shards are kept (their document ids are
checked against the corpus as it is re-read) and encoding continues with the next one.

Parts: the corpus is cut into blocks of ``shard_size`` documents (block ``b`` holds documents
``b * shard_size`` to ``(b + 1) * shard_size - 1``, in corpus order) and ``part=(I, N)`` encodes the blocks
``b`` with ``b % N == I - 1`` into ``shard-<b>.npz``, so N machines or processes can each encode one part
into its own folder (every part reads the whole corpus, and fits the encoder's corpus statistics on all of it,
so the parts' encoders are identical). :func:`read_shards` and :func:`index_shards` take the N folders and
read the blocks in corpus order: the result is the index one run would build.

Example:
    >>> from lsr.encoding import encode_corpus, read_shards
    >>> encode_corpus(load_encoder("splade-tiny"), ds.corpus, "enc/scifact")          # doctest: +SKIP
    >>> for ids, vectors in read_shards("enc/scifact"): ...                            # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
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
    """What :func:`encode_corpus` did: shards and documents (of its part) in total, and how many were resumed."""

    path: Path
    n_shards: int
    n_docs: int
    resumed_shards: int
    seconds: float


def parse_part(part) -> tuple[int, int]:
    """``"2/4"``, ``(2, 4)`` or None (the whole corpus, ``(1, 1)``) as ``(I, N)`` with ``1 <= I <= N``."""
    if part is None:
        return 1, 1
    if isinstance(part, str):
        i, slash, n = part.partition("/")
        try:
            part = (int(i), int(n)) if slash else None
        except ValueError:
            part = None
        if part is None:
            raise ValueError("a part is written I/N (the I-th of N parts, 1 <= I <= N), e.g. 2/4")
    i, n = (int(x) for x in part)
    if not 1 <= i <= n:
        raise ValueError(f"part {i}/{n}: I must be between 1 and N")
    return i, n


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
                  shard_size: int = 4096, overwrite: bool = False, show_progress: bool = True,
                  part=None) -> EncodingSummary:
    """Encode ``(doc_id, text)`` pairs into shards under ``out_dir``, resuming an unfinished run.

    Args:
        encoder: an encoder or spec. Encoders that need corpus statistics are fitted first (one
            extra pass over the corpus) and saved with the shards.
        corpus: re-iterable ``(doc_id, text)`` pairs in a fixed order (e.g. ``Dataset.corpus``).
        out_dir: the encoding directory.
        shard_size: documents per shard (memory holds one shard's texts and vectors).
        overwrite: start over even if ``out_dir`` holds a resumable or finished encoding.
        part: ``"I/N"`` or ``(I, N)``: encode only the I-th of N parts (see the module documentation);
            every part must use the same corpus, encoder and ``shard_size``.

    Example:
        >>> for i in (1, 2, 3):   # three machines, one part each                   # doctest: +SKIP
        ...     encode_corpus("splade-tiny", ds.corpus, f"enc/part{i}", part=(i, 3))
        >>> index_shards(["enc/part1", "enc/part2", "enc/part3"], "idx/all")         # doctest: +SKIP
    """
    out = Path(out_dir)
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    part = parse_part(part)
    with write_lock(out):  # two encodings into one folder would interleave their shards
        if out.is_dir():
            remove_stale_temporaries(out)
        return _encode_corpus(encoder, corpus, out, shard_size, overwrite, show_progress, part)


def _encode_corpus(encoder, corpus, out: Path, shard_size: int, overwrite: bool, show_progress: bool,
                   part: tuple[int, int]) -> EncodingSummary:
    start = time.perf_counter()
    state = _state(out) if out.exists() else None
    if state is not None and not overwrite:
        if state.get("shard_size") != shard_size:
            raise ValueError(f"{out} was encoded with shard_size {state.get('shard_size')}, not {shard_size}; "
                             "pass the same size to resume, or overwrite=True (CLI: --overwrite)")
        if tuple(state.get("part", (1, 1))) != part:
            have = "/".join(map(str, state.get("part", (1, 1))))
            raise ValueError(f"{out} holds part {have} of an encoding, not {part[0]}/{part[1]}; resume it with the "
                             "same part, or use another folder")
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
        if part != (1, 1):
            state["part"] = list(part)
        _write_state(out, state)

    mine, parts = part[0] - 1, part[1]
    items = iter(corpus)
    n_docs = n_shards = resumed = corpus_docs = 0
    block = 0
    bar = tqdm(desc="encoding" if parts == 1 else f"encoding part {part[0]}/{parts}", unit="doc",
               disable=not show_progress, mininterval=1.0)
    while True:
        batch = list(itertools.islice(items, shard_size))
        if not batch:
            break
        corpus_docs += len(batch)
        if block % parts == mine:
            path = _shard_path(out, block)
            ids = [d for d, _ in batch]
            if path.exists():  # a finished shard of an earlier run: the corpus must be the same one
                kept, _ = read_shard(path)
                if kept != ids:
                    at = next((j for j, (a, b) in enumerate(zip(kept, ids)) if a != b), min(len(kept), len(ids)))
                    expected = kept[at] if at < len(kept) else None
                    found = ids[at] if at < len(ids) else None
                    raise ValueError(f"{path} holds document {expected!r} where the corpus now has {found!r}: not "
                                     "the corpus of the first run; use overwrite=True to start over")
                resumed += 1
            else:
                if resumed and resumed == n_shards:
                    logger.info("resuming %s after %d shards (%d documents)", out, resumed, n_docs)
                _write_shard(path, ids, encoder.encode_documents([t for _, t in batch]))
            n_shards += 1
            n_docs += len(batch)
            bar.update(len(batch))
            state.update(n_shards=n_shards, n_docs=n_docs)
            _write_state(out, state)
        block += 1
    bar.close()
    if corpus_docs == 0:
        raise ValueError("the corpus is empty: nothing to encode")
    state.update(complete=True, n_shards=n_shards, n_docs=n_docs, corpus_blocks=block, corpus_docs=corpus_docs,
                 seconds=time.perf_counter() - start)
    _write_state(out, state)
    return EncodingSummary(out, n_shards, n_docs, resumed, time.perf_counter() - start)


def _folder_digest(folder: Path) -> str:
    h = hashlib.sha1()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(folder)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def encoding_parts(directories) -> list[tuple[Path, dict]]:
    """The folders of one encoding (one folder, or the N parts of a parted one, in any order) checked to fit
    together, as ``[(folder, state)]`` in part order; a clear error names what is missing or mismatched."""
    folders = [Path(directories)] if isinstance(directories, (str, os.PathLike)) else [Path(d) for d in directories]
    if not folders:
        raise ValueError("no encoding folder given")
    found = []
    for d in folders:
        state = _state(d)
        if state is None:
            raise FileNotFoundError(f"{d} has no {STATE}: not an lsr encoding (see `lsr encode`)")
        if not state.get("complete"):
            raise ValueError(f"{d} is an unfinished encoding ({state.get('n_docs')} documents so far); "
                             "run the same `lsr encode` again to finish it")
        found.append((d, state))
    first_dir, first = found[0]
    n = int(first.get("part", (1, 1))[1])
    by_part: dict[int, tuple[Path, dict]] = {}
    for d, state in found:
        i, count = (int(x) for x in state.get("part", (1, 1)))
        if count != n:
            raise ValueError(f"{d} is part {i}/{count} but {first_dir} belongs to an encoding in {n} parts")
        if i in by_part:
            raise ValueError(f"{by_part[i][0]} and {d} are both part {i}/{n}")
        for key in ("shard_size", "encoder", "corpus_blocks", "corpus_docs"):
            if state.get(key) != first.get(key):
                raise ValueError(f"{d} and {first_dir} differ in {key} ({state.get(key)!r} vs {first.get(key)!r}): "
                                 "parts of one encoding need the same corpus, encoder and shard size")
        by_part[i] = (d, state)
    missing = [f"{i}/{n}" for i in range(1, n + 1) if i not in by_part]
    if missing:
        raise ValueError(f"part(s) {', '.join(missing)} of this encoding are missing: give every part's folder")
    ordered = [by_part[i] for i in range(1, n + 1)]
    if n > 1:  # fitted statistics (e.g. BM25's document frequencies) must be the same in every part
        digest = _folder_digest(ordered[0][0] / ENCODER_DIR)
        for d, _ in ordered[1:]:
            if _folder_digest(d / ENCODER_DIR) != digest:
                raise ValueError(f"{d / ENCODER_DIR} differs from {ordered[0][0] / ENCODER_DIR}: the parts were "
                                 "encoded by different encoders or fitted on different corpora")
    return ordered


def read_shards(directories) -> Iterator[tuple[list[str], sp.csr_array]]:
    """``(ids, vectors)`` of every shard of a complete encoding, in corpus order: one folder, or the folders of
    all N parts of an encoding made with ``part=(I, N)``."""
    parts = encoding_parts(directories)
    n = len(parts)
    blocks = parts[0][1].get("corpus_blocks")
    if blocks is None:  # written before parts existed: one folder, shards 0..n_shards-1
        blocks = int(parts[0][1]["n_shards"])
    for b in range(int(blocks)):
        path = _shard_path(parts[b % n][0], b)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing from a complete encoding; encode that part again")
        yield read_shard(path)


def read_all_shards(directories) -> tuple[list[str], sp.csr_array]:
    """Every document id and vector of a complete encoding (one folder or all its parts), in one CSR matrix."""
    ids, parts = [], []
    for shard_ids, vectors in read_shards(directories):
        ids += shard_ids
        parts.append(vectors)
    return ids, sp.csr_array(sp.vstack(parts, format="csr"))


def index_shards(directories, out: str | os.PathLike, *, overwrite: bool = False,
                 **index_options) -> InvertedIndex:
    """Build an index (with the encoder in ``encoder/``) from a complete encoding, one shard at a time.

    ``directories``: the encoding folder, or the folders of all N parts of a parted encoding (any order).
    With ``reorder`` (document reordering needs every vector at once) the shards are read into memory
    and indexed together.
    """
    directory = encoding_parts(directories)[0][0]
    encoder = load_encoder(directory / ENCODER_DIR)
    if encoder.has_second_stage:
        raise ValueError(f"{directory} was encoded by {encoder.kind!r}, whose second stage (late interaction) needs "
                         "each document's token vectors, which encoding shards do not keep; build the index from the "
                         "texts instead: lsr index build --dataset/--corpus ... --encoder ...")
    if index_options.get("reorder") is not None:
        from .pipeline import Retriever

        ids, vectors = read_all_shards(directories)
        index = InvertedIndex.build(vectors, doc_ids=ids, vocabulary=encoder.vocabulary, encoder=encoder.describe(),
                                    **index_options)
        Retriever(index, encoder).save(out, overwrite=overwrite)
        return index
    index_options.pop("reorder", None)
    builder = IndexBuilder(out, dim=encoder.vocabulary.size, vocabulary=encoder.vocabulary,
                           encoder=encoder.describe(), overwrite=overwrite, **index_options)
    try:
        for ids, vectors in read_shards(directories):
            builder.add(vectors, doc_ids=ids)
    except BaseException:
        builder.abort()
        raise
    from .pipeline import save_encoder_into

    return builder.finish(extra=lambda tmp: save_encoder_into(encoder, tmp))
