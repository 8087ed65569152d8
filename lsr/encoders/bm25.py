"""BM25 as a sparse encoder: the same contract, index and evaluation as the neural encoders.

Documents get BM25 term weights, queries get their term counts, so that the inner product of a
query and a document vector is the document's BM25 score for the query (Robertson et al.,
"Okapi at TREC-3", 1994), computed as Lucene 8+ and Anserini do:

    w(t, d) = idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))
    idf(t)  = ln(1 + (N - df + 0.5) / (df + 0.5))

``N`` counts the non-empty documents, ``dl`` is the number of analysed terms of the document and
``avgdl`` their mean. With ``lucene_norms=True`` (default) ``dl`` is rounded as Lucene stores it
(one byte per document: lengths up to 24 exact, then four significant bits), which reproduces
Anserini's scores. Lucene 8+ drops BM25's constant ``(k1 + 1)`` factor; so does this encoder,
which changes no ranking. The defaults ``k1=0.9, b=0.4`` are Anserini's.

Example:
    >>> from lsr.encoders.bm25 import BM25Encoder
    >>> enc = BM25Encoder()
    >>> D = enc.fit_encode_documents(["the cat sat", "a dog and a cat", "dogs bark"])
    >>> Q = enc.encode_queries(["cat"])
    >>> (Q @ D.T).toarray().round(3)
    array([[0.492, 0.432, 0.   ]], dtype=float32)
"""

from __future__ import annotations

import hashlib
import logging
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from index import Vocabulary
from index.sparse import as_csr

from ..analysis import EnglishAnalyzer
from .base import EncoderFormatError, SparseEncoder, config_of

logger = logging.getLogger(__name__)

VOCAB_FILE = "vocab.txt"
DF_FILE = "df.npy"


# ---- Lucene's one-byte length norms (SmallFloat.intToByte4 / byte4ToInt), vectorised ----
_FREE = 24  # lengths below this are stored exactly
_POW2 = np.int64(1) << np.arange(63, dtype=np.int64)


def _int4_encode(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int64)
    # bit length: how many powers of two are <= x (0 for x == 0)
    bits = np.searchsorted(_POW2, x, side="right")
    shift = np.maximum(bits - 4, 0)
    enc = ((x >> shift) & 0x07) | ((shift + 1) << 3)
    return np.where(bits < 4, x, enc)


def _int4_decode(e: np.ndarray) -> np.ndarray:
    e = e.astype(np.int64)
    low = e & 0x07
    shift = (e >> 3) - 1
    return np.where(shift < 0, low, (low | 0x08) << np.maximum(shift, 0))


def lucene_length(dl: np.ndarray) -> np.ndarray:
    """The document length Lucene's BM25 sees after its lossy one-byte norm encoding."""
    dl = np.asarray(dl, dtype=np.int64)
    big = dl >= _FREE
    out = dl.copy()
    out[big] = _FREE + _int4_decode(_int4_encode(dl[big] - _FREE))
    return out


class BM25Encoder(SparseEncoder):
    """BM25 document weights and query term counts over a vocabulary learned by :meth:`fit`.

    Args:
        k1: term-frequency saturation (default 0.9, Anserini's).
        b: length normalisation (default 0.4, Anserini's).
        stemmer: ``"porter"`` (default), ``"english"`` (Snowball) or ``"none"``.
        stopwords: ``"lucene"`` (default), ``"none"`` or a list of words.
        lucene_norms: round document lengths as Lucene does (default true).
    """

    kind = "bm25"

    def __init__(self, k1: float = 0.9, b: float = 0.4, stemmer: str = "porter",
                 stopwords: str | Sequence[str] = "lucene", lucene_norms: bool = True):
        k1, b = float(k1), float(b)
        if not k1 >= 0:
            raise ValueError(f"k1 must be >= 0, got {k1}")
        if not 0 <= b <= 1:
            raise ValueError(f"b must be in [0, 1], got {b}")
        self.k1, self.b, self.lucene_norms = k1, b, bool(lucene_norms)
        self.analyzer = EnglishAnalyzer(stemmer=stemmer, stopwords=stopwords)
        self._terms: list[str] = []
        self._vocabulary_cache: Vocabulary | None = None  # reset wherever _terms is replaced
        self._term_ids: dict[str, int] = {}
        self._df: np.ndarray | None = None
        self.n_docs = 0
        self.avgdl = 0.0

    # ------------------------------------------------------------ config
    def config(self) -> dict:
        a = self.analyzer
        return {"k1": self.k1, "b": self.b, "stemmer": a.stemmer_name, "stopwords": a.stopwords_name,
                "lucene_norms": self.lucene_norms}

    @property
    def needs_fit(self) -> bool:
        return self._df is None

    @property
    def vocabulary(self) -> Vocabulary:
        self._require_fit()
        if self._vocabulary_cache is None:  # hashing every term costs ms: once per fitted vocabulary
            h = hashlib.sha1("\n".join(self._terms).encode("utf-8")).hexdigest()[:12]
            self._vocabulary_cache = Vocabulary(f"bm25/{self.analyzer.stemmer_name}/{h}", len(self._terms))
        return self._vocabulary_cache

    def terms(self) -> Sequence[str]:
        return self._terms

    @property
    def doc_frequencies(self) -> np.ndarray:
        self._require_fit()
        return self._df

    def idf(self) -> np.ndarray:
        """Lucene's BM25 idf of every term (float64 ``[dim]``)."""
        df = self.doc_frequencies.astype(np.float64)
        return np.log1p((self.n_docs - df + 0.5) / (df + 0.5))

    def _require_fit(self) -> None:
        if self._df is None:
            raise RuntimeError("BM25Encoder is not fitted: call fit(corpus_texts) or load a saved encoder first")

    # ----------------------------------------------------------- analysis
    def _count(self, texts: Iterable[str], grow: bool, show_progress: bool, desc: str):
        """Analyse texts into a term-frequency CSR (float32 counts), document lengths, dropped tokens.

        Memory grows with the number of distinct (document, term) pairs, not with the tokens:
        each document's terms are counted as it is read, into compact typed arrays.
        """
        ids = self._term_ids
        terms = self._terms
        analyze = self.analyzer
        indptr = array("q", [0])
        indices = array("i")
        counts = array("f")
        lengths = array("q")
        try:
            total = len(texts)
        except TypeError:
            total = None
        dropped = 0
        for text in tqdm(texts, total=total, desc=desc, unit="doc", disable=not show_progress, mininterval=1.0):
            if not isinstance(text, str):
                raise TypeError(f"expected a string, got {type(text).__name__}")
            toks = analyze(text)
            lengths.append(len(toks))
            if grow:
                for t in toks:
                    if t not in ids:
                        ids[t] = len(terms)
                        terms.append(t)
                tf = Counter(ids[t] for t in toks)
            else:
                tf = Counter(ids[t] for t in toks if t in ids)
                dropped += len(toks) - sum(tf.values())
            for term_id in sorted(tf):
                indices.append(term_id)
                counts.append(tf[term_id])
            indptr.append(len(indices))
        tf = sp.csr_array(
            (np.frombuffer(counts, dtype=np.float32), np.frombuffer(indices, dtype=np.int32),
             np.frombuffer(indptr, dtype=np.int64)),
            shape=(len(lengths), len(terms)),
        )
        lengths = np.frombuffer(lengths, dtype=np.int64)
        return tf, lengths, dropped

    def _set_statistics(self, tf: sp.csr_array, lengths: np.ndarray) -> None:
        self._df = np.bincount(tf.indices, minlength=tf.shape[1]).astype(np.int64)
        nonempty = lengths > 0
        self.n_docs = int(nonempty.sum())
        self.avgdl = float(lengths.sum() / self.n_docs) if self.n_docs else 0.0

    def fit(self, texts: Iterable[str], *, show_progress: bool = False) -> BM25Encoder:
        """Learn the vocabulary, document frequencies and mean length from a corpus."""
        self._terms, self._term_ids = [], {}
        self._vocabulary_cache = None
        tf, lengths, _ = self._count(texts, grow=True, show_progress=show_progress, desc="bm25 fit")
        self._set_statistics(tf, lengths)
        return self

    def fit_encode_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> sp.csr_array:
        """Fit and encode in one analysis pass over ``texts``."""
        self._terms, self._term_ids = [], {}
        self._vocabulary_cache = None
        tf, lengths, _ = self._count(texts, grow=True, show_progress=show_progress, desc="bm25 index")
        self._set_statistics(tf, lengths)
        return self._weigh(tf, lengths)

    # ---------------------------------------------------------- encoding
    def _weigh(self, tf: sp.csr_array, lengths: np.ndarray) -> sp.csr_array:
        if self.n_docs == 0:
            raise ValueError("BM25 was fitted on a corpus with no terms; check the corpus texts")
        dl = lucene_length(lengths) if self.lucene_norms else lengths
        norm = self.k1 * (1.0 - self.b + self.b * dl.astype(np.float64) / self.avgdl)
        row_norm = np.repeat(norm, np.diff(tf.indptr))
        f = tf.data.astype(np.float64)
        w = self.idf()[tf.indices] * f / (f + row_norm)
        out = sp.csr_array((w.astype(np.float32), tf.indices, tf.indptr), shape=tf.shape)
        return as_csr(out, name="bm25 documents")

    def encode_documents(self, texts: Iterable[str], *, show_progress: bool = False) -> sp.csr_array:
        """BM25 weights of documents under the fitted statistics (terms unseen by fit are dropped)."""
        self._require_fit()
        tf, lengths, dropped = self._count(texts, grow=False, show_progress=show_progress, desc="bm25 encode")
        if dropped:
            logger.info("%d document tokens are outside the fitted vocabulary and were dropped", dropped)
        return self._weigh(tf, lengths)

    def encode_queries(self, texts: Iterable[str]) -> sp.csr_array:
        """Query vectors: the count of each analysed query term (terms unseen by fit are dropped)."""
        self._require_fit()
        tf, _, _ = self._count(texts, grow=False, show_progress=False, desc="bm25 queries")
        return as_csr(tf, name="bm25 queries")

    # ---------------------------------------------------------- save/load
    def save_files(self, directory: Path) -> dict:
        self._require_fit()
        (directory / VOCAB_FILE).write_text("".join(t + "\n" for t in self._terms), encoding="utf-8")
        np.save(directory / DF_FILE, self._df, allow_pickle=False)
        return {"statistics": {"n_docs": self.n_docs, "avgdl": self.avgdl}}

    @classmethod
    def from_directory(cls, directory: Path, meta: dict) -> BM25Encoder:
        cfg = config_of(directory, meta)
        try:
            enc = cls(**cfg)
        except (TypeError, ValueError) as e:
            raise EncoderFormatError(f"{directory}/lsr.json: invalid BM25 config ({e}); re-save the encoder") from None
        vpath, dpath = directory / VOCAB_FILE, directory / DF_FILE
        for p in (vpath, dpath):
            if not p.exists():
                raise EncoderFormatError(f"{p} is missing; the BM25 encoder directory is incomplete, re-save it")
        terms = vpath.read_text(encoding="utf-8").split("\n")
        if terms and terms[-1] == "":
            terms.pop()
        try:
            df = np.load(dpath, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise EncoderFormatError(f"{dpath} cannot be read ({e}); re-save the encoder") from None
        if df.shape != (len(terms),):
            raise EncoderFormatError(
                f"{dpath} has {df.shape[0] if df.ndim else 0} entries but {vpath} has {len(terms)} terms; re-save the encoder"
            )
        stats = meta.get("statistics") or {}
        enc._terms = terms
        enc._term_ids = {t: i for i, t in enumerate(terms)}
        enc._df = df.astype(np.int64)
        enc.n_docs = int(stats.get("n_docs", 0))
        enc.avgdl = float(stats.get("avgdl", 0.0))
        expected = meta.get("vocabulary")
        if expected and expected.get("id") != enc.vocabulary.id:
            raise EncoderFormatError(
                f"{vpath} does not match the vocabulary recorded in lsr.json ({expected.get('id')}); re-save the encoder"
            )
        return enc

    def __repr__(self) -> str:
        fitted = f"{len(self._terms)} terms, {self.n_docs} docs" if self._df is not None else "not fitted"
        return f"BM25Encoder(k1={self.k1}, b={self.b}, {self.analyzer.stemmer_name}, {fitted})"
