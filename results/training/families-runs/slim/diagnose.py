"""Why a SLIM model's re-scoring gains little over its own first stage, on one test split.

Builds one SLIM index, then reports: the first stage's nDCG@10; re-scoring at several depths; the non-zeros of one
token vector (query and document side: near 1, late interaction is almost the pooled product); the gain by query
length; and the Spearman correlation of the late-interaction and first-stage scores over each query's top 100.

Run from the repository root (the log beside this file is its output for the family run's model):

    LSR_DATA=../shared/datasets .venv/bin/python results/training/families-runs/slim/diagnose.py \\
        nfcorpus models/fam-slim/best
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))

from eval import evaluate, load_dataset  # noqa: E402
from index.results import SearchResults  # noqa: E402
from lsr import load_encoder  # noqa: E402
from lsr.encoders.slim import late_interaction_batch  # noqa: E402
from lsr.pipeline import Retriever  # noqa: E402

MEASURES = ["nDCG@10"]


def main(dataset: str, model: str) -> None:
    ds = load_dataset(dataset, split="test")
    enc = load_encoder(model)
    enc.rerank = 200
    t0 = time.time()
    r = Retriever.build(ds.corpus, enc)
    print("build seconds", round(time.time() - t0, 1))
    qids = list(ds.queries)
    rr = r.reranker
    qs = rr.encode_queries([ds.queries[q] for q in qids])
    first = r.search_vectors(rr.first_stage(qs), 200)

    def ev(res):
        e = evaluate(res.to_run(qids, r.index.doc_ids), ds.qrels, MEASURES)
        return e.aggregate, e.per_query

    base, base_pq = ev(first)
    print("first stage", base)
    n_tokens = np.diff(qs.offsets)
    print("query tokens per query", n_tokens.mean(), "non-zeros per query token",
          np.diff(qs.tokens.indptr).mean())
    print("document tokens per document", np.diff(r.token_store.offsets).mean(), "non-zeros per document token",
          np.diff(r.token_store.tokens.indptr).mean())

    def top(depth: int) -> SearchResults:
        return SearchResults(first.doc_idx[:, :depth].copy(), first.scores[:, :depth].copy())

    for depth in (10, 20, 50, 100, 200):
        print("re-scored at depth", depth, ev(rr.rerank(qs, top(depth), k=10))[0])
    _, pq = ev(rr.rerank(qs, top(100), k=10))
    gain = np.array([pq.get(q, {}).get("nDCG@10", 0.0) - base_pq.get(q, {}).get("nDCG@10", 0.0) for q in qids])
    for lo, hi in ((0, 3), (3, 6), (6, 10), (10, 100)):
        m = (n_tokens >= lo) & (n_tokens < hi)
        if m.any():
            print(f"query tokens [{lo},{hi}): {m.sum()} queries, mean gain {gain[m].mean():+.4f}, "
                  f"top 10 changed for {np.mean(gain[m] != 0):.2f}")
    li = late_interaction_batch(qs, r.token_store, first.doc_idx[:, :100])
    fs = first.scores[:, :100]
    rho = [spearmanr(li[i], fs[i]).correlation for i in range(len(qids)) if (first.doc_idx[i, :100] >= 0).all()]
    print("Spearman of late interaction and first stage over the top 100: median", float(np.nanmedian(rho)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
