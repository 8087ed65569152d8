"""Thread scaling of lsr's engines, measured in alternating pairs so that machine noise cancels.

`engine.py` times 1 and 2 threads once each, minutes apart; on a shared machine one such pair can
say 1.4x or 1.9x for the same code. Here every engine searches the same query batch with 1 thread,
then with N, repeatedly (``--pairs``), and the report is the median of the per-pair throughput
ratios, with their spread:

    python benchmarks/threads.py --docs 1000000 --queries 200 --pairs 7

Approximate engines use the settings that `engine.py` tuned on the same vectors
(``results/engine/engine-<docs>.json``, rows lsr-approx-95), or none if that file is missing.
Writes ``results/engine/threads-<docs>.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import synthetic  # noqa: E402

from index import Approx, InvertedIndex, numba_threads  # noqa: E402
from index.tuning import median_seconds  # noqa: E402


def batch_seconds(fn, min_seconds: float = 0.3) -> float:
    """Seconds per call of ``fn`` after one warm call: the tuner's timer, run for at least ``min_seconds``."""
    fn()
    return median_seconds(fn, 1, min_seconds)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2, help="compared against 1 thread")
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("results/engine"))
    args = ap.parse_args(argv)
    if args.threads < 2 or args.pairs < 1:
        ap.error("--threads must be at least 2 and --pairs at least 1")
    t0 = time.perf_counter()
    docs, splade_q, inffree_q = synthetic.generate(args.docs, args.queries, seed=args.docs)  # engine.py's vectors
    print(f"{args.docs:,} documents generated in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    idx = InvertedIndex.build(docs, block_max=True)
    tuned = {}
    engine_json = args.out / f"engine-{args.docs}.json"
    if engine_json.exists():
        for r in json.loads(engine_json.read_text())["rows"]:
            if r.get("system") == "lsr-approx-95":
                tuned = {k: Approx(**r[f"{k}_setting"]) for k in ("splade", "inffree") if r.get(f"{k}_setting")}
    rows = []
    for kind, q in (("splade", splade_q), ("inffree", inffree_q)):
        engines = [("taat", {"engine": "taat"}), ("blockmax", {"engine": "blockmax"})]
        if kind in tuned:
            engines.append(("approx-95", {"approx": tuned[kind]}))
        for name, kw in engines:
            one, many = [], []
            for _ in range(args.pairs):
                with numba_threads(1):
                    one.append(batch_seconds(lambda kw=kw: idx.search(q, k=10, **kw)))
                with numba_threads(args.threads):
                    many.append(batch_seconds(lambda kw=kw: idx.search(q, k=10, **kw)))
            ratios = np.array(one) / np.array(many)
            row = {"engine": name, "kind": kind, "settings": {k: (v._asdict() if isinstance(v, Approx) else v)
                                                                for k, v in kw.items()},
                   "ms_1t": 1e3 * float(np.median(one)) / q.shape[0],
                   f"ms_{args.threads}t": 1e3 * float(np.median(many)) / q.shape[0],
                   "speedup_median": float(np.median(ratios)), "speedup_min": float(ratios.min()),
                   "speedup_max": float(ratios.max())}
            rows.append(row)
            print(f"  {name} {kind}: x{row['speedup_median']:.2f} ({row['speedup_min']:.2f}-{row['speedup_max']:.2f})",
                  file=sys.stderr)
    result = {"docs": args.docs, "queries": args.queries, "threads": args.threads, "pairs": args.pairs, "rows": rows,
              "machine": platform.platform(), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"threads-{args.docs}.json").write_text(json.dumps(result, indent=2) + "\n")
    t = args.threads
    print(f"| engine | query kind | ms/q 1 thread | ms/q {t} threads | speed-up, median of {args.pairs} pairs (range) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['engine']} | {r['kind']} | {r['ms_1t']:.2f} | {r[f'ms_{t}t']:.2f} | "
              f"{r['speedup_median']:.2f} ({r['speedup_min']:.2f}-{r['speedup_max']:.2f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
