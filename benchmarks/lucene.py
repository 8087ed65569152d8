"""lsr's engine next to Lucene (Anserini, through the Pyserini jar) on the same real vectors.

For each data set and encoder: index the corpus once with lsr, index the same vectors with Lucene
(`Retriever.add_lucene`), then search every test query with both: nDCG@10 (Lucene's integer weights
cost a little), agreement of the top 10 with lsr's exact top 10, ms per query one query at a time
after one warm-up pass (the JVM's JIT compiles during the first pass), build seconds and index size.

    LSR_DATA=../shared/datasets .venv/bin/python benchmarks/lucene.py --dataset scifact --dataset nfcorpus \
        --encoder bm25 --out results/lucene

Lucene is searched in-process through pyjnius, one Java call per query; its latency includes that bridge.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np

from eval import evaluate, load_dataset
from lsr.pipeline import Retriever


def _time_per_query(search, queries, repeats: int = 1) -> float:
    lat = []
    for _ in range(repeats):
        for i in range(queries.shape[0]):
            t0 = time.perf_counter()
            search(queries[[i]])
            lat.append(time.perf_counter() - t0)
    return float(np.median(lat) * 1000)


def run_one(dataset: str, encoder: str, k: int = 10, threads: int = 1) -> dict:
    ds = load_dataset(dataset, split="test")
    r = Retriever.build(ds.corpus, encoder, show_progress=False)
    qids = list(ds.queries)
    q = r.encode_queries([ds.queries[x] for x in qids])
    t0 = time.perf_counter()
    lucene = r.add_lucene(threads=threads)
    lucene_build = time.perf_counter() - t0
    exact = r.search_vectors(q, k=1000, threads=threads)
    via_lucene = r.search_vectors(q, k=1000, engine="lucene", threads=threads)
    ids = r.index.doc_ids
    measures = ["nDCG@10", "R@100"]
    e_lsr = evaluate(exact.to_run(qids, ids), ds.qrels, measures).aggregate
    e_luc = evaluate(via_lucene.to_run(qids, ids), ds.qrels, measures).aggregate
    overlap = np.mean([len(set(a[:10][a[:10] >= 0]) & set(b[:10][b[:10] >= 0])) / max(1, int((a[:10] >= 0).sum()))
                       for a, b in zip(exact.doc_idx, via_lucene.doc_idx)])
    lsr_ms = _time_per_query(lambda x: r.search_vectors(x, k=k, threads=1), q, repeats=3)
    _time_per_query(lambda x: r.search_vectors(x, k=k, engine="lucene"), q)  # warm-up for the JIT
    lucene_ms = _time_per_query(lambda x: r.search_vectors(x, k=k, engine="lucene"), q)
    return {"dataset": ds.name, "encoder": encoder, "n_docs": r.index.n_docs, "n_queries": len(qids), "k": k,
            "lsr": {**{str(m): float(v) for m, v in e_lsr.items()}, "ms_per_query": lsr_ms,
                    "build_seconds": r.index.build_seconds, "index_bytes": r.index.size_bytes()},
            "lucene": {**{str(m): float(v) for m, v in e_luc.items()}, "ms_per_query": lucene_ms,
                       "build_seconds": lucene_build, "index_bytes": lucene.size_bytes(),
                       "top10_overlap_with_lsr": float(overlap), "scale": lucene.scale}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", action="append", required=True)
    p.add_argument("--encoder", action="append", required=True)
    p.add_argument("--out", default="results/lucene")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows = [run_one(d, e) for d in args.dataset for e in args.encoder]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"command": "benchmarks/lucene.py " + " ".join(sys.argv[1:] if argv is None else argv), "machine": platform.platform(),
            "processor": platform.processor(), "rows": rows}
    (out / "lucene.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    lines = ["| data set | encoder | engine | nDCG@10 | R@100 | top-10 overlap | ms/query (k=10, 1 thread) | build s | "
             "index MB |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for name in ("lsr", "lucene"):
            s = row[name]
            lines.append(f"| {row['dataset']} | {row['encoder']} | {name} | {s['nDCG@10']:.4f} | {s['R@100']:.4f} | "
                         f"{s.get('top10_overlap_with_lsr', 1.0):.3f} | {s['ms_per_query']:.2f} | "
                         f"{s['build_seconds']:.1f} | {s['index_bytes'] / 2**20:.1f} |")
    (out / "lucene.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
