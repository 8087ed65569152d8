"""Engine benchmark: lsr's exact and approximate search against scipy, Seismic, BMP and PISA.

Same vectors for every system (synthetic, see benchmarks/synthetic.py: independent draws and a
topic-structured collection, each reported in its own table; or real vectors), one run, each system in its
own process. Prints a table of ms/query (1 and 2 threads), recall@10 against lsr exact, build time,
index size and peak memory, with ratios against scipy and the anchors, and writes
``<out>/engine-<n>.json`` and ``<out>/engine.md``.

    .venv/bin/python benchmarks/engine.py --docs 100000 --queries 500
    bash benchmarks/setup_anchors.sh     # once: Seismic, BMP, PISA in benchmarks/.venv-anchors

Anchors run only when their environment exists (``--anchors-python``); missing ones are reported.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import synthetic  # noqa: E402

LSR_SYSTEMS = ["scipy", "lsr-exact", "lsr-taat", "lsr-blockmax", "lsr-approx-95", "lsr-approx-99"]
BP_SYSTEMS = ["lsr-exact+bp", "lsr-blockmax+bp", "lsr-approx-95+bp"]  # the same over a BP-reordered index
ANCHORS = ["seismic", "bmp", "pisa"]


def save_csr(path: Path, m) -> None:
    np.savez(path, data=m.data, indices=m.indices, indptr=m.indptr, shape=np.array(m.shape))


def run_worker(python: str, system: str, data: Path, args) -> dict:
    cmd = [python, str(HERE / "engine_worker.py"), "--system", system, "--data", str(data),
           "--threads", *map(str, args.threads), "--repeats", str(args.repeats),
           "--scipy-queries", str(args.scipy_queries)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"system": system, "error": " | ".join(tail)}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.perf_counter() - t0
    return out


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    total, n = 0.0, 0
    for a, e in zip(found, exact):
        e = e[e >= 0]
        if e.size:
            total += np.intersect1d(a[a >= 0], e).size / e.size
            n += 1
    return total / max(n, 1)


def table(title: str, rows: list[dict], threads, kinds) -> str:
    base = {r["system"]: r for r in rows if "error" not in r}
    lines = [f"### {title}", ""]
    revs = sorted({r["system"].split("@", 1)[1] for r in rows if "@" in r["system"]})
    head = ["system", "query kind"] + [f"ms/q {t}t" for t in threads] + \
        ["recall@10", "× scipy (1t)", "× seismic (1t)", "× bmp (1t)"] + [f"× @{v} (1t)" for v in revs] + \
        ["build s", "index MB", "peak MB"] + (["tune s"] if any("approx" in r["system"] for r in rows) else [])
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['system']} | – | failed: {r['error'][:80]} |" + " |" * (len(head) - 3))
            continue
        for kind in kinds:
            ms = [r.get(f"{kind}_ms_t{t}") for t in threads]
            if ms[0] is None:
                continue

            def ratio(other):
                o = base.get(other, {}).get(f"{kind}_ms_t1")
                return f"{o / ms[0]:.1f}" if o and ms[0] else "–"

            name = r["system"] + (f" (re-run {r['rerun'][:16].replace('T', ' ')})" if r.get("rerun") else "")
            own = r["system"].split("@", 1)[0]
            cells = [name, kind] + [f"{m:.3f}" if m is not None else "–" for m in ms] + [
                f"{r.get(kind + '_recall', float('nan')):.3f}", ratio("scipy"), ratio("seismic"), ratio("bmp")] + [
                ratio(f"{own}@{v}") if "@" not in r["system"] else "–" for v in revs] + [
                f"{r.get('build_s', float('nan')):.1f}", f"{r.get('index_bytes', 0) / 1e6:.0f}",
                f"{r.get('peak_rss_mb', float('nan')):.0f}"]
            if "tune s" in head:
                cells.append(f"{r[kind + '_tune_s']:.1f}" if kind + "_tune_s" in r else "–")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_suite(data: Path, label: str, title: str, stats: dict, args) -> None:
    """Every system on the vectors in ``data`` (docs.npz + one .npz per query kind); writes engine-<label>.json."""
    kinds = sorted(p.stem for p in data.glob("*.npz") if p.stem != "docs")
    have_anchors = Path(args.anchors_python).exists()
    rows = []
    order = ["lsr-exact"] + [s for s in args.systems if s != "lsr-exact"]
    # the first worker of a run measured up to 1.5x slower than the same engine later in the run
    # (SciFact: 0.18 against 0.12 ms/query for the identical TAAT path), so one throw-away worker
    # warms the machine and Numba's on-disk caches before anything is timed
    print("  warm-up worker (results discarded) ...", file=sys.stderr)
    run_worker(sys.executable, "lsr-taat", data, args)
    for system in order:
        python = sys.executable
        if system in ANCHORS:
            if not have_anchors:
                rows.append({"system": system, "error": "anchors not installed (benchmarks/setup_anchors.sh)"})
                continue
            python = args.anchors_python
        print(f"  running {system} ...", file=sys.stderr)
        r = run_worker(python, system, data, args)
        for kind in kinds:
            f = data / f"{system}.{kind}.npy"
            if f.exists() and (data / f"lsr-exact.{kind}.npy").exists():
                exact = np.load(data / f"lsr-exact.{kind}.npy")
                found = np.load(f)
                r[f"{kind}_recall"] = recall(found, exact[: found.shape[0]])
        rows.append(r)
        print(f"    {json.dumps(r)[:400]}", file=sys.stderr)
    created = time.strftime("%Y-%m-%dT%H:%M:%S")
    result = {"title": title, "kinds": kinds, "stats": stats, "rows": rows, "threads": args.threads,
              "machine": platform.platform(), "python": platform.python_version(), "created": created}
    previous = args.out / f"engine-{label}.json"
    if args.replace and previous.exists():
        # re-measured rows replace their namesakes; every other row (and its ratios) stays from the earlier run
        try:
            old = json.loads(previous.read_text())
            old_rows = old["rows"]
        except (json.JSONDecodeError, KeyError) as e:
            raise SystemExit(f"{previous}: not an engine result ({e}); delete it and run without --replace") from None
        new_rows = {r["system"]: {**r, "rerun": created} for r in rows}
        kept = [new_rows.pop(r["system"], r) for r in old_rows]
        result = {**old, "rows": kept + list(new_rows.values())}
    (args.out / f"engine-{label}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table(title, rows, args.threads, kinds))


def vector_stats(docs, queries: dict) -> dict:
    stats = {"n_docs": docs.shape[0], "nnz_per_doc": docs.nnz / docs.shape[0]}
    for kind, q in queries.items():
        stats[f"{kind}_q_nnz"] = float(np.diff(q.indptr).mean())
        stats[f"flops_{kind}"] = synthetic.flops(docs, q)
    return stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, nargs="+", default=[100_000])
    ap.add_argument("--vectors", type=Path, nargs="+", default=[],
                    help="folders written by benchmarks/real_vectors.py (real vectors instead of synthetic ones)")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--collection", nargs="+", choices=("independent", "topical"), default=["independent", "topical"],
                    help="synthetic kinds: documents drawn independently, and/or topic-structured (default both)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scipy-queries", type=int, default=50)
    ap.add_argument("--systems", nargs="+", default=LSR_SYSTEMS + ANCHORS,
                    help=f"systems to run; also {', '.join(BP_SYSTEMS)}")
    ap.add_argument("--baseline", default=None, metavar="REV",
                    help="also run lsr-exact, lsr-taat and lsr-approx-95 of git revision REV (its index package), "
                         "as systems '<name>@REV', each row then gets its ratio to them")
    ap.add_argument("--anchors-python", default=str(HERE / ".venv-anchors" / "bin" / "python"))
    ap.add_argument("--timeout", type=int, default=3600)
    ap.add_argument("--out", type=Path, default=Path("results/engine"))
    ap.add_argument("--markdown-only", action="store_true", help="only rebuild engine.md from the JSON results")
    ap.add_argument("--replace", action="store_true",
                    help="re-run only --systems and replace their rows in the existing results (the rows are marked "
                         "'rerun'; other rows stay from the earlier run), e.g. after a disturbed measurement")
    args = ap.parse_args()
    if args.baseline:
        if subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "--verify", "--quiet", f"{args.baseline}^{{commit}}"],
                          capture_output=True).returncode != 0:
            ap.error(f"--baseline {args.baseline!r}: not a commit of this repository; give a revision `git log` shows")
        args.systems = [*args.systems, *(f"{s}@{args.baseline}" for s in ("lsr-exact", "lsr-taat", "lsr-approx-95"))]
    if args.markdown_only:
        write_markdown(args.out)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    if args.vectors:
        for folder in args.vectors:
            meta = json.loads((folder / "vectors.json").read_text())
            with tempfile.TemporaryDirectory(prefix="lsr-engine-bench-") as tmp:
                data = Path(tmp)
                for f in folder.glob("*.npz"):
                    shutil.copy(f, data / f.name)
                run_suite(data, meta["label"], meta["title"], meta["stats"], args)
        write_markdown(args.out)
        return 0
    for n in args.docs:
        for kind in args.collection:
            with tempfile.TemporaryDirectory(prefix="lsr-engine-bench-") as tmp:
                data = Path(tmp)
                t0 = time.perf_counter()
                if kind == "topical":
                    c = synthetic.generate_topical(n, args.queries, seed=n)
                    docs, splade_q, inffree_q = c.docs, c.splade_queries, c.inference_free_queries
                else:
                    docs, splade_q, inffree_q = synthetic.generate(n, args.queries, seed=n)
                gen_s = time.perf_counter() - t0
                save_csr(data / "docs.npz", docs)
                save_csr(data / "splade.npz", splade_q)
                save_csr(data / "inffree.npz", inffree_q)
                stats = {**vector_stats(docs, {"splade": splade_q, "inffree": inffree_q}), "generate_s": gen_s}
                print(f"{n:,} {kind} docs generated in {gen_s:.0f}s: {stats}", file=sys.stderr)
                label, title = (str(n), f"{n:,} documents, independent draws") if kind == "independent" else \
                    (f"{n}-topical", f"{n:,} documents, topic-structured")
                run_suite(data, label, title, stats, args)
    write_markdown(args.out)
    return 0


def write_markdown(out: Path) -> None:
    """engine.md: one table per engine-<label>.json in ``out``: synthetic sizes, smallest first, then real vectors."""
    def key(p: Path):  # synthetic sizes in order, each size's independent table before its topical one
        label = p.stem.split("-", 1)[1]
        size, _, kind = label.partition("-")
        return (0, int(size), kind) if size.isdigit() else (1, 0, label)

    parts = []
    for path in sorted(out.glob("engine-*.json"), key=key):
        result = json.loads(path.read_text())
        stats = result["stats"]
        title = result.get("title") or f"{stats['n_docs']:,} documents"
        kinds = result.get("kinds") or ["splade", "inffree"]
        parts.append(table(title, result["rows"], result["threads"], kinds) + "\n\nvectors: " + ", ".join(
            f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in stats.items())
            + f"\n\nmeasured {result['created']} on {result['machine']}")
    (out / "engine.md").write_text("\n\n".join(parts) + "\n")


if __name__ == "__main__":
    sys.exit(main())
