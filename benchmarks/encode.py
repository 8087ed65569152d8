"""SPLADE document encoding: lsr's encoder against a plain transformers implementation.

Same model, same texts, same batch size, in one run. The plain baseline is what most code does:
AutoModelForMaskedLM over padded batches, full ``[batch, length, vocabulary]`` logits,
``log(1 + ReLU)``, mask, max over positions. lsr projects only non-padding tokens, max-pools raw
logits, sorts texts by length, and optionally runs bf16 autocast or int8 dynamic quantization.

    LSR_DATA=../shared/datasets .venv/bin/python benchmarks/encode.py --model splade-tiny --docs 512
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def plain_encode(model, tokenizer, texts, batch_size, max_length):
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            tok = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
            logits = model(**tok).logits
            w = torch.log1p(torch.relu(logits)) * tok["attention_mask"].unsqueeze(-1)
            out.append(w.max(dim=1).values.numpy())
    return np.concatenate(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="splade-tiny")
    ap.add_argument("--dataset", default="scifact")
    ap.add_argument("--docs", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("results/encode"))
    args = ap.parse_args()

    import torch

    from eval import load_dataset
    from lsr.encoders import models
    from lsr.encoders.splade import SpladeEncoder, top_term_agreement

    torch.set_num_threads(args.threads)
    texts = [t for _, t in zip(range(args.docs), (t for _, t in load_dataset(args.dataset).corpus))]
    location = models.resolve(args.model)
    model, tokenizer = models.load_mlm(location), models.load_tokenizer(location)
    rows = {}
    t0 = time.perf_counter()
    plain = plain_encode(model, tokenizer, texts, args.batch_size, args.max_length)
    rows["plain transformers fp32"] = time.perf_counter() - t0
    import scipy.sparse as sp

    plain_csr = sp.csr_array(plain)
    for dtype in ("float32", "bfloat16", "int8"):
        enc = SpladeEncoder(model, tokenizer, doc_max_length=args.max_length, batch_size=args.batch_size, dtype=dtype)
        t0 = time.perf_counter()
        vecs = enc.encode_documents(texts)
        rows[f"lsr {dtype}"] = time.perf_counter() - t0
        rows[f"lsr {dtype} agreement"] = top_term_agreement(plain_csr, vecs, top=64)
    base = rows["plain transformers fp32"]
    lines = [f"### {args.model}, {len(texts)} {args.dataset} documents, batch {args.batch_size}, "
             f"{args.max_length} tokens, {args.threads} threads", "",
             "| encoder | docs/s | × plain | top-64 agreement with plain |", "|---|---|---|---|"]
    for name in ("plain transformers fp32", "lsr float32", "lsr bfloat16", "lsr int8"):
        agree = rows.get(f"{name} agreement")
        lines.append(f"| {name} | {len(texts) / rows[name]:.1f} | {base / rows[name]:.2f} | "
                     f"{'–' if agree is None else f'{agree:.3f}'} |")
    table = "\n".join(lines)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"encode-{args.model.replace('/', '_')}.json").write_text(
        json.dumps({"rows": rows, "n_docs": len(texts), "args": {k: str(v) for k, v in vars(args).items()},
                    "cpu_count": os.cpu_count()}, indent=2) + "\n")
    (args.out / f"encode-{args.model.replace('/', '_')}.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
