"""Ship a trained encoder inside the lsr package: half-precision weights, tokenizer, query table, model card.

A trained model (``<output_dir>/model`` of :func:`training.train`) becomes ``lsr/models/<name>/``, which
:func:`lsr.load_encoder` resolves by name (``load_encoder("inference-free-tiny")``), offline. The weights
are stored in bfloat16 (half the bytes; loaded back into float32, the precision they were trained in,
by :func:`lsr.encoders.models.load_mlm`), so the vectors differ from the trained model's by the
rounding of the weights only: :func:`ship` measures that difference on a sample of texts and refuses
if the top terms move more than ``min_agreement`` allows. Whether the rounding changes effectiveness
is checked by the reproduction matrix (``lsr reproduce --only inference-free-tiny``).

Example:
    >>> from training.ship import ship
    >>> ship("models/inference-free-tiny/model", "inference-free-tiny", sample=["insulin resistance"])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from index import atomic_dir

logger = logging.getLogger(__name__)

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


class ShipCheckError(RuntimeError):
    """Half-precision weights changed the vectors more than allowed."""


def ship(model_dir: str | os.PathLike, name: str, *, sample: Sequence[str], dtype: str = "bfloat16",
         dest_root: str | os.PathLike | None = None, min_agreement: float = 0.98, overwrite: bool = True,
         card: str | None = None, doc_top_k: int | None = None) -> Path:
    """Write ``model_dir`` as the shipped model ``name`` (default under ``lsr/models/``).

    Args:
        model_dir: a saved lsr encoder (inference-free, SPLADE or SLIM).
        name: the folder and the name users load it by.
        sample: texts (documents) on which the stored weights must reproduce the trained vectors.
        dtype: storage precision of the weights (``bfloat16``, ``float16`` or ``float32``).
        min_agreement: the least mean top-64-term agreement between trained and shipped vectors on ``sample``.
        card: the model card (``README.md`` of the folder).
        doc_top_k: keep at most this many terms per document vector when serving (the encoder's ``top_k``;
            a bound on index size and latency, e.g. 256); None leaves the trained model's setting.

    Returns:
        The folder written.
    """
    from lsr import load_encoder
    from lsr.encoders import SHIPPED_DIR
    from lsr.encoders.splade import top_term_agreement

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    enc = load_encoder(Path(model_dir))
    if getattr(enc, "kind", None) == "inference-free":
        enc.corpus_idf = True  # trained with each corpus's own IDF: refit on the corpus it indexes
    if doc_top_k is not None:
        if int(doc_top_k) < 0:
            raise ValueError(f"doc_top_k must be >= 0 (0: no bound), got {doc_top_k}")
        enc.top_k = int(doc_top_k)  # applied to 'before' too: the check measures the weights' rounding only
    dest = Path(dest_root) if dest_root is not None else SHIPPED_DIR
    target = dest / name
    texts = list(sample)
    before = enc.encode_documents(texts)
    trained = {k: v.detach().clone() for k, v in enc.model.state_dict().items()}
    enc.model.to(DTYPES[dtype])
    try:
        with atomic_dir(target, overwrite=overwrite, kind="encoder") as tmp:
            enc.save(tmp, overwrite=True)
            if card is not None:
                (tmp / "README.md").write_text(card, encoding="utf-8")
            shipped = load_encoder(tmp)
            after = shipped.encode_documents(texts)
            agreement = top_term_agreement(before, after, top=64)
            rel = float(np.abs((before - after).data).max() / max(float(np.abs(before.data).max()), 1e-12)) \
                if before.nnz else 0.0
            logger.info("%s: %s weights, top-64 agreement %.4f, largest change %.2e of the largest weight",
                        name, dtype, agreement, rel)
            if agreement < min_agreement:
                raise ShipCheckError(f"{dtype} weights move the top terms too much (agreement {agreement:.4f} < "
                                     f"{min_agreement}); ship in float16 or float32")
    finally:
        enc.model.float()
        enc.model.load_state_dict(trained)
    return target
