"""Why SLIM's re-scoring gains little: depth sweep, by query length, non-zeros per token vector, LI vs pooled.

Run from the repository root: LSR_DATA=../shared/datasets .venv/bin/python results/training/families-runs/slim/diagnose.py nfcorpus models/fam-slim/best
"""
import sys, json, time
import numpy as np
sys.path.insert(0, ".")
from eval import evaluate, load_dataset
from lsr import load_encoder
from lsr.pipeline import Retriever
from index.results import SearchResults

ds_name, model = sys.argv[1], sys.argv[2]
ds = load_dataset(ds_name, split="test")
enc = load_encoder(model)
enc.rerank = 200
t0 = time.time()
r = Retriever.build(ds.corpus, enc)
print("build", time.time() - t0, flush=True)
qids = list(ds.queries); texts = [ds.queries[q] for q in qids]
rr = r.reranker
qs = rr.encode_queries(texts)
first = r.search_vectors(rr.first_stage(qs), 200)
M = ["nDCG@10", "R@100"]
def ev(res):
    e = evaluate(res.to_run(qids, r.index.doc_ids), ds.qrels, M); return e.aggregate, e.per_query
base, basepq = ev(first)
print("first stage", base)
ntok = np.diff(qs.offsets)
tok_nnz = np.diff(qs.tokens.indptr)
print("query tokens mean", ntok.mean(), "nnz per query token mean", tok_nnz.mean(), "median", np.median(tok_nnz))
dt = r.token_store
dnnz = np.diff(dt.tokens.indptr)
print("doc tokens per doc", np.diff(dt.offsets).mean(), "nnz per doc token", dnnz.mean())
from lsr.encoders.slim import late_interaction_batch
for depth in (10, 20, 50, 100, 200):
    sub = SearchResults(first.doc_idx[:, :depth].copy(), first.scores[:, :depth].copy())
    res = rr.rerank(qs, sub, k=10)
    a, pq = ev(res)
    print("rerank", depth, a)
# interpolation diagnostic at 100
li = late_interaction_batch(qs, dt, first.doc_idx[:, :100])
fs = np.where(np.isfinite(first.scores[:, :100]), first.scores[:, :100], 0)
for alpha in (0.25, 0.5, 0.75):
    # normalise per query by max
    s = alpha * li / np.maximum(li.max(1, keepdims=True), 1e-9) + (1 - alpha) * fs / np.maximum(fs.max(1, keepdims=True), 1e-9)
    order = np.argsort(-s, axis=1)[:, :10]
    res = SearchResults(np.take_along_axis(first.doc_idx[:, :100], order, 1), np.take_along_axis(s, order, 1).astype(np.float32))
    print("interp", alpha, ev(res)[0])
# by query length: gain at 100
res100 = rr.rerank(qs, SearchResults(first.doc_idx[:, :100].copy(), first.scores[:, :100].copy()), k=10)
_, pq100 = ev(res100)
g = np.array([pq100.get(q, {}).get("nDCG@10", 0) - basepq.get(q, {}).get("nDCG@10", 0) for q in qids])
if g is not None:
    for lo, hi in ((0, 3), (3, 6), (6, 10), (10, 100)):
        m = (ntok >= lo) & (ntok < hi)
        print(f"tokens [{lo},{hi}): {m.sum()} queries, mean gain {g[m].mean() if m.any() else float('nan'):+.4f}, changed {np.mean(g[m]!=0) if m.any() else 0:.2f}")
# rank correlation LI vs first-stage among top-100
from scipy.stats import spearmanr
rho = [spearmanr(li[i], fs[i]).correlation for i in range(len(qids)) if (first.doc_idx[i, :100] >= 0).all()]
print("spearman LI vs first stage in top 100: median", np.nanmedian(rho))
