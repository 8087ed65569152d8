"""Real vectors for the engine benchmark, from lsr's own encoders on a data set of ``$LSR_DATA``.

Writes ``docs.npz`` and one ``<kind>.npz`` per query set into ``--out`` (plus ``vectors.json``), with
weights quantized to integers 1..255 (one scale per set: 255 / its largest weight), as the synthetic
vectors are, so that every engine, the integer-only anchors included, sees the same vectors.

* ``--encoder splade-tiny``: documents by the SPLADE model; query kinds ``splade`` (the model's query
  vectors) and ``inffree`` (the query's tokens weighted by the corpus IDF, as an inference-free model
  would; no model at query time).
* ``--encoder bm25``: documents and queries by lsr's BM25 (query kind ``bm25``: term counts).

    LSR_DATA=../shared/datasets .venv/bin/python benchmarks/real_vectors.py --dataset scifact \\
        --encoder splade-tiny --out benchmarks/vectors/scifact-splade
    .venv/bin/python benchmarks/engine.py --vectors benchmarks/vectors/scifact-splade --out results/engine
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from engine import save_csr  # noqa: E402


def to_bytes(m: sp.csr_array) -> sp.csr_array:
    """Integer weights 1..255 (255 = the largest weight of the set)."""
    out = sp.csr_array(m, copy=True)
    if out.nnz:
        out.data = np.clip(np.rint(out.data / out.data.max() * 255), 1, 255).astype(np.float32)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--split", default=None, help="queries of this split (default: the data set's test or dev)")
    ap.add_argument("--encoder", choices=("splade-tiny", "bm25"), required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    from eval import load_dataset
    from lsr import load_encoder

    ds = load_dataset(args.dataset, split=args.split)
    texts = [t for _, t in ds.corpus]
    queries = list(ds.queries.values())
    t0 = time.perf_counter()
    if args.encoder == "bm25":
        enc = load_encoder("bm25")
        docs = enc.fit_encode_documents(texts)
        sets = {"bm25": enc.encode_queries(queries)}
    else:
        from lsr.encoders.splade import InferenceFreeEncoder, SpladeEncoder

        enc = SpladeEncoder("splade-tiny", threads=args.threads)
        docs = enc.encode_documents(texts, show_progress=True)
        inffree = InferenceFreeEncoder(enc.model, enc.tokenizer)
        inffree.fit(texts)
        sets = {"splade": enc.encode_queries(queries), "inffree": inffree.encode_queries(queries)}
    seconds = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    save_csr(args.out / "docs.npz", to_bytes(docs))
    stats = {"n_docs": docs.shape[0], "nnz_per_doc": docs.nnz / docs.shape[0], "encode_s": seconds}
    for kind, q in sets.items():
        keep = np.diff(q.indptr) > 0  # an empty query (all tokens unknown) has nothing to search
        q = to_bytes(q[np.flatnonzero(keep)])
        save_csr(args.out / f"{kind}.npz", q)
        stats[f"{kind}_queries"] = q.shape[0]
        stats[f"{kind}_q_nnz"] = float(np.diff(q.indptr).mean())
    label = f"{Path(ds.name).name}-{args.encoder}"
    meta = {"label": label, "title": f"{ds.name} ({docs.shape[0]:,} documents), {args.encoder} vectors",
            "dataset": ds.name, "split": ds.split, "encoder": args.encoder, "stats": stats}
    (args.out / "vectors.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
