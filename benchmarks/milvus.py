"""Milvus (Lite, embedded) against lsr's exact engine on the same vectors: effectiveness, latency, build time.

Both searchers get the same document vectors (lsr's index, read back with ``document_vectors()``) and the
same encoded queries, so any difference in nDCG@10 is the engines' own (ties, float sums):

    python benchmarks/milvus.py --dataset scifact --dataset nfcorpus --encoder bm25

Needs ``pip install 'lsr[milvus]'`` and ``LSR_DATA``. Writes ``results/milvus/milvus.json`` and prints a
Markdown table: nDCG@10 and R@100 of each engine, p50 latency (one query at a time), QPS (one batch), build
seconds, and the ratios against lsr measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eval import evaluate, load_dataset  # noqa: E402
from eval.efficiency import latency_stats  # noqa: E402
from index import warm_up  # noqa: E402
from lsr import load_encoder  # noqa: E402
from lsr.milvus import MilvusIndex  # noqa: E402
from lsr.pipeline import Retriever  # noqa: E402

MEASURES = ["nDCG@10", "R@100"]


def timed_searches(search, queries, k: int) -> tuple[dict, float, object]:
    """Latency one query at a time (after one warm query), then one batch: (latency stats, QPS, batch results)."""
    search(queries[[0]], k)
    lat = np.empty(queries.shape[0])
    for i in range(queries.shape[0]):
        t0 = time.perf_counter()
        search(queries[[i]], k)
        lat[i] = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = search(queries, k)
    return latency_stats(lat), queries.shape[0] / (time.perf_counter() - t0), res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", action="append", required=True)
    ap.add_argument("--encoder", action="append", default=None, help="encoder spec (default bm25); repeatable")
    ap.add_argument("-k", type=int, default=1000)
    ap.add_argument("--out", default=str(ROOT / "results" / "milvus" / "milvus.json"))
    args = ap.parse_args(argv)
    rows = []
    for name in args.dataset:
        ds = load_dataset(name)
        qids = list(ds.queries)
        for spec in args.encoder or ["bm25"]:
            warm_up()
            retriever = Retriever.build(ds.corpus, load_encoder(spec), show_progress=False)
            idx = retriever.index
            queries = retriever.encode_queries([ds.queries[q] for q in qids])
            with tempfile.TemporaryDirectory(prefix="lsr-milvus-bench-") as tmp:
                t0 = time.perf_counter()
                milvus = MilvusIndex.build(Path(tmp) / "m", idx.doc_ids.tolist(), idx.document_vectors(),
                                           vocabulary=idx.vocabulary, show_progress=False)
                milvus_build = time.perf_counter() - t0
                engines = {"lsr": (lambda q, k: idx.search(q, k=k), idx.build_seconds),
                           "milvus-lite": (lambda q, k: milvus.search(q, k=k), milvus_build)}
                for engine, (search, build_s) in engines.items():
                    lat, qps, res = timed_searches(search, queries, args.k)
                    run = res.to_run(qids, idx.doc_ids)
                    scores = evaluate(run, ds.qrels, MEASURES).aggregate
                    rows.append({"dataset": name, "encoder": spec, "engine": engine, **scores,
                                 "p50_ms": lat["p50_ms"], "qps": qps, "build_s": build_s})
                milvus.close()
    lsr_rows = {(r["dataset"], r["encoder"]): r for r in rows if r["engine"] == "lsr"}
    for r in rows:
        base = lsr_rows[(r["dataset"], r["encoder"])]
        r["ndcg_diff"] = r["nDCG@10"] - base["nDCG@10"]
        r["p50_vs_lsr"] = r["p50_ms"] / base["p50_ms"]
        r["build_vs_lsr"] = r["build_s"] / base["build_s"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"k": args.k, "machine": platform.platform(), "rows": rows,
                               "created": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2) + "\n")
    print(f"| data set | vectors | engine | nDCG@10 | R@100 | p50 ms (k={args.k}) | QPS | build s | "
          "nDCG@10 - lsr | p50 / lsr | build / lsr |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['encoder']} | {r['engine']} | {r['nDCG@10']:.4f} | {r['R@100']:.4f} | "
              f"{r['p50_ms']:.2f} | {r['qps']:.0f} | {r['build_s']:.2f} | {r['ndcg_diff']:+.4f} | "
              f"{r['p50_vs_lsr']:.1f}x | {r['build_vs_lsr']:.0f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
