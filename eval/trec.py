"""TREC run files: ``qid Q0 docid rank score run_name``, one retrieved document per line.

Runs are ``{query_id: {doc_id: score}}`` as ir_measures and pytrec_eval take them.
lsr writes its own reader and writer (a few lines each) so that a malformed file is reported
with its path and line number.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TextIO

from .atomic import atomic_file
from .datasets import open_text, read_qrels
from .errors import DataFormatError

Run = dict[str, dict[str, float]]


def ranked(docs: dict[str, float]) -> list[tuple[str, float]]:
    """Documents of one query best first; equal scores ordered by doc id (deterministic)."""
    return sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))


def _score_text(score: float) -> str:
    """Six decimals, or as many digits as it takes to tell the score from its float32 neighbours
    (a run's tie-breaking steps, see ``index.SearchResults.to_run``, must survive the file)."""
    text = f"{score:.6f}"
    return text if float(text) == score else f"{score:.9g}"


_BAD_ID = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def _check_ids(qid: str, docs: dict[str, float]) -> None:
    """Refuse ids that would break the white-space separated line (one regex pass per query)."""
    if _BAD_ID.search(qid) or not qid:
        raise ValueError(f"query id {qid!r} is empty or contains white space or control characters; a TREC run "
                         "could not be read back")
    if _BAD_ID.search("".join(docs)):
        bad = next(d for d in docs if _BAD_ID.search(d) or not d)
        raise ValueError(f"document id {bad!r} (query {qid!r}) contains white space or control characters; a TREC "
                         "run could not be read back: rename it in the corpus")


class TrecRunWriter:
    """Write a run in parts (e.g. one slice of queries at a time) to a file, whole or not at all.

    Example:
        >>> with TrecRunWriter("run.trec", name="lsr") as w:            # doctest: +SKIP
        ...     for part in parts: w.write(part)                         # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike | None, name: str = "lsr", stream: TextIO | None = None):
        if not name or _BAD_ID.search(name):
            raise ValueError(f"run name {name!r} must be non-empty and contain no white space")
        self.path = None if path is None else Path(path)
        self.name = name
        self.stream = stream
        self.lines = 0
        self._atomic = None
        self._file = None

    def __enter__(self) -> TrecRunWriter:
        if self.path is not None:
            self._atomic = atomic_file(self.path)
            tmp = self._atomic.__enter__()
            self._file = open(tmp, "w", encoding="utf-8")
        elif self.stream is None:
            raise ValueError("give a path or a stream to write the run to")
        return self

    def write(self, run: Run) -> None:
        """Append ``run``'s queries (in sorted order; each query must come in one part)."""
        f = self._file or self.stream
        for qid in sorted(run):
            _check_ids(qid, run[qid])
            f.writelines(f"{qid} Q0 {did} {rank} {_score_text(score)} {self.name}\n"
                         for rank, (did, score) in enumerate(ranked(run[qid]), start=1))
            self.lines += len(run[qid])

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._file is not None:
            self._file.close()
            self._atomic.__exit__(exc_type, exc, tb)


def write_trec_run(run: Run, path: str | os.PathLike, name: str = "lsr") -> Path:
    """Write ``run`` as a TREC run file (via a temporary file, then rename).

    Raises:
        ValueError: an id with white space or control characters (the file could not be read back).
    """
    with TrecRunWriter(path, name) as w:
        w.write(run)
    return Path(path)


def read_trec_run(path: str | os.PathLike) -> Run:
    """Read a TREC run file (6 columns, white-space separated).

    Raises:
        DataFormatError: naming the file and line of a malformed row or a repeated document.
    """
    path = Path(path)
    run: Run = {}
    with open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise DataFormatError(
                    f"{path}:{lineno}: expected 6 columns 'qid Q0 docid rank score name', got {len(parts)}"
                )
            qid, _, did, _rank, score, _name = parts
            try:
                value = float(score)
            except ValueError:
                raise DataFormatError(f"{path}:{lineno}: score {score!r} is not a number") from None
            docs = run.setdefault(qid, {})
            if did in docs:
                raise DataFormatError(f"{path}:{lineno}: document {did!r} appears twice for query {qid!r}")
            docs[did] = value
    return run


def write_trec_qrels(qrels: dict[str, dict[str, int]], path: str | os.PathLike) -> Path:
    """Write qrels in TREC format ``qid 0 docid rel``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for qid in sorted(qrels):
            for did, rel in sorted(qrels[qid].items()):
                f.write(f"{qid} 0 {did} {rel}\n")
    return path


def read_trec_qrels(path: str | os.PathLike) -> dict[str, dict[str, int]]:
    """Read qrels in TREC (4 columns) or BEIR TSV (3 columns) format."""
    return read_qrels(Path(path)).qrels
