"""The model under training: a masked LM with the forward passes of the three encoder families.

:class:`TrainableSparse` wraps a Hugging Face masked LM (loaded like lsr's encoders: a directory, a
packaged name such as ``splade-tiny`` / ``all-MiniLM-L6-v2``, or a hub name) and computes, with
gradients:

* ``"splade"``: documents and queries by the model (max-pooled ``log(1 + ReLU)``);
* ``"inference-free"``: documents by the model; queries by their tokens weighted by a table (IDF of
  the training corpus, ones for the plain variant, or a learned table initialised from IDF);
* ``"slim"``: per-token top-k sparse vectors for both sides, scored by late interaction.

The math (activation, vocabulary projection + pooling, per-token top-k) is not here: it is
:mod:`lsr.encoders.projection`, which the encoders run at serving time. ``to_encoder()`` returns the
matching :mod:`lsr.encoders` object sharing the same weights, so that evaluation during training and
the saved model go through exactly the code users run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from lsr.encoders import models
from lsr.encoders.projection import TokenVectors, activate, pooled_weights, token_weights

__all__ = ["KINDS", "QUERY_WEIGHTS", "TokenVectors", "TrainableSparse", "activate", "idf_table"]

KINDS = ("splade", "inference-free", "slim")
QUERY_WEIGHTS = ("idf", "binary", "learned")


class TrainableSparse(torch.nn.Module):
    """A sparse encoder's trainable forward passes.

    Args:
        kind: ``"splade"``, ``"inference-free"`` or ``"slim"``.
        backbone: model directory, packaged name or hub name (an MLM head is added if missing).
        query_weights: inference-free only: ``"idf"`` (fixed IDF of the training corpus; IDF-aware
            training, Geng et al. 2024), ``"binary"`` (every query token weighs 1 while training,
            the plain variant) or ``"learned"`` (a per-token table, initialised from IDF, trained).
        activation: ``"log1p_relu"`` or ``"log_log"``.
        query_max_length, doc_max_length: token limits.
        token_top_k: SLIM terms per token.
        bf16: bfloat16 autocast for the transformer and the vocabulary projection.
    """

    def __init__(self, kind: str = "inference-free", backbone: str = "splade-tiny", *, query_weights: str = "idf",
                 activation: str = "log1p_relu", query_max_length: int = 64, doc_max_length: int = 256,
                 token_top_k: int = 20, bf16: bool = True):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"model kind must be one of {KINDS}, got {kind!r}")
        if query_weights not in QUERY_WEIGHTS:
            raise ValueError(f"query_weights must be one of {QUERY_WEIGHTS}, got {query_weights!r}")
        self.kind, self.backbone_name = kind, backbone
        location = models.resolve(str(backbone))
        self.mlm = models.load_mlm(location)
        self.tokenizer = models.load_tokenizer(location)
        self.mlm.train()
        self.query_weights_mode = query_weights
        self.activation = activation
        self.query_max_length, self.doc_max_length = int(query_max_length), int(doc_max_length)
        self.token_top_k = int(token_top_k)
        self.bf16 = bool(bf16)
        self.dim = int(self.mlm.get_output_embeddings().weight.shape[0])
        # a buffer so that it follows the model to its device; not persistent: checkpoints keep their keys
        self.register_buffer("special", torch.tensor(sorted(i for i in self.tokenizer.all_special_ids
                                                            if i is not None and i < self.dim), dtype=torch.int64),
                             persistent=False)
        # learned query weights: softplus(raw) so that they stay positive; set from IDF by set_idf()
        self.query_raw = torch.nn.Parameter(torch.zeros(self.dim)) if query_weights == "learned" else None

    # -------------------------------------------------------------- forward
    def encode(self, texts: Sequence[str], max_length: int) -> torch.Tensor:
        """Max-pooled activated weights ``[len(texts), |V|]`` (float32, differentiable)."""
        return pooled_weights(self.mlm, self.tokenizer, texts, max_length, activation=self.activation,
                              low_precision=self.bf16)

    def encode_tokens(self, texts: Sequence[str], max_length: int) -> TokenVectors:
        """SLIM per-token top-k activated weights."""
        return token_weights(self.mlm, self.tokenizer, texts, max_length, self.token_top_k,
                             activation=self.activation, low_precision=self.bf16)

    # --------------------------------------------------------------- queries
    def set_idf(self, idf: np.ndarray) -> None:
        """Initialise learned query weights from an IDF table (inverse softplus)."""
        if self.query_raw is None:
            return
        w = torch.as_tensor(np.asarray(idf, dtype=np.float32), device=self.query_raw.device).clamp(min=1e-4)
        with torch.no_grad():
            self.query_raw.copy_(w + torch.log(-torch.expm1(-w)))

    def query_table(self, idf: torch.Tensor | None) -> torch.Tensor:
        """The per-token query weights in use (``idf`` is the training corpus's IDF table)."""
        if self.query_weights_mode == "learned":
            w = torch.nn.functional.softplus(self.query_raw)
        elif self.query_weights_mode == "binary":
            w = torch.ones(self.dim, device=self.special.device)
        else:
            if idf is None:
                raise ValueError("IDF query weights need the training corpus's IDF table")
            w = idf
        return w.index_fill(0, self.special, 0.0)  # a new tensor: the given table is left as it is

    def query_token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        enc = self.tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=self.query_max_length,
                             return_attention_mask=False)
        return enc["input_ids"]

    def inference_free_queries(self, texts: Sequence[str], idf: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """``[len(texts), |V|]`` query vectors: each distinct token weighted by the table of its data set."""
        ids = self.query_token_ids(texts)
        device = self.special.device
        tables: dict[int, torch.Tensor] = {}  # one table per data set, not per query
        rows, cols, vals = [], [], []
        for i, tokens in enumerate(ids):
            if not tokens:
                continue
            key = id(idf[i])
            if key not in tables:
                tables[key] = self.query_table(idf[i])
            u = torch.unique(torch.as_tensor(tokens, dtype=torch.int64)).to(device)
            rows.append(torch.full_like(u, i))
            cols.append(u)
            vals.append(tables[key][u])
        out = torch.zeros(len(ids), self.dim, device=device)
        if rows:
            out = out.index_put((torch.cat(rows), torch.cat(cols)), torch.cat(vals))
        return out

    # ---------------------------------------------------------------- export
    def to_encoder(self, idf: np.ndarray | None = None, **options):
        """The lsr encoder with these weights (shared, not copied), for evaluation and saving."""
        from lsr.encoders.slim import SlimEncoder
        from lsr.encoders.splade import InferenceFreeEncoder, SpladeEncoder

        common = {"activation": self.activation, "query_max_length": self.query_max_length,
                  "doc_max_length": self.doc_max_length, "dtype": "bfloat16" if self.bf16 else "float32", **options}
        if self.kind == "splade":
            return SpladeEncoder(self.mlm, self.tokenizer, **common)
        if self.kind == "slim":
            return SlimEncoder(self.mlm, self.tokenizer, token_top_k=self.token_top_k, **common)
        enc = InferenceFreeEncoder(self.mlm, self.tokenizer, **common)
        if self.query_weights_mode == "learned":
            enc.set_query_weights(self.query_table(None).detach().cpu().numpy(), source="learned")
        elif self.query_weights_mode == "binary":
            enc.set_query_weights(self.query_table(None).detach().cpu().numpy(), source="binary")
        elif idf is not None:
            enc.set_query_weights(np.asarray(idf, dtype=np.float32), source="idf")
        return enc


def idf_table(mlm, tokenizer, texts) -> np.ndarray:
    """The IDF query table lsr's inference-free encoder computes on ``texts`` (see ``InferenceFreeEncoder.fit``)."""
    from lsr.encoders.splade import InferenceFreeEncoder

    return InferenceFreeEncoder(mlm, tokenizer).fit(texts).query_weights.copy()
