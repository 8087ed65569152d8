"""What SLIM's late-interaction re-scoring costs and gains, against its own first stage.

One SLIM index (token vectors kept, their max pooled into the inverted index), two ways to answer each
query of the test split: the first stage alone (pooled query against the index) and the two stages
(the first stage's ``rerank`` best candidates re-scored by ``sum_i max_j q_i . d_j``, the Numba kernel of
``index/late.py``). Same encoder, same index, same queries, one run.

    LSR_DATA=../shared/datasets .venv/bin/python benchmarks/slim.py --dataset scifact --out results/slim
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="scifact")
    ap.add_argument("--model", default="splade-tiny")
    ap.add_argument("--token-top-k", type=int, default=20)
    ap.add_argument("--rerank", type=int, nargs="+", default=[20, 100, 500])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("results/slim"))
    args = ap.parse_args()

    from eval import evaluate, load_dataset
    from lsr import load_encoder
    from lsr.pipeline import Retriever

    ds = load_dataset(args.dataset, split="test")
    enc = load_encoder(f"slim:model={args.model},token_top_k={args.token_top_k},rerank={max(args.rerank)}")
    t0 = time.perf_counter()
    r = Retriever.build(ds.corpus, enc)
    build_s = time.perf_counter() - t0
    qids = list(ds.queries)
    texts = [ds.queries[q] for q in qids]
    measures = ["nDCG@10", "R@10"]  # k = 10: the first stage fetches max(10, rerank) candidates
    rows = []

    def timed(fn) -> tuple[object, float]:
        fn(texts[:5])  # compile and warm up outside the clock
        lat = []
        for t in texts:
            s = time.perf_counter()
            fn([t])
            lat.append(time.perf_counter() - s)
        return fn(texts), float(np.median(lat) * 1000)

    def first_stage(batch):
        return r.search_vectors(enc.pool(enc.encode_query_tokens(batch)), k=10, threads=args.threads)

    res, ms = timed(first_stage)
    rows.append({"system": "first stage only (pooled vectors)", "ms_per_query": ms,
                 **{str(m): float(v) for m, v in evaluate(res.to_run(qids, r.index.doc_ids), ds.qrels, measures)
                    .aggregate.items()}})
    for n in args.rerank:
        enc.rerank = n
        res, ms = timed(lambda batch: r.search(batch, k=10, threads=args.threads))
        rows.append({"system": f"+ late interaction on the top {n}", "ms_per_query": ms,
                     **{str(m): float(v) for m, v in evaluate(res.to_run(qids, r.index.doc_ids), ds.qrels, measures)
                        .aggregate.items()}})
    store = r.token_store
    meta = {"dataset": ds.name, "model": args.model, "token_top_k": args.token_top_k, "n_docs": r.index.n_docs,
            "doc_tokens": int(store.tokens.shape[0]), "token_nnz": int(store.tokens.nnz),
            "token_store_mb": (store.tokens.data.nbytes + store.tokens.indices.nbytes) / 2**20,
            "index_mb": r.index.size_bytes() / 2**20, "build_seconds": build_s, "threads": args.threads,
            "machine": platform.platform(), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"slim-{Path(ds.name).name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    lines = [f"### SLIM ({args.model}, {args.token_top_k} terms per token) on {ds.name}: {meta['n_docs']:,} documents, "
             f"{meta['doc_tokens']:,} token vectors ({meta['token_store_mb']:.0f} MB) next to a "
             f"{meta['index_mb']:.0f} MB index", "",
             "| system | nDCG@10 | R@10 | ms/query (encode + search, 1 query) |", "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['system']} | {row['nDCG@10']:.4f} | {row['R@10']:.4f} | {row['ms_per_query']:.2f} |")
    table = "\n".join(lines)
    (args.out / f"slim-{Path(ds.name).name}.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
