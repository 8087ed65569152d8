"""Training data: sources, hard negatives, teacher scores, and the batches the trainer draws.

A :class:`Source` holds a document table (``key -> text``), the IDF table of its corpus (the query
weights of an inference-free model) and :class:`Example` records: a query, its positive and negative
document keys, and per-teacher scores of those documents. Three ways in:

* :func:`beir_source` — a BEIR data set split (``scifact`` train, ``nfcorpus`` train...): positives
  from the qrels (grade > 0), hard negatives mined by the configured teachers (top ``keep`` of each
  teacher's top ``depth``, judged documents excluded), every candidate scored by every teacher.
  The result is cached as JSONL (``negatives.cache_dir``), keyed by data set, split and settings.
* :func:`triples_source` — MS MARCO-style ``query<TAB>positive<TAB>negative`` TSV (texts inline).
* :func:`jsonl_source` — one object per line: ``{"query": "...", "positives": [...],
  "negatives": [...], "scores": {"teacher": {"doc": score}}}``; documents are ids of ``corpus``
  when given, else the texts themselves.

:class:`Batcher` draws, per step, ``batch_size`` examples (sources mixed by ``weight``), one
positive and ``n_negatives`` negatives each, deterministically from a seed and a step counter so
that a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eval.atomic import atomic_file
from eval.datasets import DataFormatError, load_corpus, load_dataset, open_text

logger = logging.getLogger(__name__)

CACHE_VERSION = 1


@dataclass
class Example:
    query: str
    positives: list[str]
    negatives: list[str]
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    qid: str | None = None


@dataclass
class Source:
    name: str
    docs: dict[str, str]
    examples: list[Example]
    weight: float = 1.0
    idf: np.ndarray | None = None

    def teachers(self) -> list[str]:
        names: set[str] = set()
        for ex in self.examples:
            names.update(ex.scores)
        return sorted(names)


# ------------------------------------------------------------------------------ BEIR + mining
def _cache_key(source: str, split: str, teachers: Sequence[str], depth: int, keep: int, dense_model: str,
               self_model: str | None = None) -> str:
    text = json.dumps([CACHE_VERSION, source, split, sorted(teachers), depth, keep, dense_model,
                       self_model if "self" in teachers else None])
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def beir_source(name: str, split: str = "train", *, data_dir: str | None = None, teachers: Sequence[str] = ("bm25",),
                depth: int = 100, keep: int = 32, cache_dir: str | os.PathLike | None = None,
                dense_model: str = "all-MiniLM-L6-v2", max_queries: int | None = None, weight: float = 1.0,
                show_progress: bool = True, self_encoder=None, self_model: str | None = None) -> Source:
    """A BEIR split with mined hard negatives and teacher scores (cached).

    ``self_encoder`` is the encoder the ``self`` teacher mines with (the model under training) and
    ``self_model`` names it in the cache key.
    """
    ds = load_dataset(name, split=split, data_dir=data_dir)
    docs = dict(ds.corpus)
    ds.check_documents(lambda d: d in docs)
    qids = sorted(q for q, rel in ds.qrels.items() if any(g > 0 for g in rel.values()) and q in ds.queries)
    if max_queries:
        qids = qids[:max_queries]
    if not qids:
        raise DataFormatError(f"{ds.source}: split {split!r} has no query with a positive judgement to train on")
    # a local folder is keyed and named as resolved: one cache however it was spelled (relative, absolute, a link)
    source = ds.source if ds.source.startswith("irds:") else str(Path(ds.source).resolve())
    key = _cache_key(source, split, teachers, depth, keep, dense_model, self_model)
    label = ds.name if source.startswith("irds:") else Path(source).name
    cache = Path(cache_dir) / f"{label.replace('/', '_')}-{split}-{key}.jsonl" if cache_dir else None
    examples = _read_cache(cache, set(qids)) if cache and cache.exists() else None
    if examples is None:
        examples = _mine(ds, docs, qids, teachers, depth, keep, dense_model, show_progress, self_encoder)
        if cache:
            _write_cache(cache, examples)
    return Source(f"{ds.name}/{split}", docs, examples, weight)


def _mine(ds, docs: dict[str, str], qids: list[str], teacher_names, depth: int, keep: int, dense_model: str,
          show_progress: bool, self_encoder=None) -> list[Example]:
    from .teachers import make_teacher

    ids = list(docs)
    texts = [docs[d] for d in ids]
    position = {d: i for i, d in enumerate(ids)}
    queries = [ds.queries[q] for q in qids]
    candidates: list[set[int]] = [set() for _ in qids]
    teachers = []
    for name in teacher_names:
        logger.info("teacher %s: encoding %d documents of %s", name, len(ids), ds.name)
        t = make_teacher(name, texts, dense_model=dense_model, show_progress=show_progress, self_encoder=self_encoder)
        t.prepare_queries(queries)
        res = t.search(depth)
        for qi, q in enumerate(qids):
            judged = ds.qrels[q]
            taken = 0
            for d in res.doc_idx[qi]:
                if d < 0 or taken >= keep:
                    break
                if ids[d] not in judged:
                    candidates[qi].add(int(d))
                    taken += 1
        teachers.append(t)
    examples = []
    for qi, q in enumerate(qids):
        pos = sorted(d for d, g in ds.qrels[q].items() if g > 0)
        neg = sorted(candidates[qi])
        rows = np.asarray([position[d] for d in pos] + neg, dtype=np.int64)
        keys = pos + [ids[d] for d in neg]
        scores = {t.name: dict(zip(keys, map(float, t.score(qi, rows)))) for t in teachers}
        examples.append(Example(ds.queries[q], pos, [ids[d] for d in neg], scores, qid=q))
    return examples


def _write_cache(path: Path, examples: list[Example]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps({"lsr_negatives_cache": CACHE_VERSION}) + "\n")
        for ex in examples:
            f.write(json.dumps({"qid": ex.qid, "query": ex.query, "positives": ex.positives,
                                "negatives": ex.negatives, "scores": ex.scores}) + "\n")
    logger.info("cached %d examples with negatives in %s", len(examples), path)


def _read_cache(path: Path, qids: set[str]) -> list[Example] | None:
    try:
        with open(path, encoding="utf-8") as f:
            head = json.loads(f.readline())
            if head.get("lsr_negatives_cache") != CACHE_VERSION:
                return None
            examples = [Example(**json.loads(line)) for line in f if line.strip()]
    except (OSError, ValueError, TypeError) as e:
        logger.warning("%s: unreadable negatives cache (%s); mining again", path, e)
        return None
    if {ex.qid for ex in examples} != qids:
        return None
    logger.info("negatives from cache %s", path)
    return examples


# ------------------------------------------------------------------------------ files
def _text_key(text: str) -> str:
    return "t" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def triples_source(path: str | os.PathLike, weight: float = 1.0, max_queries: int | None = None) -> Source:
    """``query<TAB>positive<TAB>negative`` lines (MS MARCO training triples); texts inline."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such triples file")
    docs: dict[str, str] = {}
    by_query: dict[str, Example] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 3 or not all(p.strip() for p in parts):
                raise DataFormatError(f"{path}:{lineno}: expected query<TAB>positive<TAB>negative, got "
                                      f"{len(parts)} field(s)")
            q, p, n = parts
            pk, nk = _text_key(p), _text_key(n)
            docs[pk], docs[nk] = p, n
            ex = by_query.setdefault(q, Example(q, [], []))
            if pk not in ex.positives:
                ex.positives.append(pk)
            if nk not in ex.negatives and nk not in ex.positives:
                ex.negatives.append(nk)
    examples = list(by_query.values())[:max_queries] if max_queries else list(by_query.values())
    if not examples:
        raise DataFormatError(f"{path}: no triples")
    return Source(path.name, docs, examples, weight)


def jsonl_source(path: str | os.PathLike, corpus: str | None = None, data_dir: str | None = None,
                 weight: float = 1.0, max_queries: int | None = None) -> Source:
    """Examples as JSONL (``.jsonl`` or ``.jsonl.gz``); documents are ids of ``corpus`` (BEIR folder, corpus file
    or name) or inline texts.

    A negatives cache written by :func:`beir_source` is such a file too (its first line, the cache header,
    is skipped): mined negatives and teacher scores can be reused on another machine, or by a later round,
    by naming the cache file and the corpus it was mined from.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such examples file")
    docs: dict[str, str] = dict(load_corpus(corpus, data_dir)) if corpus else {}
    examples = []
    with open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(f"{where}: not valid JSON ({e.msg})") from None
            if lineno == 1 and isinstance(obj, dict) and "lsr_negatives_cache" in obj:
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get("query"), str) or not obj["query"].strip():
                raise DataFormatError(f"{where}: each line needs a non-empty \"query\" string")
            pos = _doc_list(obj, "positive", where)
            neg = _doc_list(obj, "negative", where)
            if not pos:
                raise DataFormatError(f"{where}: no \"positives\"; every example needs at least one")
            keys = {}
            for d in pos + neg:
                if corpus:
                    if d not in docs:
                        raise DataFormatError(f"{where}: document {d!r} is not in the corpus {corpus}")
                    keys[d] = d
                else:
                    keys[d] = _text_key(d)
                    docs[keys[d]] = d
            raw_scores = obj.get("scores") or {}
            if raw_scores and all(isinstance(v, (int, float)) for v in raw_scores.values()):
                raw_scores = {"given": raw_scores}
            scores = {}
            for teacher, table in raw_scores.items():
                if not isinstance(table, dict):
                    raise DataFormatError(f"{where}: \"scores\" must map teacher -> {{document: score}}")
                scores[teacher] = {keys.get(d, d): float(s) for d, s in table.items()}
            examples.append(Example(obj["query"], [keys[d] for d in pos], [keys[d] for d in neg], scores,
                                    qid=str(obj.get("qid", lineno))))
            if max_queries and len(examples) >= max_queries:
                break
    if not examples:
        raise DataFormatError(f"{path}: no examples")
    return Source(path.name, docs, examples, weight)


def _doc_list(obj: dict, name: str, where: str) -> list[str]:
    value = obj.get(name + "s", obj.get(name, []))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise DataFormatError(f"{where}: \"{name}s\" must be a list of document ids or texts")
    return value


# ------------------------------------------------------------------------------ batches
@dataclass
class Batch:
    queries: list[str]
    docs: list[str]                      # len(queries) * group texts, positive first per group
    group: int
    source_of_query: list[int]
    teacher: dict[str, np.ndarray]       # teacher -> [Q, group] scores (only teachers covering the whole batch)
    doc_keys: list[str] = field(default_factory=list)
    positives: list[set[str]] = field(default_factory=list)

    def false_negatives(self) -> np.ndarray:
        """Boolean ``[Q, Q * group]``: documents of other groups that are judged positives of the query
        (or the very same document as its positive); in-batch negatives must not count them."""
        q = len(self.queries)
        mask = np.zeros((q, len(self.doc_keys)), dtype=bool)
        for i in range(q):
            own = self.doc_keys[i * self.group]
            for j, key in enumerate(self.doc_keys):
                if j // self.group != i and (key in self.positives[i] or key == own):
                    mask[i, j] = True
        return mask


class Batcher:
    """Deterministic batches: ``batch(step)`` depends only on the seed and ``step``."""

    def __init__(self, sources: list[Source], batch_size: int, n_negatives: int, seed: int = 0):
        if not sources:
            raise ValueError("no training sources")
        self.sources, self.batch_size, self.n_negatives, self.seed = sources, batch_size, n_negatives, seed
        w = np.asarray([s.weight * len(s.examples) for s in sources], dtype=np.float64)
        self.p = w / w.sum()

    @property
    def group(self) -> int:
        return 1 + self.n_negatives

    def batch(self, step: int) -> Batch:
        rng = random.Random(f"{self.seed}-{step}")
        queries, docs, src_of, per_teacher, keys, positives = [], [], [], [], [], []
        for _ in range(self.batch_size):
            si = rng.choices(range(len(self.sources)), weights=self.p)[0]
            src = self.sources[si]
            ex = src.examples[rng.randrange(len(src.examples))]
            pos = rng.choice(ex.positives)
            pool = ex.negatives
            if len(pool) >= self.n_negatives:
                negs = rng.sample(pool, self.n_negatives)
            else:  # too few mined negatives: fill with random corpus documents (not positives)
                negs = list(pool)
                corpus_keys = list(src.docs)
                while len(negs) < self.n_negatives:
                    d = corpus_keys[rng.randrange(len(corpus_keys))]
                    if d not in ex.positives:
                        negs.append(d)
            group = [pos] + negs
            queries.append(ex.query)
            docs.extend(src.docs[d] for d in group)
            keys.extend(f"{si}:{d}" for d in group)
            positives.append({f"{si}:{d}" for d in ex.positives})
            src_of.append(si)
            per_teacher.append({t: [table.get(d) for d in group] for t, table in ex.scores.items()})
        names = set(per_teacher[0]) if per_teacher else set()
        for t in per_teacher[1:]:
            names &= set(t)
        teacher = {}
        for name in sorted(names):
            rows = [t[name] for t in per_teacher]
            if all(v is not None for r in rows for v in r):
                teacher[name] = np.asarray(rows, dtype=np.float32)
        return Batch(queries, docs, self.group, src_of, teacher, keys, positives)
