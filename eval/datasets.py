"""Test collections: BEIR-layout folders and ir_datasets ids, read into one :class:`Dataset`.

A BEIR folder holds

    corpus.jsonl (or corpus.jsonl.gz)   {"_id", "title", "text", ...} one document per line
    queries.jsonl                        {"_id", "text", ...} one query per line
    qrels/<split>.tsv                    header "query-id<TAB>corpus-id<TAB>score", one judgement a line

:func:`load_dataset` resolves, in order:

1. an existing folder path;
2. a bare name (``scifact``) under the data root — ``data_dir=`` or the ``LSR_DATA`` environment
   variable — also one level down (``topics-qrels/fiqa`` may be named ``fiqa``);
3. an ir_datasets id (``beir/scifact/test``, ``msmarco-passage/dev/small``), read through ir_datasets
   (which downloads on first use; offline, point ``LSR_DATA`` at a BEIR folder instead);
4. a bare name of a public collection not found locally (``scifact``, ``nfcorpus``, ``trec-dl-2019-passage``,
   see :data:`IR_DATASETS_IDS`): its ir_datasets id, so that a user with only the package can run the
   README's commands online; offline, the error names both ways to get the data.

The corpus streams: iterating it reads the file again, one document at a time, as ``(doc_id, text)``
with title and text joined by a space (as BEIR does). Queries are those judged in the chosen split.

Example:
    >>> from eval import load_dataset
    >>> ds = load_dataset("scifact", split="test")           # LSR_DATA=../shared/datasets  # doctest: +SKIP
    >>> len(ds.queries), len(ds.qrels), ds.corpus.count()     # doctest: +SKIP
    (300, 300, 5183)
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .errors import DataFormatError, DatasetNotFoundError, MissingCorpusError

logger = logging.getLogger(__name__)

ENV_DATA = "LSR_DATA"
Qrels = dict[str, dict[str, int]]


# --------------------------------------------------------------------------- low-level readers
def open_text(path: Path):
    """Open a UTF-8 text file, transparently gunzipping ``*.gz``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def open_binary(path: Path):
    """Open a file for reading bytes, transparently gunzipping ``*.gz``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` of every line, decoded one line at a time so that a byte that is
    not UTF-8 is reported at its own line (a text stream decodes blocks ahead and names a later one)."""
    path = Path(path)
    with open_binary(path) as f:
        lineno = 0
        while True:
            try:
                raw = f.readline()
            except (EOFError, OSError, gzip.BadGzipFile) as e:
                raise DataFormatError(f"{path}:{lineno + 1}: cannot read the file ({e}); is it valid gzip?") from None
            if not raw:
                return
            lineno += 1
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataFormatError(f"{path}:{lineno}: not valid UTF-8 (byte {e.start + 1} of the line: "
                                      f"{raw[e.start:e.start + 1]!r}); save the file as UTF-8") from None


#: characters an id may not contain: TREC runs and qrels are white-space separated lines
_BAD_ID_CHARS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def check_id(value: str, what: str, where: str) -> str:
    """Refuse an id with white space or control characters (``where``: ``file:line``)."""
    m = _BAD_ID_CHARS.search(value)
    if m is not None:
        raise DataFormatError(
            f"{where}: {what} {value!r} contains {m.group()!r}; ids may not contain white space or control "
            "characters (TREC runs and qrels are white-space separated lines, so such an id could not be read "
            "back); rename it in the file"
        )
    return value


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, object)`` for each non-blank line; a bad line raises naming file and line."""
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataFormatError(
                f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno}); "
                "each line must be one JSON object"
            ) from None
        if not isinstance(obj, dict):
            raise DataFormatError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        yield lineno, obj


def _text_field(obj: dict, key: str, path: Path, lineno: int) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataFormatError(f"{path}:{lineno}: field {key!r} must be a string, got {type(value).__name__}")
    return value


def _id_field(obj: dict, path: Path, lineno: int) -> str:
    if "_id" not in obj:
        raise DataFormatError(f'{path}:{lineno}: missing "_id" (BEIR layout: {{"_id", "title", "text"}})')
    value = obj["_id"]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataFormatError(f'{path}:{lineno}: "_id" must be a string, got {value!r}')
    value = str(value)
    if not value.strip():
        raise DataFormatError(f'{path}:{lineno}: "_id" is empty')
    return check_id(value, '"_id"', f"{path}:{lineno}")


def join_title_text(title: str, text: str) -> str:
    """BEIR's document text: title and body joined by a space (either may be empty)."""
    title, text = title.strip(), text.strip()
    if title and text:
        return f"{title} {text}"
    return title or text


def read_queries(path: Path) -> dict[str, str]:
    """Read a BEIR ``queries.jsonl`` into ``{query_id: text}``; duplicate ids are an error."""
    queries: dict[str, str] = {}
    lines: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        qid = _id_field(obj, path, lineno)
        if qid in queries:
            raise DataFormatError(f"{path}:{lineno}: query id {qid!r} occurs twice (first at line {lines[qid]})")
        queries[qid] = _text_field(obj, "text", path, lineno)
        lines[qid] = lineno
    return queries


@dataclass
class QrelsFile:
    """Judgements plus where each came from (for error messages)."""

    qrels: Qrels
    path: Path
    lines: dict[tuple[str, str], int] = field(default_factory=dict)


def read_qrels(path: Path) -> QrelsFile:
    """Read qrels: BEIR TSV (``query-id corpus-id score``, header optional) or TREC (``qid 0 docid rel``).

    Raises:
        DataFormatError: naming the file and line of a malformed row, a non-integer grade or a
            duplicate judgement.
    """
    path = Path(path)
    qrels: Qrels = {}
    lines: dict[tuple[str, str], int] = {}
    negative = 0
    for lineno, line in iter_lines(path):
        row = line.strip()
        if not row:
            continue
        parts = row.split("\t") if "\t" in row else row.split()
        if lineno == 1 and parts[0].lower() in ("query-id", "query_id", "qid"):
            continue
        if len(parts) == 3:
            qid, did, grade = parts
        elif len(parts) == 4:
            qid, _, did, grade = parts
        else:
            raise DataFormatError(
                f"{path}:{lineno}: expected 3 columns (query-id, corpus-id, score) or 4 (TREC: "
                f"qid iter docid rel), got {len(parts)}"
            )
        try:
            rel = int(float(grade)) if float(grade).is_integer() else None
        except ValueError:
            rel = None
        if rel is None:
            raise DataFormatError(f"{path}:{lineno}: relevance {grade!r} is not an integer")
        key = (qid, did)
        if key in lines:
            raise DataFormatError(
                f"{path}:{lineno}: duplicate judgement for query {qid!r}, document {did!r} "
                f"(first at line {lines[key]})"
            )
        check_id(qid, "query id", f"{path}:{lineno}")
        check_id(did, "document id", f"{path}:{lineno}")
        lines[key] = lineno
        negative += rel < 0
        qrels.setdefault(qid, {})[did] = rel
    if negative:
        logger.warning("%s: %d judgement(s) with negative relevance, kept as given (TREC's convention: "
                       "non-relevant; ir_measures counts them as not relevant)", path, negative)
    return QrelsFile(qrels, path, lines)


# --------------------------------------------------------------------------- corpus
class Document(NamedTuple):
    """A corpus line as :func:`load_corpus` yields it with ``fields=True``: the text to encode (title and body
    joined as BEIR does), the line's ``"fields"`` object (metadata for filters, or ``None``) and what an index
    may store for display (``{"title": ..., "text": ...}``)."""

    doc_id: str
    text: str
    fields: dict | None
    stored: dict


class Corpus:
    """A re-iterable stream of ``(doc_id, text)``; nothing is held in memory.

    Args:
        iterate: a function returning a fresh iterator of ``(doc_id, text)``.
        source: a description for messages (the file path or ir_datasets id).
        count: the number of documents, when known without a pass.
    """

    def __init__(self, iterate: Callable[[], Iterator[tuple[str, str]]], source: str, count: int | None = None):
        self._iterate = iterate
        self.source = source
        self._count = count

    def __iter__(self) -> Iterator[tuple[str, str]]:
        n = 0
        for item in self._iterate():
            n += 1
            yield item
        self._count = n  # a complete pass tells the size for free

    @property
    def known_count(self) -> int | None:
        """The number of documents if already known (from metadata or a complete pass), else ``None``."""
        return self._count

    def count(self) -> int:
        """Number of documents (one pass over the corpus on first call, cached)."""
        if self._count is None:
            self._count = sum(1 for _ in self)
        return self._count

    def __repr__(self) -> str:
        return f"Corpus({self.source!r})"


def _first_line_of(path: Path, doc_id: str) -> int | None:
    for lineno, obj in iter_jsonl(path):
        if str(obj.get("_id")) == doc_id:
            return lineno
    return None


def _beir_corpus(path: Path, fields: bool = False) -> Corpus:
    def iterate() -> Iterator[tuple]:
        n = 0
        seen: set[str] = set()  # duplicates are found while reading, not after the corpus is encoded
        for lineno, obj in iter_jsonl(path):
            did = _id_field(obj, path, lineno)
            if did in seen:
                raise DataFormatError(f"{path}:{lineno}: document id {did!r} occurs twice (first at line "
                                      f"{_first_line_of(path, did)}); ids must be unique")
            seen.add(did)
            title, body = _text_field(obj, "title", path, lineno), _text_field(obj, "text", path, lineno)
            text = join_title_text(title, body)
            n += 1
            if fields:
                meta = obj.get("fields")
                if meta is not None and not isinstance(meta, dict):
                    raise DataFormatError(f'{path}:{lineno}: "fields" must be an object of name: value (keyword '
                                          f"strings or numbers), got {type(meta).__name__}")
                yield Document(did, text, meta, {"title": title, "text": body})
            else:
                yield did, text
        if n == 0:
            raise DataFormatError(f"{path}: the corpus is empty (no documents); check the file")

    return Corpus(iterate, str(path))


# --------------------------------------------------------------------------- the data set
@dataclass
class Dataset:
    """A test collection: streaming corpus, the split's queries and qrels.

    Attributes:
        name: the name it was loaded by.
        split: the qrels split (``test``, ``dev``, ``train``...), or ``None`` for ir_datasets ids.
        queries: ``{query_id: text}``, only queries judged in ``qrels``.
        qrels: ``{query_id: {doc_id: grade}}``.
        source: the folder path or ``irds:<id>``.
    """

    name: str
    split: str | None
    queries: dict[str, str]
    qrels: Qrels
    source: str
    _corpus: Corpus | None = None
    _qrels_file: QrelsFile | None = None

    @property
    def has_corpus(self) -> bool:
        return self._corpus is not None

    @property
    def corpus(self) -> Corpus:
        """The streaming corpus; raises :class:`MissingCorpusError` for queries/qrels-only sets."""
        if self._corpus is None:
            raise MissingCorpusError(
                f"data set {self.name!r} ({self.source}) has queries and qrels but no corpus; "
                "add a corpus.jsonl (BEIR layout) to that folder to index it"
            )
        return self._corpus

    def check_documents(self, known: Callable[[str], bool]) -> None:
        """Raise if a qrel names a document the corpus lacks (``known(doc_id)`` says if it exists)."""
        for qid, docs in self.qrels.items():
            for did in docs:
                if not known(did):
                    where = self.source
                    if self._qrels_file is not None:
                        line = self._qrels_file.lines.get((qid, did))
                        where = f"{self._qrels_file.path}:{line}"
                    raise DataFormatError(
                        f"{where}: qrel for query {qid!r} names document {did!r}, which is not in the "
                        "corpus; fix the qrels or use the matching corpus"
                    )

    def describe(self) -> dict:
        """JSON-able summary for reports."""
        return {
            "name": self.name,
            "split": self.split,
            "source": self.source,
            "n_queries": len(self.queries),
            "n_judged_queries": len(self.qrels),
            "n_qrels": sum(len(v) for v in self.qrels.values()),
            "n_docs": self._corpus.count() if self._corpus is not None else None,
        }

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, split={self.split!r}, queries={len(self.queries)}, "
                f"corpus={'yes' if self.has_corpus else 'missing'})")


def data_root(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The data root: ``data_dir`` if given, else ``$LSR_DATA``, else ``None``."""
    root = data_dir if data_dir is not None else os.environ.get(ENV_DATA)
    return Path(root).expanduser() if root else None


def is_beir_folder(path: Path) -> bool:
    return path.is_dir() and (path / "queries.jsonl").exists() and (path / "qrels").is_dir()


def available_datasets(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the BEIR folders under the data root (and one level down)."""
    root = data_root(data_dir)
    if root is None or not root.is_dir():
        return []
    names = []
    for p in sorted(root.iterdir()):
        if is_beir_folder(p):
            names.append(p.name)
        elif p.is_dir():
            names += [f"{p.name}/{c.name}" for c in sorted(p.iterdir()) if is_beir_folder(c)]
    return names


def resolve_folder(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """Find the local folder for ``name`` (a path or a name under the data root), or ``None``."""
    direct = Path(name).expanduser()
    if direct.is_dir():
        return direct
    root = data_root(data_dir)
    if root is None:
        return None
    if (root / name).is_dir():
        return root / name
    if "/" not in name and root.is_dir():
        matches = [p / name for p in sorted(root.iterdir()) if p.is_dir() and (p / name).is_dir()]
        if len(matches) == 1:
            return matches[0]
    return None


def _splits(folder: Path) -> list[str]:
    qdir = folder / "qrels"
    return sorted(p.name[: -len(".tsv")] for p in qdir.glob("*.tsv")) if qdir.is_dir() else []


def load_beir_folder(folder: Path, split: str | None = None, name: str | None = None) -> Dataset:
    """Load a BEIR-layout folder (see the module docstring)."""
    folder = Path(folder)
    name = name or folder.name
    qpath = folder / "queries.jsonl"
    if not qpath.exists():
        raise DatasetNotFoundError(
            f"{folder} has no queries.jsonl; a BEIR folder holds corpus.jsonl, queries.jsonl, qrels/<split>.tsv"
        )
    splits = _splits(folder)
    if split is None:
        if "test" in splits:
            split = "test"
        elif len(splits) == 1:
            split = splits[0]
        else:
            raise DataFormatError(
                f"{folder}/qrels: choose a split with split= (CLI: --split); available: {', '.join(splits) or 'none'}"
            )
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        raise DatasetNotFoundError(
            f"{qrels_path}: no qrels for split {split!r}; available splits: {', '.join(splits) or 'none'}"
        )
    all_queries = read_queries(qpath)
    qfile = read_qrels(qrels_path)
    if not qfile.qrels:
        raise DataFormatError(f"{qrels_path}: no judgements; the qrels file is empty")
    for qid, docs in qfile.qrels.items():
        if qid not in all_queries:
            line = qfile.lines[(qid, next(iter(docs)))]
            raise DataFormatError(
                f"{qrels_path}:{line}: query {qid!r} is not in {qpath}; fix the qrels or the queries file"
            )
    queries = {qid: all_queries[qid] for qid in all_queries if qid in qfile.qrels}
    for qid, text in queries.items():
        if not text.strip():
            raise DataFormatError(f"{qpath}: query {qid!r} has empty text; every judged query needs text")

    corpus = None
    for cname in ("corpus.jsonl", "corpus.jsonl.gz"):
        if (folder / cname).exists():
            corpus = _beir_corpus(folder / cname)
            break
    if corpus is None:
        logger.warning("%s has no corpus.jsonl: queries and qrels only "
                       "(evaluating given runs works, indexing does not)", folder)
    return Dataset(name=name, split=split, queries=queries, qrels=qfile.qrels, source=str(folder),
                   _corpus=corpus, _qrels_file=qfile)


def _irds_error(dataset_id: str, e: BaseException) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"could not load {dataset_id!r} through ir_datasets ({type(e).__name__}: {e}). ir_datasets downloads "
        "its files on first use; offline, or for a local copy, put the collection in BEIR layout "
        "(corpus.jsonl, queries.jsonl, qrels/<split>.tsv) in a folder and pass its path, or its name with "
        f"data_dir= / --data-dir / ${ENV_DATA}"
    )


def load_ir_datasets(dataset_id: str) -> Dataset:
    """Load an ir_datasets id (e.g. ``beir/scifact/test``, ``msmarco-passage/dev/small``).

    Queries and qrels are read at once; the corpus streams on iteration. Errors (unknown id,
    failed download) name the id and the local-folder alternative.
    """
    try:
        import ir_datasets
    except ImportError:
        raise DatasetNotFoundError(
            f"{dataset_id!r} looks like an ir_datasets id, but ir_datasets is not installed "
            "(pip install 'lsr[datasets]'); or use a local BEIR folder"
        ) from None
    try:
        ds = ir_datasets.load(dataset_id)
    except KeyError:
        raise DatasetNotFoundError(
            f"{dataset_id!r} is neither a local folder (looked under {data_root() or 'no data root: set ' + ENV_DATA}) "
            "nor an ir_datasets id"
        ) from None
    if not (ds.has_queries() and ds.has_qrels()):
        raise DatasetNotFoundError(
            f"ir_datasets id {dataset_id!r} has no queries or qrels; name a split, e.g. 'beir/scifact/test'"
        )
    try:
        queries = {}
        for q in ds.queries_iter():
            text = getattr(q, "text", None)
            if text is None:
                text = getattr(q, "title", "")
            queries[q.query_id] = text
        qrels: Qrels = {}
        for r in ds.qrels_iter():
            qrels.setdefault(r.query_id, {})[r.doc_id] = int(r.relevance)
    except Exception as e:  # network, missing files, corrupt downloads
        raise _irds_error(dataset_id, e) from None
    queries = {qid: t for qid, t in queries.items() if qid in qrels}

    corpus = None
    if ds.has_docs():
        def iterate() -> Iterator[tuple[str, str]]:
            try:
                it = ds.docs_iter()
                for d in it:
                    yield d.doc_id, join_title_text(getattr(d, "title", "") or "", getattr(d, "text", "") or "")
            except Exception as e:
                raise _irds_error(dataset_id, e) from None

        count = None
        try:
            count = ds.docs_count()
        except Exception:
            count = None
        corpus = Corpus(iterate, f"irds:{dataset_id}", count)
    return Dataset(name=dataset_id, split=None, queries=queries, qrels=qrels, source=f"irds:{dataset_id}",
                   _corpus=corpus)


def load_corpus(path: str | os.PathLike, data_dir: str | os.PathLike | None = None, *,
                fields: bool = False) -> Corpus:
    """A corpus alone: a ``corpus.jsonl[.gz]`` file, or a folder (or data set name) holding one.

    Queries and qrels are not needed (e.g. ``samples/msmarco-passage-first1000``). ``fields``: yield
    :class:`Document` ``(doc_id, text, fields, stored)``, with each line's ``"fields"`` object (metadata for
    filtered search, :mod:`index.fields`; ``None`` when a line has none) and its title and body, instead of
    ``(doc_id, text)``.
    """
    p = Path(path).expanduser()
    if p.is_file():
        return _beir_corpus(p, fields)
    folder = p if p.is_dir() else resolve_folder(str(path), data_dir)
    if folder is not None:
        for cname in ("corpus.jsonl", "corpus.jsonl.gz"):
            if (folder / cname).exists():
                return _beir_corpus(folder / cname, fields)
        raise MissingCorpusError(f"{folder} has no corpus.jsonl or corpus.jsonl.gz")
    raise FileNotFoundError(f"{path}: no such corpus file or folder")


#: bare names of public collections -> their ir_datasets ids (``{split}`` filled in; default split first)
IR_DATASETS_IDS = {
    "scifact": ("beir/scifact/{split}", "test"),
    "nfcorpus": ("beir/nfcorpus/{split}", "test"),
    "fiqa": ("beir/fiqa/{split}", "test"),
    "quora": ("beir/quora/{split}", "test"),
    "arguana": ("beir/arguana", None),
    "scidocs": ("beir/scidocs", None),
    "trec-covid": ("beir/trec-covid", None),
    "msmarco-passage-dev-small": ("msmarco-passage/dev/small", None),
    "trec-dl-2019-passage": ("msmarco-passage/trec-dl-2019/judged", None),
    "trec-dl-2020-passage": ("msmarco-passage/trec-dl-2020/judged", None),
}


def ir_datasets_id(name: str, split: str | None = None) -> str | None:
    """The ir_datasets id of a bare collection name (``scifact`` + ``test`` -> ``beir/scifact/test``), or None.

    Collections whose ir_datasets id has no split take only their one split (``test``/``dev``) or none.
    """
    if name not in IR_DATASETS_IDS:
        return None
    pattern, default = IR_DATASETS_IDS[name]
    if default is None:
        return pattern if split in (None, "test", "dev") else None
    return pattern.format(split=split or default)


def load_dataset(name: str | os.PathLike, split: str | None = None, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Load a test collection by folder path, bare name under the data root, or ir_datasets id.

    Args:
        name: ``"scifact"``, ``"topics-qrels/fiqa"``, ``"/path/to/beir/folder"``, or ``"beir/scifact/test"``.
        split: qrels split of a BEIR folder; default ``test``, or the only split there is.
        data_dir: data root for bare names; default ``$LSR_DATA``.

    Raises:
        DatasetNotFoundError: nothing matches; the message lists the names under the data root.
        DataFormatError: a malformed file, naming the file and line.
    """
    name = str(name)
    folder = resolve_folder(name, data_dir)
    if folder is not None:
        if not is_beir_folder(folder):
            raise DatasetNotFoundError(
                f"{folder} is not a BEIR folder: it needs queries.jsonl and qrels/<split>.tsv (and corpus.jsonl to index)"
            )
        return load_beir_folder(folder, split=split, name=name)
    if "/" in name and not Path(name).is_absolute() and not name.startswith("."):
        if split is not None:
            logger.info("ignoring split=%r for the ir_datasets id %r (the id names the split)", split, name)
        return load_ir_datasets(name)
    root = data_root(data_dir)
    fallback = ir_datasets_id(name, split)
    if fallback is not None:  # a known collection not found locally: its ir_datasets id (downloads when online)
        logger.info("%r is not under %s; loading it through ir_datasets as %r", name, root or f"${ENV_DATA}", fallback)
        try:
            return load_ir_datasets(fallback)
        except DatasetNotFoundError as e:
            raise DatasetNotFoundError(
                f"data set {name!r} not found locally ({'not under ' + str(root) if root else ENV_DATA + ' is not set'}) "
                f"and its ir_datasets id {fallback!r} could not be loaded ({e}). Either put the collection in BEIR "
                f"layout under a folder named {name!r} and point {ENV_DATA} (or --data-dir) at its parent, or "
                "go online once so that ir_datasets downloads it"
            ) from None
    if root is None:
        raise DatasetNotFoundError(
            f"data set {name!r} not found: set {ENV_DATA} (or --data-dir) to a folder of BEIR data sets, "
            "pass a folder path, or an ir_datasets id such as 'beir/scifact/test'"
        )
    names = available_datasets(data_dir)
    raise DatasetNotFoundError(
        f"data set {name!r} not found under {root}; available: {', '.join(names) or 'none'}"
    )


