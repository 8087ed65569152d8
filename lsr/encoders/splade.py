"""SPLADE and inference-free sparse encoders over a masked language model.

SPLADE (Formal et al., SIGIR 2021; "SPLADE v2", 2021): the MLM head scores every vocabulary term
at every token position; a text's weight for term ``j`` is

    w_j = max_i log(1 + ReLU(logit_ij))          (max pooling, the default; ``pooling="sum"`` sums)

over its non-padding tokens ``i``. Because ``log(1 + ReLU(.))`` is monotone, max pooling is done
on the raw logits and the activation applied once after, and the vocabulary projection (90 % of
the cost of a small model) is computed only for non-padding tokens, a bounded number of rows at a
time. ``activation="log_log"`` is the l0-approximating ``log(1 + log(1 + ReLU(x)))`` of Shen et
al. (2025).

Inference-free encoders (OpenSearch's neural sparse "doc" models; Geng et al., 2024) encode
documents the same way, but queries without a model: the query's tokens, each weighted by a
per-token table — IDF computed on the indexed corpus, an ``idf.json`` as OpenSearch ships it,
or weights learned in training.

Example:
    >>> from lsr import load_encoder
    >>> enc = load_encoder("splade-tiny")                                     # doctest: +SKIP
    >>> enc.decode(enc.encode_queries(["what causes insulin resistance"]), top=3)  # doctest: +SKIP
    [('resistance', 2.25), ('insulin', 2.03), ('causes', 1.91)]
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from index import Vocabulary
from index.sparse import as_csr

from . import models
from .base import EncoderFormatError, SparseEncoder, config_of
from .projection import ACTIVATIONS, activate, model_device, pooled_weights, prune_top_k, resolve_device

logger = logging.getLogger(__name__)

POOLINGS = ("max", "sum")
DTYPES = ("float32", "bfloat16", "int8")
#: rows of vocabulary logits computed at once (rows x vocabulary x 4 bytes ~ 250 MB for BERT)
LOGIT_ROWS = 2048


@contextlib.contextmanager
def torch_threads(n: int | None):
    import torch

    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SpladeEncoder(SparseEncoder):
    """SPLADE: learned term weights and expansion from an MLM head, for documents and queries.

    Args:
        model: a model directory, packaged name (``splade-tiny``, ``all-MiniLM-L6-v2``) or hub name;
            or an already loaded ``PreTrainedModel`` (then ``tokenizer`` is required).
        tokenizer: a loaded tokenizer (default: the model's).
        query_model: a separate query encoder (same kinds as ``model``); default: shared.
        pooling: ``"max"`` (SPLADE v2 and later) or ``"sum"`` (SPLADE v1).
        activation: ``"log1p_relu"`` or ``"log_log"`` (l0-approximating).
        query_max_length, doc_max_length: token limits (truncation).
        top_k: keep only the ``top_k`` heaviest terms per vector (0: all).
        threshold: drop weights below this (0: none).
        batch_size: texts per forward pass (sorted by length to cut padding).
        dtype: ``"float32"``, ``"bfloat16"`` (CPU autocast: ~1.7x faster, ~99 % top-term agreement) or
            ``"int8"`` (PyTorch dynamic quantization of every linear layer, the vocabulary projection
            included: int8 weights, activations quantized per batch; encoding uses a quantized copy,
            the saved weights stay float32; ``torch.ao`` quantization, deprecated upstream for torchao).
            See ``benchmarks/encode.py`` for speed and agreement.
        threads: torch threads while encoding (default: torch's setting).
    """

    kind = "splade"

    def __init__(self, model="splade-tiny", tokenizer=None, *, query_model=None, pooling: str = "max",
                 activation: str = "log1p_relu", query_max_length: int = 64, doc_max_length: int = 256,
                 top_k: int = 0, threshold: float = 0.0, batch_size: int = 32, dtype: str = "float32",
                 threads: int | None = None):
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        for name, v in (("query_max_length", query_max_length), ("doc_max_length", doc_max_length),
                        ("batch_size", batch_size)):
            if int(v) < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if int(top_k) < 0 or float(threshold) < 0:
            raise ValueError("top_k and threshold must be >= 0")
        self.model_name = model if isinstance(model, str) else getattr(model, "name_or_path", None) or "<in memory>"
        self.model, self.tokenizer = self._load(model, tokenizer)
        self.query_model_name = None
        self.query_model = None
        if query_model is not None:
            self.query_model_name = query_model if isinstance(query_model, str) else "<in memory>"
            self.query_model, _ = self._load(query_model, self.tokenizer)
        self.pooling, self.activation, self.dtype = pooling, activation, dtype
        self.query_max_length, self.doc_max_length = int(query_max_length), int(doc_max_length)
        self.top_k, self.threshold = int(top_k), float(threshold)
        self.batch_size = int(batch_size)
        self.threads = threads
        self._int8: dict[int, object] = {}  # id(model) -> its dynamically quantized copy
        self._vocab: Vocabulary | None = None
        self._terms: list[str] | None = None
        size = self.model.get_output_embeddings().weight.shape[0]
        if len(self.tokenizer) > size:
            raise EncoderFormatError(
                f"the tokenizer has {len(self.tokenizer)} tokens but the model's vocabulary has {size}: "
                "they do not belong together"
            )

    @staticmethod
    def _load(model, tokenizer):
        if isinstance(model, (str, Path)):
            location = models.resolve(str(model))
            return models.load_mlm(location), tokenizer or models.load_tokenizer(location)
        if tokenizer is None:
            raise ValueError("pass the tokenizer together with an already loaded model")
        model.eval()
        return model, tokenizer

    # ------------------------------------------------------------ identity
    def config(self) -> dict:
        return {"pooling": self.pooling, "activation": self.activation, "query_max_length": self.query_max_length,
                "doc_max_length": self.doc_max_length, "top_k": self.top_k, "threshold": self.threshold,
                "batch_size": self.batch_size, "dtype": self.dtype}

    def describe(self) -> dict:
        d = super().describe()
        d["model"] = str(self.model_name)
        if self.query_model_name:
            d["query_model"] = str(self.query_model_name)
        return d

    @property
    def dim(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])

    @property
    def vocabulary(self) -> Vocabulary:
        if self._vocab is None:
            self._vocab = Vocabulary(models.vocabulary_id(self.tokenizer), self.dim)
        return self._vocab

    def terms(self) -> Sequence[str]:
        if self._terms is None:
            names = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
            self._terms = list(names) + [f"[unused-{i}]" for i in range(len(names), self.dim)]
        return self._terms

    # ----------------------------------------------------------- encoding
    def _activate(self, x):
        return activate(x, self.activation)

    def to(self, device) -> SpladeEncoder:
        """Run the model(s) on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``: a GPU when torch sees
        one); vectors come back as SciPy CSR on the CPU either way. Returns the encoder.

        Example:
            >>> enc = load_encoder("splade-tiny").to("auto")                 # doctest: +SKIP
        """
        if self.dtype == "int8":  # dynamically quantized models run on the CPU only: "auto" is the CPU for them
            if str(device) not in ("cpu", "auto"):
                raise ValueError("int8 (dynamically quantized) models run on the CPU only; use dtype float32 or "
                                 "bfloat16")
            device = "cpu"
        target = resolve_device(device)
        for model in (self.model, self.query_model):
            if model is not None:
                model.to(target)
        return self

    def _runtime_model(self, model):
        """The model that encodes: ``model`` itself, or its int8 copy when ``dtype="int8"``."""
        if self.dtype != "int8":
            return model
        if id(model) not in self._int8:
            import copy
            import warnings

            import torch

            with warnings.catch_warnings():  # torch.ao is deprecated upstream in favour of torchao, still in 2.13
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", UserWarning)
                from torch.ao.quantization import quantize_dynamic

                quantized = quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
            self._int8[id(model)] = quantized
        return self._int8[id(model)]

    def _pool_batch(self, model, texts: list[str], max_length: int):
        """Pooled term weights, dense ``[len(texts), dim]`` float32 tensor.

        Max pooling runs :func:`~lsr.encoders.projection.pooled_weights`, the function the trainer
        trains; sum pooling and int8 (whose quantized head has no plain weight matrix) project all
        rows through the head, a bounded number at a time.
        """
        if self.pooling == "max" and self.dtype != "int8":
            return pooled_weights(model, self.tokenizer, texts, max_length, activation=self.activation,
                                  low_precision=self.dtype == "bfloat16")
        import torch

        model = self._runtime_model(model)
        device = model_device(model)
        tok = self.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        tok = {name: value.to(device) for name, value in tok.items()}
        mask = tok["attention_mask"].bool()
        lengths = mask.sum(dim=1).tolist()
        head = models.mlm_head(model)
        out = torch.zeros((len(texts), self.dim), dtype=torch.float32, device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.dtype == "bfloat16"):
            rows = models.base_model(model)(**tok).last_hidden_state[mask]  # only real tokens are projected
            self._pool_rows(head, rows, lengths, out)
        return out

    def _pool_rows(self, head, rows, lengths: list[int], out) -> None:
        start = seq = 0
        n_texts = len(lengths)
        while seq < n_texts:  # groups of whole sequences, at most LOGIT_ROWS rows of logits
            end_seq, n_rows = seq, 0
            while end_seq < n_texts and (n_rows == 0 or n_rows + lengths[end_seq] <= LOGIT_ROWS):
                n_rows += lengths[end_seq]
                end_seq += 1
            logits = head(rows[start:start + n_rows]).float()
            offset = 0
            for b in range(seq, end_seq):
                part = logits[offset:offset + lengths[b]]
                if part.shape[0]:
                    out[b] = self._activate(part.max(dim=0).values) if self.pooling == "max" \
                        else self._activate(part).sum(dim=0)
                offset += lengths[b]
            start += n_rows
            seq = end_seq

    def _to_csr(self, pooled) -> sp.csr_array:
        import torch

        pooled = prune_top_k(pooled, self.top_k)
        if self.threshold > 0:
            pooled = torch.where(pooled >= self.threshold, pooled, torch.zeros_like(pooled))
        dense = pooled.cpu().numpy()
        return sp.csr_array(dense)

    def _encode(self, model, texts: Iterable[str], max_length: int, show_progress: bool, desc: str) -> sp.csr_array:
        import torch

        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text {i} is a {type(t).__name__}, not a string")
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # similar lengths share a batch
        parts: list[sp.csr_array] = []
        with torch.inference_mode(), torch_threads(self.threads):
            for start in tqdm(range(0, len(texts), self.batch_size), desc=desc, unit="batch",
                              disable=not show_progress, mininterval=1.0):
                batch = [texts[i] for i in order[start:start + self.batch_size]]
                parts.append(self._to_csr(self._pool_batch(model, batch, max_length)))
        if not parts:
            return as_csr(sp.csr_array((0, self.dim), dtype=np.float32), name=desc)
        stacked = sp.csr_array(sp.vstack(parts, format="csr"))
        inverse = np.empty(len(order), dtype=np.int64)
        inverse[np.asarray(order)] = np.arange(len(order))
        return as_csr(stacked[inverse], name=desc)

    def encode_documents(self, texts: Iterable[str], *, show_progress: bool = False) -> sp.csr_array:
        """Document vectors (``doc_max_length`` tokens, the document model)."""
        return self._encode(self.model, texts, self.doc_max_length, show_progress, "documents")

    def encode_queries(self, texts: Iterable[str]) -> sp.csr_array:
        """Query vectors (``query_max_length`` tokens, the query model if separate)."""
        return self._encode(self.query_model or self.model, texts, self.query_max_length, False, "queries")

    # ----------------------------------------------------------- save/load
    def save_files(self, directory: Path) -> dict:
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        extra = {}
        if self.query_model is not None:
            self.query_model.save_pretrained(directory / "query_model")
            extra["query_model"] = "query_model"
        return extra

    @classmethod
    def from_directory(cls, directory: Path, meta: dict):
        cfg = config_of(directory, meta)
        if not (directory / "config.json").exists():
            raise EncoderFormatError(f"{directory / 'config.json'} is missing; the model directory is incomplete")
        query_model = str(directory / meta["query_model"]) if meta.get("query_model") else None
        try:
            enc = cls(str(directory), query_model=query_model, **cfg)
        except (TypeError, ValueError) as e:
            raise EncoderFormatError(f"{directory}/lsr.json: {e}") from None
        _check_vocabulary(enc, meta, directory)
        return enc


def _check_vocabulary(enc, meta: dict, directory: Path) -> None:
    expected = (meta.get("vocabulary") or {}).get("id")
    if expected and expected != enc.vocabulary.id:
        raise EncoderFormatError(
            f"{directory}: the tokenizer's vocabulary ({enc.vocabulary.id}) is not the one recorded in lsr.json "
            f"({expected}); the tokenizer files were replaced or mixed up"
        )


class InferenceFreeEncoder(SpladeEncoder):
    """Documents by a SPLADE model, queries by tokenization and a per-token weight table (no model).

    Args:
        model: the document model (as for :class:`SpladeEncoder`).
        query_weights: ``"idf"`` (computed by :meth:`fit` on the indexed corpus, BM25's
            ``ln(1 + (N - df + 0.5) / (df + 0.5))`` over the tokenizer's tokens), a path to an
            ``idf.json`` (``{token: weight}``, as OpenSearch's models ship it), or an array of
            ``dim`` weights (e.g. learned in training).
        corpus_idf: with IDF query weights, recompute them on every corpus this encoder indexes (what an
            IDF-aware model is trained for: each training corpus scored its queries with its own IDF); the
            table the encoder carries is used only until then (e.g. to encode queries without an index).
        other arguments: as :class:`SpladeEncoder` (query_model is not used).

    A query's vector: weight ``w(t)`` for each distinct token ``t`` of the query (special tokens
    excluded). Encoding a query costs a tokenizer call and a table lookup.
    """

    kind = "inference-free"

    def __init__(self, model="splade-tiny", tokenizer=None, *, query_weights="idf", corpus_idf: bool = False,
                 **kwargs):
        kwargs.pop("query_model", None)
        super().__init__(model, tokenizer, **kwargs)
        self.corpus_idf = bool(corpus_idf)
        self._fitted = False  # IDF computed on a corpus by this object (fit / fit_encode_documents)
        self._weights: np.ndarray | None = None
        self.query_weights_source = "idf"
        if isinstance(query_weights, np.ndarray):
            self.set_query_weights(query_weights, source="array")
        elif isinstance(query_weights, (str, Path)) and str(query_weights) != "idf":
            self.load_idf_json(Path(query_weights))
        elif query_weights != "idf":
            raise ValueError("query_weights must be 'idf', a path to an idf.json, or an array of weights")

    def config(self) -> dict:
        cfg = super().config()
        if self.corpus_idf:
            cfg["corpus_idf"] = True
        return cfg

    @property
    def needs_fit(self) -> bool:
        return self._weights is None or (self.corpus_idf and not self._fitted)

    def set_query_weights(self, weights: np.ndarray, source: str = "array") -> None:
        w = np.asarray(weights, dtype=np.float32)
        if w.shape != (self.dim,):
            raise ValueError(f"query weights must have shape ({self.dim},), got {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError("query weights must be finite and >= 0")
        self._weights = w
        self.query_weights_source = source

    def use_corpus_idf(self) -> InferenceFreeEncoder:
        """Drop the loaded table: the next index build computes IDF on the corpus it indexes."""
        self._weights = None
        self.query_weights_source = "idf"
        return self

    @property
    def query_weights(self) -> np.ndarray:
        if self._weights is None:
            raise RuntimeError("no query weights: call fit(corpus_texts) for IDF, or give an idf.json")
        return self._weights

    def load_idf_json(self, path: Path) -> None:
        try:
            table = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such idf.json") from None
        except json.JSONDecodeError as e:
            raise EncoderFormatError(f"{path} is not valid JSON ({e})") from None
        if not isinstance(table, dict):
            raise EncoderFormatError(f"{path} must map tokens to weights")
        vocab = self.tokenizer.get_vocab()
        w = np.zeros(self.dim, dtype=np.float32)
        unknown = 0
        for token, value in table.items():
            i = vocab.get(token)
            if i is None:
                unknown += 1
                continue
            w[i] = float(value)
        if unknown:
            logger.warning("%s: %d tokens are not in the tokenizer's vocabulary and were ignored", path, unknown)
        self.set_query_weights(w, source=str(path))

    def _token_ids(self, texts: list[str], max_length: int | None):
        enc = self.tokenizer(texts, add_special_tokens=False, truncation=max_length is not None,
                             max_length=max_length, return_attention_mask=False)
        return enc["input_ids"]

    def fit(self, texts: Iterable[str], *, show_progress: bool = False) -> InferenceFreeEncoder:
        """Compute IDF query weights from the corpus's tokens (document frequency per token)."""
        df = np.zeros(self.dim, dtype=np.int64)
        n = 0
        batch: list[str] = []
        for text in tqdm(texts, desc="idf", unit="doc", disable=not show_progress, mininterval=1.0):
            batch.append(text)
            if len(batch) == 1024:
                n += self._count_df(batch, df)
                batch = []
        if batch:
            n += self._count_df(batch, df)
        self._set_idf(df, n)
        return self

    def _count_df(self, texts: list[str], df: np.ndarray) -> int:
        for ids in self._token_ids(texts, None):
            if ids:
                df[np.unique(np.asarray(ids, dtype=np.int64))] += 1
        return len(texts)

    def _set_idf(self, df: np.ndarray, n: int) -> None:
        if n == 0:
            raise ValueError("cannot compute IDF on an empty corpus")
        idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        special = [i for i in self.tokenizer.all_special_ids if i is not None and 0 <= i < self.dim]
        idf[special] = 0.0
        self.set_query_weights(idf, source="idf")
        self._fitted = True

    def fit_encode_documents(self, texts, *, show_progress: bool = False) -> sp.csr_array:
        """One pass: document vectors, with token document frequencies counted along the way."""
        texts = list(texts)
        df = np.zeros(self.dim, dtype=np.int64)
        for start in range(0, len(texts), 1024):
            self._count_df(texts[start:start + 1024], df)
        self._set_idf(df, len(texts))
        return self.encode_documents(texts, show_progress=show_progress)

    def _query_token_ids(self, texts: list[str]) -> list:
        """Token ids of queries, at most ``query_max_length`` each, no special tokens.

        The Rust tokenizer is called directly when there is one (a third of the cost of the
        transformers wrapper for one short query); ids past the limit are dropped, as truncation
        would. Padding the backend may have kept from an earlier call only adds special tokens,
        whose weight is 0.
        """
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None:
            return self._token_ids(texts, self.query_max_length)
        fast = getattr(backend, "encode_batch_fast", None)  # tokenizers >= 0.20: no character offsets computed
        if fast is not None:
            return [e.ids[:self.query_max_length] for e in fast(texts, add_special_tokens=False)]
        if len(texts) == 1:  # one query: skip the batch machinery
            return [backend.encode(texts[0], add_special_tokens=False).ids[:self.query_max_length]]
        return [e.ids[:self.query_max_length] for e in backend.encode_batch(texts, add_special_tokens=False)]

    def encode_queries(self, texts: Iterable[str]) -> sp.csr_array:
        """Query vectors without a model: distinct query tokens, weighted by the table."""
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"query {i} is a {type(t).__name__}, not a string")
        w = self.query_weights
        dim = w.shape[0]
        ids_per_query = self._query_token_ids(texts) if texts else []
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        cols: list[np.ndarray] = []
        for i, ids in enumerate(ids_per_query):
            u = np.unique(np.asarray(ids, dtype=np.int32))
            u = u[w[u] > 0] if u.size else u
            cols.append(u)
            indptr[i + 1] = indptr[i] + u.size
        indices = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int32)
        # already in the sparse contract (sorted unique ids, float32 weights > 0): no as_csr pass
        m = sp.csr_array((w[indices], indices, indptr), shape=(len(texts), dim))
        m.indices = indices  # scipy upcasts to indptr's int64; the contract keeps int32 term ids
        return m

    def save_files(self, directory: Path) -> dict:
        extra = super().save_files(directory)
        names = self.terms()
        w = self.query_weights
        table = {names[i]: float(w[i]) for i in np.flatnonzero(w)}
        (directory / "idf.json").write_text(json.dumps(table, ensure_ascii=False) + "\n", encoding="utf-8")
        extra["query_weights"] = {"file": "idf.json", "source": self.query_weights_source}
        return extra

    @classmethod
    def from_directory(cls, directory: Path, meta: dict):
        cfg = config_of(directory, meta)
        idf = directory / "idf.json"
        if not idf.exists():
            raise EncoderFormatError(f"{idf} is missing; an inference-free encoder needs its query weights")
        try:
            enc = cls(str(directory), query_weights=idf, **cfg)
        except (TypeError, ValueError) as e:
            raise EncoderFormatError(f"{directory}/lsr.json: {e}") from None
        _check_vocabulary(enc, meta, directory)
        recorded = (meta.get("query_weights") or {}).get("source")
        if isinstance(recorded, str):  # where the table came from: "idf" (a corpus), "learned", "binary", a file
            enc.query_weights_source = recorded
        return enc


def top_term_agreement(a: sp.csr_array, b: sp.csr_array, top: int = 64) -> float:
    """Mean overlap of the ``top`` heaviest terms of two encodings of the same texts (e.g. fp32 vs bf16)."""
    scores = []
    for i in range(a.shape[0]):
        ra, rb = a[[i]], b[[i]]
        ta = set(ra.indices[np.argsort(-ra.data)[:top]].tolist())
        tb = set(rb.indices[np.argsort(-rb.data)[:top]].tolist())
        if ta or tb:
            scores.append(len(ta & tb) / max(len(ta), len(tb)))
    return float(np.mean(scores)) if scores else 1.0
