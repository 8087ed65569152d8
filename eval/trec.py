"""TREC run files: ``qid Q0 docid rank score run_name``, one retrieved document per line.

Runs are ``{query_id: {doc_id: score}}`` as ir_measures and pytrec_eval take them.
lsr writes its own reader and writer (a few lines each) so that a malformed file is reported
with its path and line number.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def write_trec_run(run: Run, path: str | os.PathLike, name: str = "lsr") -> Path:
    """Write ``run`` as a TREC run file (via a temporary file, then rename)."""
    path = Path(path)
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"run name {name!r} must be non-empty and contain no white space")
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for qid in sorted(run):
            for rank, (did, score) in enumerate(ranked(run[qid]), start=1):
                f.write(f"{qid} Q0 {did} {rank} {_score_text(score)} {name}\n")
    return path


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
