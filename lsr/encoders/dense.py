"""A dense sentence encoder: mean-pooled, L2-normalised transformer embeddings (all-MiniLM-L6-v2 by default).

The dense half of hybrid search (:mod:`lsr.hybrid`) and the dense teacher of training
(:class:`training.teachers.DenseTeacher`) are this one encoder. Inner products of its embeddings are
cosine similarities, searched exactly or with HNSW by :class:`lsr.dense.FaissIndex`.

Example:
    >>> enc = DenseEncoder()                                     # the packaged all-MiniLM-L6-v2, offline
    >>> docs = enc.embed(["Insulin resistance in muscle cells."])  # float32 [1, 384], unit length
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

DEFAULT_DENSE_MODEL = "all-MiniLM-L6-v2"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (Linux ``/proc/cpuinfo`` flags); elsewhere False."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class DenseEncoder:
    """Texts to unit-length embeddings: the transformer's last hidden states averaged over real tokens.

    Args:
        model: a packaged model name (``all-MiniLM-L6-v2``), a local model folder, or a hub name when online.
        max_length: tokens kept per text (256, as sentence-transformers does for this model).
        batch_size: texts per forward pass; texts are sorted by length first so batches pad little.
        bf16: run under bfloat16 autocast: about twice as fast on CPUs with native bf16 (AVX512-BF16, AMX),
            many times slower on those without (emulated); ``None`` (default) decides by the CPU's flags.
    """

    kind = "dense"

    def __init__(self, model: str = DEFAULT_DENSE_MODEL, *, max_length: int = 256, batch_size: int = 32,
                 bf16: bool | None = None):
        from transformers import AutoModel

        from . import models

        self.name = model
        location = models.resolve(model)
        self.tokenizer = models.load_tokenizer(location)
        self.model = AutoModel.from_pretrained(location)
        self.model.eval()
        if int(max_length) < 1 or int(batch_size) < 1:
            raise ValueError("max_length and batch_size must be >= 1")
        self.max_length, self.batch_size = int(max_length), int(batch_size)
        self.bf16 = cpu_has_native_bf16() if bf16 is None else bool(bf16)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def embed(self, texts: Sequence[str], *, show_progress: bool = False, desc: str = "dense embeddings") -> np.ndarray:
        """Embeddings of ``texts``: float32 ``[n, dim]``, each of unit length."""
        import torch

        texts = list(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)
        with torch.inference_mode(), autocast:
            for s in tqdm(range(0, len(texts), self.batch_size), desc=desc, unit="batch",
                          disable=not show_progress, mininterval=1.0):
                idx = order[s:s + self.batch_size]
                tok = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt")
                hidden = self.model(**tok).last_hidden_state.float()
                mask = tok["attention_mask"].unsqueeze(-1).float()
                emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                out[idx] = torch.nn.functional.normalize(emb, dim=1).numpy()
        return out

    def describe(self) -> dict:
        return {"kind": self.kind, "model": self.name, "dim": self.dim, "max_length": self.max_length,
                "pooling": "mean", "normalized": True, "bf16": self.bf16}
