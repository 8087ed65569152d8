"""Thread scaling of lsr's engines, measured in alternating pairs so that machine noise cancels.

`engine.py` times 1 and 2 threads once each, minutes apart; on a shared machine one such pair can
say 1.4x or 1.9x for the same code. Here every engine searches the same query batch with 1 thread,
then with N, repeatedly (``--pairs``), and the report is the median of the per-pair throughput
ratios, with their spread:

    python benchmarks/threads.py --docs 1000000 --queries 200 --pairs 7 --collection topical

Approximate engines use the settings that `engine.py` tuned on the same vectors
(``results/engine/engine-<docs>[-topical].json``, rows lsr-approx-95), or none if that file is missing.

Three rows measure the machine rather than lsr, in the same run and the same alternating pairs: arithmetic bound by
latency (one dependent chain per thread), arithmetic bound by throughput (vectorised multiply-adds over an array
in L1) and random read-modify-writes into a 4 MB float32 array per thread (a TAAT accumulator over 1M documents).
Two cores double all three; two hardware threads of one core (SMT) double the first and not the second. A speed-up
of lsr's engines is read against them: two threads cannot do better than the machine's own ratio for that kind
of work.

Writes ``results/engine/threads-<docs>[-topical].json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit, prange

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import synthetic  # noqa: E402

from index import Approx, InvertedIndex, numba_threads  # noqa: E402
from index.tuning import median_seconds  # noqa: E402


@njit(cache=True)
def _compute(n: int) -> float:
    a, b = 1.0, 0.5
    for _ in range(n):
        a = a * 1.0000001 + b
        b = b * 0.9999999 + 1e-9
    return a + b


@njit(parallel=True, cache=True)
def compute_only(n: int, parts: int):
    """``parts`` equal pieces of pure arithmetic, one per thread slot (no memory traffic)."""
    out = np.zeros(parts)
    for s in prange(parts):
        out[s] = _compute(n // parts)
    return out


@njit(cache=True)
def _multiply_add(x, reps: int) -> float:
    for _ in range(reps):
        for i in range(x.shape[0]):
            x[i] = x[i] * 0.999999 + 1e-7
    return x[0]


@njit(parallel=True, cache=True)
def vector_only(xs, reps: int, parts: int):
    """``parts`` pieces of independent multiply-adds over an L1-resident row each (bound by the core's throughput)."""
    out = np.zeros(parts)
    for s in prange(parts):
        out[s] = _multiply_add(xs[s], reps)
    return out


@njit(parallel=True, cache=True)
def random_rmw(accs, idx, val, parts: int):
    """Random adds into one accumulator row per piece (a TAAT accumulator's access pattern)."""
    per = idx.shape[0] // parts
    for s in prange(parts):
        acc = accs[s]
        for i in range(s * per, (s + 1) * per):
            acc[idx[i]] += val[i]


def machine_rows(threads: int):
    """The machine's own ceiling: (name, callable) pairs whose work is the same at any thread count."""
    rng = np.random.default_rng(0)
    n_acc = 1 << 20  # 4 MB of float32: the score array of 1M documents
    accs = np.zeros((threads, n_acc), dtype=np.float32)
    idx = rng.integers(0, n_acc, size=8_000_000 // threads * threads).astype(np.int32)
    val = rng.random(idx.shape[0]).astype(np.float32)
    rows = np.ones((threads, 2048))  # 16 KB each
    return [("machine: arithmetic, latency-bound", lambda: compute_only(60_000_000, threads)),
            ("machine: arithmetic, throughput-bound", lambda: vector_only(rows, 40_000 // threads, threads)),
            ("machine: random adds, 4 MB per thread", lambda: random_rmw(accs, idx, val, threads))]


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
    ap.add_argument("--collection", choices=("independent", "topical"), default="independent",
                    help="engine.py's independent draws or its topic-structured collection (same seeds)")
    ap.add_argument("--out", type=Path, default=Path("results/engine"))
    args = ap.parse_args(argv)
    if args.threads < 2 or args.pairs < 1 or args.docs < 1 or args.queries < 1:
        ap.error("--threads must be at least 2, --pairs, --docs and --queries at least 1")
    t0 = time.perf_counter()
    label = f"{args.docs}" + ("-topical" if args.collection == "topical" else "")
    if args.collection == "topical":  # engine.py's vectors
        c = synthetic.generate_topical(args.docs, args.queries, seed=args.docs)
        docs, splade_q, inffree_q = c.docs, c.splade_queries, c.inference_free_queries
    else:
        docs, splade_q, inffree_q = synthetic.generate(args.docs, args.queries, seed=args.docs)
    print(f"{args.docs:,} {args.collection} documents generated in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    idx = InvertedIndex.build(docs, block_max=True)
    tuned = {}
    engine_json = args.out / f"engine-{label}.json"
    if engine_json.exists():
        try:
            engine_rows = json.loads(engine_json.read_text())["rows"]
        except (json.JSONDecodeError, KeyError) as e:
            ap.error(f"{engine_json}: not an engine.py result ({e}); rerun benchmarks/engine.py or delete it")
        for r in engine_rows:
            if r.get("system") == "lsr-approx-95":
                tuned = {k: Approx(**r[f"{k}_setting"]) for k in ("splade", "inffree") if r.get(f"{k}_setting")}

    def pairs(call) -> tuple[list, list]:
        """Seconds of ``call`` with 1 thread and with ``--threads``, alternating, ``--pairs`` times."""
        one, many = [], []
        for _ in range(args.pairs):
            with numba_threads(1):
                one.append(batch_seconds(call))
            with numba_threads(args.threads):
                many.append(batch_seconds(call))
        return one, many

    def summary(one, many) -> dict:
        ratios = np.array(one) / np.array(many)
        return {"speedup_median": float(np.median(ratios)), "speedup_min": float(ratios.min()),
                "speedup_max": float(ratios.max())}

    rows = []
    for name, fn in machine_rows(args.threads):
        # the same work at both counts; with one thread the prange runs its pieces one after another
        one, many = pairs(fn)
        rows.append({"engine": name, "kind": "-", "settings": {}, "ms_1t": 1e3 * float(np.median(one)),
                     f"ms_{args.threads}t": 1e3 * float(np.median(many)), **summary(one, many)})
        print(f"  {name}: x{rows[-1]['speedup_median']:.2f}", file=sys.stderr)
    for kind, q in (("splade", splade_q), ("inffree", inffree_q)):
        engines = [("taat", {"engine": "taat"}), ("blockmax", {"engine": "blockmax"}), ("auto", {"engine": "auto"})]
        if kind in tuned:
            engines.append(("approx-95", {"approx": tuned[kind]}))
        for name, kw in engines:
            one, many = pairs(lambda kw=kw: idx.search(q, k=10, **kw))
            row = {"engine": name, "kind": kind, "settings": {k: (v._asdict() if isinstance(v, Approx) else v)
                                                                for k, v in kw.items()},
                   "ms_1t": 1e3 * float(np.median(one)) / q.shape[0],
                   f"ms_{args.threads}t": 1e3 * float(np.median(many)) / q.shape[0], **summary(one, many)}
            rows.append(row)
            print(f"  {name} {kind}: x{row['speedup_median']:.2f} ({row['speedup_min']:.2f}-{row['speedup_max']:.2f})",
                  file=sys.stderr)
    result = {"docs": args.docs, "collection": args.collection, "queries": args.queries, "threads": args.threads,
              "pairs": args.pairs, "rows": rows, "machine": platform.platform(), "cpus": os.cpu_count(),
              "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"threads-{label}.json").write_text(json.dumps(result, indent=2) + "\n")
    t = args.threads
    print(f"| engine | query kind | ms 1 thread | ms {t} threads | speed-up, median of {args.pairs} pairs (range) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['engine']} | {r['kind']} | {r['ms_1t']:.2f} | {r[f'ms_{t}t']:.2f} | "
              f"{r['speedup_median']:.2f} ({r['speedup_min']:.2f}-{r['speedup_max']:.2f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
