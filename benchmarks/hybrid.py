"""Hybrid dense + sparse search: each side alone and fused, with the paired test against the sparse side.

    python benchmarks/hybrid.py --dataset scifact --dataset nfcorpus --sparse bm25

Per data set: the sparse retriever (``--sparse``), the dense encoder (all-MiniLM-L6-v2, exact faiss) and two
fusions of their top ``--candidates`` lists: reciprocal rank fusion, and a min-max linear combination whose
dense weight is chosen on a dev split (``--dev-split``: NFCorpus ``dev``; SciFact has none, so ``train``),
never on the test queries. Latency per query (one at a time) covers query encoding on both sides, both
searches and the fusion. Writes ``results/hybrid/<data set>/report.{json,md}`` (the paired tests against
the sparse system, Holm-adjusted) and prints the tables.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eval import Report, SystemResult, evaluate, load_dataset  # noqa: E402
from eval.efficiency import latency_stats  # noqa: E402
from eval.significance import comparisons_markdown  # noqa: E402
from index import warm_up  # noqa: E402
from lsr.hybrid import HybridRetriever, choose_weight  # noqa: E402

MEASURES = ["nDCG@10", "R@100"]
DEV = {"nfcorpus": "dev", "scifact": "train"}


def per_query_latency(search, texts) -> dict:
    search(texts[:1])
    lat = np.empty(len(texts))
    for i, t in enumerate(texts):
        t0 = time.perf_counter()
        search([t])
        lat[i] = time.perf_counter() - t0
    return latency_stats(lat)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", action="append", required=True)
    ap.add_argument("--sparse", default="bm25", help="the sparse encoder spec (default bm25)")
    ap.add_argument("--dense-model", default="all-MiniLM-L6-v2")
    ap.add_argument("--candidates", type=int, default=100, help="documents each side retrieves per query")
    ap.add_argument("--dev-split", default=None, help="split that chooses the linear weight (default: per data set)")
    ap.add_argument("--out", default=str(ROOT / "results" / "hybrid"))
    args = ap.parse_args(argv)
    for name in args.dataset:
        warm_up()
        ds = load_dataset(name)
        t0 = time.perf_counter()
        hybrid = HybridRetriever.build(ds.corpus, args.sparse, dense_model=args.dense_model,
                                       candidates=args.candidates, show_progress=False)
        build_s = time.perf_counter() - t0
        dev = load_dataset(name, split=args.dev_split or DEV.get(name, "dev"))
        weight = choose_weight(hybrid, dev.queries, dev.qrels, k=args.candidates)
        qids = list(ds.queries)
        texts = [ds.queries[q] for q in qids]
        sparse_res, dense_res = hybrid.search_parts(texts, args.candidates)
        k = args.candidates
        systems = {
            args.sparse: (sparse_res, lambda t: hybrid.sparse.search(t, k)),
            "dense": (dense_res, lambda t: hybrid.dense.search(hybrid.dense_encoder.embed(t), k)),
            "hybrid-rrf": (hybrid.fuse(sparse_res, dense_res, k), lambda t: hybrid.search(t, k)),
        }
        linear = hybrid.with_fusion("linear", weight=weight)
        systems[f"hybrid-linear-w{weight:g}"] = (linear.fuse(sparse_res, dense_res, k), lambda t: linear.search(t, k))
        results = []
        for label, (res, search) in systems.items():
            ev = evaluate(res.to_run(qids, hybrid.sparse.index.doc_ids), ds.qrels, MEASURES)
            settings = {"sparse": args.sparse, "dense_model": args.dense_model, "candidates": k,
                        "dev_split_for_weight": dev.split, "dense_weight": weight if "linear" in label else None}
            results.append(SystemResult(name=label, settings=settings, effectiveness=ev.aggregate,
                                        efficiency={"encode_and_search_latency": per_query_latency(search, texts),
                                                    "build_seconds": build_s},
                                        per_query=ev.per_query))
        command = "python benchmarks/hybrid.py " + " ".join(argv if argv is not None else sys.argv[1:])
        report = Report(dataset=ds.describe(), measures=MEASURES, systems=results, command=command)
        report.save(Path(args.out) / name)
        print(f"## {name} (dense weight {weight:g}, chosen on {dev.split})\n")
        print("| system | nDCG@10 | R@100 | p50 ms (encode + search + fuse) |")
        print("|---|---|---|---|")
        for s in results:
            print(f"| {s.name} | {s.effectiveness['nDCG@10']:.4f} | {s.effectiveness['R@100']:.4f} | "
                  f"{s.efficiency['encode_and_search_latency']['p50_ms']:.2f} |")
        print("\n" + comparisons_markdown(report.significance(measures=["nDCG@10"])) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
