"""The live index against a freshly built single index, in the same run.

    python benchmarks/live.py --docs 200000 --queries 500

On synthetic SPLADE-like documents and queries (``synthetic.py``): the throughput of adding pre-encoded
vectors (documents per second, commit included), and the search latency (one query at a time, exact
``auto`` engine, k=10) of

* one freshly built index (the baseline), and it with a metadata filter matching 1 % and 50 % of the documents;
* the same documents added in 10 commits (10 segments, the merge policy off), also with both filters;
* a copy of those 10 segments with 10 % of the documents deleted (tombstones, not merged away);
* a copy of that compacted into one.

All variants are timed in turn on each query (shuffled per query), so machine drift during the run moves them alike.

Every document carries a numeric field ``bucket`` (its row modulo 100); the filters are ``bucket < 1`` and
``bucket < 50``. Queries are SPLADE-like (20-40 terms, mostly term-at-a-time) or inference-free (5-15 terms,
mostly block-max) — ``--kind``. Prints a Markdown table with each latency as a ratio to the baseline (the
issue's goal: 10 segments within 1.5x) and writes ``results/live/live-<kind>-<docs>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import synthetic  # noqa: E402

from index import InvertedIndex, warm_up  # noqa: E402
from index.segments import SegmentedIndex  # noqa: E402


def latencies(variants: dict, queries, seed: int = 0) -> dict:
    """Per variant, p50 / p95 / mean milliseconds of one query at a time. The variants are timed in turn on each
    query (in a shuffled order per query), so a machine that speeds up or slows down during the run moves them all."""
    rng = np.random.default_rng(seed)
    rows = [queries[[i]] for i in range(queries.shape[0])]
    names = list(variants)
    for name in names:
        variants[name](rows[0])  # compiled and warm
    times: dict[str, list[float]] = {name: [] for name in names}
    for q in rows:
        for j in rng.permutation(len(names)):
            t0 = time.perf_counter()
            variants[names[j]](q)
            times[names[j]].append(time.perf_counter() - t0)
    out = {}
    for name, ts in times.items():
        t = np.asarray(ts) * 1e3
        out[name] = {"p50_ms": float(np.percentile(t, 50)), "p95_ms": float(np.percentile(t, 95)),
                     "mean_ms": float(t.mean())}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--segments", type=int, default=10)
    ap.add_argument("--delete", type=float, default=0.10, help="fraction of documents deleted")
    ap.add_argument("--kind", choices=("splade", "inference-free"), default="splade", help="query kind")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    warm_up()
    docs, splade_q, short_q = synthetic.generate(args.docs, args.queries, seed=0)
    queries = splade_q if args.kind == "splade" else short_q
    ids = [f"d{i}" for i in range(args.docs)]
    fields = [{"bucket": i % 100} for i in range(args.docs)]
    filters = {"1 %": {"bucket": {"lt": 1}}, "50 %": {"bucket": {"lt": 50}}}
    extra: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="lsr-live-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        base = InvertedIndex.build(docs, doc_ids=ids, fields=fields)
        base.save(tmp / "base")
        extra["one built index"] = {"docs_per_s": args.docs / (time.perf_counter() - t0)}
        base = InvertedIndex.load(tmp / "base")

        live = SegmentedIndex.create(tmp / "live", docs.shape[1], max_segments=args.segments + 1)
        t0 = time.perf_counter()
        bounds = np.linspace(0, args.docs, args.segments + 1).astype(int)
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            live.add(ids[lo:hi], docs[lo:hi], fields[lo:hi])
            live.commit()
        seg_name = f"{args.segments} segments"
        extra[seg_name] = {"docs_per_s": args.docs / (time.perf_counter() - t0)}

        shutil.copytree(tmp / "live", tmp / "deleted")
        deleted = SegmentedIndex.open(tmp / "deleted")
        rng = np.random.default_rng(1)
        doomed = [ids[i] for i in rng.choice(args.docs, size=int(args.delete * args.docs), replace=False)]
        t0 = time.perf_counter()
        deleted.delete(doomed)
        deleted.commit()
        del_name = f"{args.segments} segments, {args.delete:.0%} deleted"
        extra[del_name] = {"delete_seconds": time.perf_counter() - t0}

        shutil.copytree(tmp / "deleted", tmp / "compacted")
        compacted = SegmentedIndex.open(tmp / "compacted")
        t0 = time.perf_counter()
        compacted.compact()
        extra["compacted"] = {"compact_seconds": time.perf_counter() - t0}

        variants = {"one built index": lambda q: base.search(q, 10)}
        for label, flt in filters.items():
            variants[f"one built index, filter {label}"] = lambda q, f=flt: base.search(q, 10, filter=f)
        variants[seg_name] = lambda q: live.search(q, 10)
        for label, flt in filters.items():
            variants[f"{seg_name}, filter {label}"] = lambda q, f=flt: live.search(q, 10, filter=f)
        variants[del_name] = lambda q: deleted.search(q, 10)
        variants["compacted"] = lambda q: compacted.search(q, 10)
        rows = latencies(variants, queries)
        for name, more in extra.items():
            rows[name].update(more)

    base_ms = rows["one built index"]["p50_ms"]
    print(f"## live index, {args.docs:,} synthetic SPLADE-like documents, {args.queries} {args.kind} queries, "
          "k=10, exact\n")
    print("| index | p50 ms | p95 ms | p50 vs one built index | docs/s added |")
    print("|---|---|---|---|---|")
    for label, r in rows.items():
        rate = f"{r['docs_per_s']:,.0f}" if "docs_per_s" in r else "–"
        print(f"| {label} | {r['p50_ms']:.3f} | {r['p95_ms']:.3f} | {r['p50_ms'] / base_ms:.2f}x | {rate} |")
    out = Path(args.out) if args.out else ROOT / "results" / "live" / f"live-{args.kind}-{args.docs}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()}
    out.write_text(json.dumps({"command": "python benchmarks/live.py " + " ".join(argv or sys.argv[1:]),
                               "machine": machine, "docs": args.docs, "queries": args.queries, "kind": args.kind,
                               "rows": rows},
                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
