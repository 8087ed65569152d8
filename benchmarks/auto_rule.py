"""How well ``engine="auto"`` picks between TAAT and block-max pruning, query by query.

Every query is searched alone with both exact engines (best of 5 runs each) on indexes with
block-max metadata, with and without BP reordering. Per vector set the script reports total time
of TAAT alone, block-max alone, ``auto`` (the rule in ``index.inverted``: block-max for at most
``AUTO_MAX_TERMS`` terms and at least ``AUTO_MIN_POSTINGS`` postings) and the per-query best engine
(an oracle no rule can beat), each as a ratio to that best:

    .venv/bin/python benchmarks/auto_rule.py --vectors benchmarks/vectors/scifact-splade \\
        benchmarks/vectors/miracl-yo-bm25 --synthetic 100000 --topical 1000000 --bp-max-docs 100000 \\
        --out results/engine/auto-rule.json

Vector folders come from ``benchmarks/real_vectors.py``; ``--synthetic N`` adds N synthetic
documents (``benchmarks/synthetic.py``, independent draws) with SPLADE-like and inference-free queries,
``--topical N`` N topic-structured ones; ``--bp-max-docs N`` skips the BP-reordered index of larger sets.
One thread.
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
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import synthetic  # noqa: E402

from index import InvertedIndex, numba_threads  # noqa: E402
from index import inverted as inv  # noqa: E402

logger = logging.getLogger("auto_rule")


def load_csr(path: Path) -> sp.csr_array:
    z = np.load(path)
    return sp.csr_array((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))


def best_of(fn, runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(name: str, docs, queries, max_queries: int, bp: bool = True) -> list[dict]:
    rows = []
    for reorder in (None, "bp") if bp else (None,):
        idx = InvertedIndex.build(docs, quantization="uint8", block_max=True, reorder=reorder)
        q = idx.check_queries(queries)
        q = q[np.flatnonzero(np.diff(q.indptr) > 0)[:max_queries]]
        for engine in ("taat", "blockmax"):  # compile outside the clock
            idx.search(q[:2], k=10, engine=engine)
        auto = idx.choose_engines(q)
        df = idx.doc_frequencies()
        taat, bm = np.empty(q.shape[0]), np.empty(q.shape[0])
        for j in range(q.shape[0]):
            one = q[j:j + 1]
            taat[j] = best_of(lambda: idx.search(one, k=10, engine="taat"))
            bm[j] = best_of(lambda: idx.search(one, k=10, engine="blockmax"))
        best = np.minimum(taat, bm).sum()
        row = {"vectors": name, "reorder": reorder or "none", "n_docs": idx.n_docs, "queries": int(q.shape[0]),
               "block_entry_ratio": idx.manifest["block_entry_ratio"],
               "mean_terms": float(np.diff(q.indptr).mean()), "mean_postings": float(df[q.indices].sum() / q.shape[0]),
               "auto_blockmax_share": float(auto.mean()),
               "taat_ms": 1e3 * taat.sum(), "blockmax_ms": 1e3 * bm.sum(), "auto_ms": 1e3 * np.where(auto, bm, taat).sum(),
               "best_ms": 1e3 * best}
        for key in ("taat", "blockmax", "auto"):
            row[f"{key}_vs_best"] = row[f"{key}_ms"] / row["best_ms"]
        logger.info("%s", json.dumps(row))
        rows.append(row)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vectors", type=Path, nargs="*", default=[], help="folders of benchmarks/real_vectors.py")
    ap.add_argument("--synthetic", type=int, default=0, help="also N synthetic documents (0: none)")
    ap.add_argument("--topical", type=int, default=0, help="also N topic-structured synthetic documents (0: none)")
    ap.add_argument("--queries", type=int, default=200, help="queries per set")
    ap.add_argument("--bp-max-docs", type=int, default=None,
                    help="BP-reorder only sets of at most this many documents (BP of 1M takes tens of minutes)")
    ap.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    args = ap.parse_args(argv)
    if args.bp_max_docs is not None and args.bp_max_docs < 0:
        ap.error("--bp-max-docs must be >= 0 (0: no BP-reordered index at all)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sets = []
    for folder in args.vectors:
        if not (folder / "docs.npz").is_file():
            ap.error(f"{folder}: no docs.npz; write the vectors first with benchmarks/real_vectors.py --out {folder}")
        docs = load_csr(folder / "docs.npz")
        for f in sorted(folder.glob("*.npz")):
            if f.stem != "docs":
                sets.append((f"{folder.name}:{f.stem}", docs, load_csr(f)))
    if args.synthetic:
        docs, splade_q, inffree_q = synthetic.generate(args.synthetic, args.queries, seed=args.synthetic)
        sets += [(f"synthetic-{args.synthetic}:splade", docs, splade_q),
                 (f"synthetic-{args.synthetic}:inffree", docs, inffree_q)]
    if args.topical:
        c = synthetic.generate_topical(args.topical, args.queries, seed=args.topical)
        sets += [(f"topical-{args.topical}:splade", c.docs, c.splade_queries),
                 (f"topical-{args.topical}:inffree", c.docs, c.inference_free_queries)]
    if not sets:
        ap.error("nothing to measure: give --vectors, --synthetic and/or --topical")
    rows = []
    with numba_threads(1):
        for name, docs, q in sets:
            bp = args.bp_max_docs is None or docs.shape[0] <= args.bp_max_docs
            rows += measure(name, docs, q, args.queries, bp=bp)
    lines = ["| vectors | order | terms | postings | auto picks block-max | TAAT only | block-max only | auto |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['vectors']} | {r['reorder']} | {r['mean_terms']:.1f} | {r['mean_postings']:,.0f} | "
                     f"{100 * r['auto_blockmax_share']:.0f} % | {r['taat_vs_best']:.2f} | {r['blockmax_vs_best']:.2f} | "
                     f"{r['auto_vs_best']:.2f} |")
    print("\n".join(lines))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        rule = {"AUTO_MAX_TERMS": inv.AUTO_MAX_TERMS, "AUTO_MIN_POSTINGS": inv.AUTO_MIN_POSTINGS}
        args.out.write_text(json.dumps({"rule": rule, "rows": rows, "table": lines, "machine": platform.platform(),
                                        "created": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
