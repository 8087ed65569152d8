"""The engine at MS MARCO passage scale: an index built from shards, searched exactly and approximately.

For each size (default 1M and 8.8M documents, MS MARCO passage's 8,841,823), the script

1. writes a topic-structured synthetic collection (``benchmarks/synthetic.py``, SPLADE-on-MS-MARCO-like
   statistics) as CSR shards in the format ``lsr encode`` writes, one shard in memory at a time;
2. builds the index from the shards with :class:`index.IndexBuilder` in a process of its own, whose peak
   resident memory is reported (it counts the pages of the memory-mapped index files being written, so it is
   an upper bound of what the build needs);
3. searches in another process: exact top-10 (one thread) for SPLADE-like and inference-free queries, checked
   on sampled queries against a brute force over the shards (scipy, one shard at a time: same documents,
   same scores, same order); then approximate search with a fixed setting (static pruning scaled to the
   collection, candidates re-scored exactly), its recall against exact search and its time;

and writes ``<out>/scale.json`` and ``<out>/scale.md``, with each measure's growth from the smallest size.

    .venv/bin/python benchmarks/scale.py --docs 1000000 8841823 --work /tmp/lsr-scale --out results/engine

Disk: about 9 bytes per posting for the shards and 5 for the index (8.8M documents: ~1.4 billion postings,
~13 GB of shards, ~7 GB of index, and the builder's spill of the shards meanwhile).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from auto_rule import load_csr  # noqa: E402
from engine import save_csr  # noqa: E402
from engine_worker import dir_bytes, peak_rss_mb  # noqa: E402

K = 10


def peak_rss_gb() -> float:
    return peak_rss_mb() / 1024


# ------------------------------------------------------------------------------------------ steps
def write_shards(n: int, queries: int, shard_size: int, folder: Path) -> dict:
    """The collection as shard files (``lsr encode``'s format) plus the query sets; one shard in memory at a time."""
    import synthetic

    from lsr.encoding import _shard_path, _write_shard

    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    nnz = 0
    for item in synthetic.topical_shards(n, queries, seed=n, shard_size=shard_size):
        if item[0] == "docs":
            _, start, shard = item
            _write_shard(_shard_path(folder, start // shard_size), [f"d{start + i}" for i in range(shard.shape[0])],
                         shard)
            nnz += shard.nnz
        else:
            _, splade_q, inffree_q, sources = item
            save_csr(folder / "q-splade.npz", splade_q)
            save_csr(folder / "q-inffree.npz", inffree_q)
    return {"docs": n, "postings": nnz, "shards": len(list(folder.glob("shard-*.npz"))),
            "write_s": time.perf_counter() - t0, "shard_bytes": dir_bytes(folder)}


def shard_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("shard-*.npz"))


def build(folder: Path, index_dir: Path) -> dict:
    """IndexBuilder over the shards (run in its own process: its peak memory is the build's)."""
    from index import IndexBuilder
    from lsr.encoding import read_shard

    t0 = time.perf_counter()
    dim = None
    builder = None
    for path in shard_files(folder):
        ids, m = read_shard(path)
        if builder is None:
            dim = m.shape[1]
            builder = IndexBuilder(index_dir, dim=dim, quantization="uint8", block_size=64, block_max="auto",
                                   overwrite=True)
        builder.add(m, doc_ids=ids)
    index = builder.finish()
    return {"build_s": time.perf_counter() - t0, "build_peak_rss_gb": peak_rss_gb(), "index_bytes": dir_bytes(index_dir),
            "block_max": index.has_block_max, "block_entry_ratio": index.manifest["block_entry_ratio"]}


def brute_force(folder: Path, q: sp.csr_array, k: int):
    """Top-k over the shards, one at a time, by index.brute_force_search (scipy), merged by (score, index)."""
    from index import brute_force_search
    from lsr.encoding import read_shard

    best_s = np.full((q.shape[0], 0), -np.inf, dtype=np.float32)
    best_d = np.zeros((q.shape[0], 0), dtype=np.int64)
    offset = 0
    for path in shard_files(folder):
        _, m = read_shard(path)
        r = brute_force_search(m, q, k=k)
        d = np.where(r.doc_idx >= 0, r.doc_idx.astype(np.int64) + offset, np.iinfo(np.int64).max)
        s = np.where(r.doc_idx >= 0, r.scores, -np.inf)
        best_s, best_d = np.hstack([best_s, s]), np.hstack([best_d, d])
        order = np.array([np.lexsort((best_d[i], -best_s[i]))[:k] for i in range(q.shape[0])], dtype=np.int64)
        best_s = np.take_along_axis(best_s, order, axis=1)
        best_d = np.take_along_axis(best_d, order, axis=1)
        offset += m.shape[0]
    return np.where(np.isfinite(best_s), best_d, -1), best_s


def search(folder: Path, index_dir: Path, n_check: int) -> dict:
    """Exact and approximate search on the built index (memory-mapped), one thread."""
    import numba

    from index import Approx, InvertedIndex, recall_at_k

    numba.set_num_threads(1)
    out: dict = {}
    t0 = time.perf_counter()
    idx = InvertedIndex.load(index_dir)
    out["load_s"] = time.perf_counter() - t0
    for kind in ("splade", "inffree"):
        q = idx.check_queries(load_csr(folder / f"q-{kind}.npz"))
        nq = q.shape[0]
        idx.search(q[:2], k=K, engine="taat")  # compile and touch the lists outside the clock
        t0 = time.perf_counter()
        exact = idx.search(q, k=K, engine="taat")
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        exact = idx.search(q, k=K, engine="taat")
        out[f"{kind}_exact_ms"] = 1e3 * (time.perf_counter() - t0) / nq
        out[f"{kind}_exact_first_pass_ms"] = 1e3 * first / nq  # lists read from disk / page cache
        sample = np.linspace(0, nq - 1, num=min(n_check, nq)).astype(np.int64)
        t0 = time.perf_counter()
        want_d, want_s = brute_force(folder, q[sample], K)
        out[f"{kind}_brute_force_s"] = time.perf_counter() - t0
        out[f"{kind}_checked_queries"] = int(sample.size)
        out[f"{kind}_equal_to_brute_force"] = bool(np.array_equal(exact.doc_idx[sample].astype(np.int64), want_d) and
                                                   np.array_equal(exact.scores[sample], want_s.astype(np.float32)))
        # approximate: static pruning to a budget that grows with the collection (tuned at 1M documents on
        # these collections: 5,000 postings per term, 50 x k candidates, 24 query terms for SPLADE-like
        # queries, 16 for inference-free ones)
        per_m = 5000 if kind == "splade" else 2000
        ap = Approx(query_terms=24 if kind == "splade" else 16, candidates=50 * K,
                    max_postings=int(per_m * idx.n_docs / 1_000_000))
        t0 = time.perf_counter()
        idx.search(q[:2], k=K, approx=ap)  # builds the forward index and the pruned lists
        out[f"{kind}_approx_prepare_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = idx.search(q, k=K, approx=ap)
        out[f"{kind}_approx_ms"] = 1e3 * (time.perf_counter() - t0) / nq
        out[f"{kind}_approx_recall"] = recall_at_k(res, exact)
        out[f"{kind}_approx_setting"] = ap._asdict()
    out["search_peak_rss_gb"] = peak_rss_gb()
    return out


# ------------------------------------------------------------------------------------------ driver
def run_step(step: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--step", step, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"step {step} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown(rows: list[dict]) -> str:
    base = rows[0]

    def grow(r, key):
        return f"{r[key] / base[key]:.1f}x" if base.get(key) else "–"

    lines = ["| documents | postings | shards GB | index GB | build s | build peak GB | exact ms (SPLADE / IF) | "
             "= brute force | approx ms (SPLADE / IF) | approx recall | search peak GB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['docs']:,} | {r['postings'] / 1e9:.2f} B | {r['shard_bytes'] / 1e9:.1f} | {r['index_bytes'] / 1e9:.1f} | "
            f"{r['build_s']:.0f} ({grow(r, 'build_s')}) | {r['build_peak_rss_gb']:.1f} | "
            f"{r['splade_exact_ms']:.1f} / {r['inffree_exact_ms']:.1f} ({grow(r, 'splade_exact_ms')} / "
            f"{grow(r, 'inffree_exact_ms')}) | "
            f"{'yes' if r['splade_equal_to_brute_force'] and r['inffree_equal_to_brute_force'] else 'NO'} "
            f"({r['splade_checked_queries']} + {r['inffree_checked_queries']} queries) | "
            f"{r['splade_approx_ms']:.2f} / {r['inffree_approx_ms']:.2f} | "
            f"{r['splade_approx_recall']:.3f} / {r['inffree_approx_recall']:.3f} | {r['search_peak_rss_gb']:.1f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, nargs="+", default=[1_000_000, 8_841_823])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--check", type=int, default=20, help="queries of each kind checked against the brute force")
    ap.add_argument("--shard-size", type=int, default=100_000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/lsr-scale"), help="shards and indexes (deleted after)")
    ap.add_argument("--keep", action="store_true", help="keep the shards and indexes in --work")
    ap.add_argument("--out", type=Path, default=Path("results/engine"))
    ap.add_argument("--step", choices=("build", "search"), help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if min(args.docs) < 1 or args.queries < 1 or args.check < 1 or args.shard_size < 1:
        ap.error("--docs, --queries, --check and --shard-size must be positive")
    if args.step == "build":
        print(json.dumps(build(args.folder, args.index)))
        return 0
    if args.step == "search":
        print(json.dumps(search(args.folder, args.index, args.check)))
        return 0
    rows = []
    args.out.mkdir(parents=True, exist_ok=True)
    for n in args.docs:
        folder, index_dir = args.work / f"shards-{n}", args.work / f"index-{n}"
        shutil.rmtree(folder, ignore_errors=True)
        print(f"{n:,} documents: writing shards ...", file=sys.stderr, flush=True)
        row = write_shards(n, args.queries, args.shard_size, folder)
        print(f"  {row}\n  building ...", file=sys.stderr, flush=True)
        row.update(run_step("build", "--folder", str(folder), "--index", str(index_dir)))
        print(f"  {row}\n  searching ...", file=sys.stderr, flush=True)
        row.update(run_step("search", "--folder", str(folder), "--index", str(index_dir),
                            "--check", str(args.check)))
        print(f"  {row}", file=sys.stderr, flush=True)
        rows.append(row)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(index_dir, ignore_errors=True)
        result = {"rows": rows, "machine": platform.platform(), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (args.out / "scale.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.out / "scale.md").write_text(markdown(rows) + "\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
