"""One system of the engine benchmark, in its own process (so its peak memory is its own).

Run by benchmarks/engine.py; prints one JSON object on the last line of stdout:
build seconds, index bytes, ms/query per query kind and thread count, and writes each run's
top-10 document indices to ``<data>/<system>.<kind>.npy`` for recall.
Anchors (seismic, bmp, pisa) are imported only in their branch, so this file runs under the
anchors' own virtual environment too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

K = 10


def query_kinds(data: Path) -> list[str]:
    """Every ``<kind>.npz`` next to ``docs.npz`` is a query set (splade, inffree, bm25...)."""
    return sorted(p.stem for p in data.glob("*.npz") if p.stem != "docs")


def load(data: Path):
    def csr(name):
        z = np.load(data / f"{name}.npz")
        return sp.csr_array((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))

    return csr("docs"), {kind: csr(kind) for kind in query_kinds(data)}


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def dir_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    """index.recall_at_k on raw arrays: this file also runs in the anchors' environment, without lsr."""
    total, n = 0.0, 0
    for a, e in zip(found, exact):
        e = e[e >= 0]
        if e.size:
            total += np.intersect1d(a[a >= 0], e).size / e.size
            n += 1
    return total / max(n, 1)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ----------------------------------------------------------------------------------------- lsr
def baseline_tree(rev: str) -> Path:
    """lsr's ``index`` package as it was at git revision ``rev``, extracted once into a temporary folder
    (systems named ``<system>@<rev>`` run it: an earlier engine measured in the same run as today's)."""
    repo = Path(__file__).resolve().parent.parent
    found = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", "--short=12", f"{rev}^{{commit}}"],
                           capture_output=True, text=True)
    if found.returncode != 0:
        raise SystemExit(f"--baseline {rev!r}: not a commit of {repo}; give a revision `git log` shows (e.g. a hash)")
    sha = found.stdout.strip()
    root = Path(tempfile.gettempdir()) / f"lsr-baseline-{sha}"
    if not (root / "index" / "__init__.py").exists():
        tmp = Path(tempfile.mkdtemp(prefix=f"lsr-baseline-{sha}-"))
        archive = subprocess.run(["git", "-C", str(repo), "archive", sha, "index"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
        if root.exists():  # another worker extracted it meanwhile
            shutil.rmtree(tmp)
        else:
            tmp.rename(root)
    return root


def run_lsr(args, docs, queries, out: dict) -> None:
    import numba

    system, _, rev = args.system.partition("@")
    if rev:  # an earlier revision's engine: its index package comes first on the import path
        sys.path.insert(0, str(baseline_tree(rev)))
    from index import Approx, InvertedIndex, SearchResults, numba_threads, recall_at_k, tune_approximate

    if rev:
        out["baseline"] = {"rev": rev, "index_package": str(Path(sys.modules["index"].__file__).parent)}

    numba.set_num_threads(max(args.threads))
    tmp = Path(tempfile.mkdtemp(prefix="lsr-bench-"))
    t0 = time.perf_counter()
    # the exact systems use the default build (block-max metadata only where blocks are coherent);
    # block-max and approximate search need the metadata, so they keep it
    system, _, variant = system.partition("+")  # "lsr-blockmax+bp": the same system over a BP-reordered index
    reorder = "bp" if variant == "bp" else None
    block_max = "auto" if system in ("lsr-exact", "lsr-taat") else True
    idx = InvertedIndex.build(docs, quantization="uint8", block_size=args.block_size, block_max=block_max,
                              reorder=reorder)
    out["build_s"] = time.perf_counter() - t0
    idx.save(tmp / "idx")
    out["index_bytes"] = dir_bytes(tmp / "idx")
    out["csr_bytes"] = int(docs.data.nbytes + docs.indices.nbytes + docs.indptr.nbytes)
    idx = InvertedIndex.load(tmp / "idx")
    warm = next(iter(queries.values()))[:4]
    idx.search(warm, k=K, engine="taat")  # compile outside the clock
    idx.search(warm, k=K, approx=Approx(query_terms=2))
    if idx.has_block_max:
        idx.search(warm, k=K, engine="blockmax")
        idx.search(warm, k=K, approx=Approx(max_blocks=8))
    if system.startswith("lsr-approx"):
        # the tuner reaches kernels no search above compiles (static pruning, its pruned lists); on a cold
        # Numba cache their compilation (~25 s) would be timed as tuning, so a tuning run over a small index
        # of the same array types, loaded the same way, compiles them first (a user pays that once per
        # install: cache=True)
        InvertedIndex.build(docs[:5000], quantization="uint8", block_size=args.block_size,
                            block_max=True).save(tmp / "small")
        small = InvertedIndex.load(tmp / "small")  # loaded as the timed index is (read-only mapped arrays)
        with numba_threads(1):
            tune_approximate(small, warm, target_recall=0.95, k=K, repeats=1)
    order = idx.doc_order

    def original(doc_idx):  # results of a reordered index, in the documents' original rows
        return doc_idx if order is None else np.where(doc_idx >= 0, np.asarray(order)[np.maximum(doc_idx, 0)], -1)

    if reorder:
        out["reorder"] = idx.manifest["reorder"]
    out["block_entry_ratio"] = idx.manifest["block_entry_ratio"]
    for kind, q in queries.items():
        nq = q.shape[0]
        if system in ("lsr-exact", "lsr-taat", "lsr-blockmax"):
            engine = {"lsr-exact": "auto", "lsr-taat": "taat", "lsr-blockmax": "blockmax"}[system]
            res = idx.search(q, k=K, engine=engine)
            for t in args.threads:
                with numba_threads(t):
                    out[f"{kind}_ms_t{t}"] = 1e3 * median_time(lambda: idx.search(q, k=K, engine=engine),
                                                               args.repeats) / nq
            np.save(args.data / f"{args.system}.{kind}.npy", original(res.doc_idx))
        else:  # lsr-approx-<recall>
            target = float(system.rsplit("-", 1)[1]) / 100
            half = nq // 2
            exact = idx.search(q, k=K)
            t_tune = time.perf_counter()
            with numba_threads(1):
                tuned = tune_approximate(idx, q[:half], target_recall=target, k=K, repeats=1)
            out[f"{kind}_tune_s"] = time.perf_counter() - t_tune
            res = idx.search(q, k=K, approx=tuned.approx)
            out[f"{kind}_setting"] = tuned.approx._asdict()
            out[f"{kind}_tuned_recall"] = tuned.recall
            held_out = SearchResults(exact.doc_idx[half:], exact.scores[half:])
            out[f"{kind}_heldout_recall"] = recall_at_k(idx.search(q[half:], k=K, approx=tuned.approx), held_out)
            for t in args.threads:
                with numba_threads(t):
                    out[f"{kind}_ms_t{t}"] = 1e3 * median_time(
                        lambda: idx.search(q, k=K, approx=tuned.approx), args.repeats) / nq
            np.save(args.data / f"{args.system}.{kind}.npy", original(res.doc_idx))
    shutil.rmtree(tmp, ignore_errors=True)


def run_scipy(args, docs, queries, out: dict) -> None:
    from index import brute_force_search

    t0 = time.perf_counter()
    dt = sp.csr_array(docs.T)
    out["build_s"] = time.perf_counter() - t0
    out["index_bytes"] = int(dt.data.nbytes + dt.indices.nbytes + dt.indptr.nbytes)
    for kind, q in queries.items():
        sub = q[: args.scipy_queries]
        res = brute_force_search(docs, sub, k=K)
        out[f"{kind}_ms_t1"] = 1e3 * median_time(lambda: brute_force_search(docs, sub, k=K), 1) / sub.shape[0]
        np.save(args.data / f"scipy.{kind}.npy", res.doc_idx)


# ------------------------------------------------------------------------------------- anchors
def _exact(args, kind):
    return np.load(args.data / f"lsr-exact.{kind}.npy")


def run_seismic(args, docs, queries, out: dict) -> None:
    import seismic

    n = docs.shape[0]
    if docs.shape[1] > 65535:  # pyseismic-lsr's default build stores term ids ("components") as u16
        raise SystemExit(f"Seismic (pyseismic-lsr) takes term ids below 65,536; this vocabulary has {docs.shape[1]:,}")
    t0 = time.perf_counter()
    ds = seismic.SeismicDataset(docs.shape[1])
    ds.add_documents_by_id([str(i) for i in range(n)], docs.indices.astype(np.int64), docs.data.astype(np.float32),
                           docs.indptr.astype(np.int64))
    n_postings = max(1000, int(round(docs.nnz / docs.shape[1] * 2)))
    index = seismic.SeismicIndex.build_from_dataset(ds, n_postings=n_postings, centroid_fraction=0.1,
                                                    num_threads=max(args.threads))
    out["build_s"] = time.perf_counter() - t0
    out["build_params"] = {"n_postings": n_postings, "centroid_fraction": 0.1}
    tmp = Path(tempfile.mkdtemp(prefix="seismic-bench-"))
    index.save(str(tmp / "idx"))
    out["index_bytes"] = dir_bytes(tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    sstr = seismic.get_seismic_string()
    for kind, q in queries.items():
        nq = q.shape[0]
        qids = np.array([str(i) for i in range(nq)], dtype=sstr)
        comps = [q.indices[q.indptr[i]:q.indptr[i + 1]].astype(str).astype(sstr) for i in range(nq)]
        vals = [q.data[q.indptr[i]:q.indptr[i + 1]].astype(np.float32) for i in range(nq)]
        exact = _exact(args, kind)

        def search(cut, hf, threads):
            res = index.batch_search(qids, comps, vals, K, cut, hf, num_threads=threads)
            found = np.full((nq, K), -1, dtype=np.int64)
            for row in res:  # rows name their query: do not rely on their order
                if row:
                    ids = [int(r[2]) for r in row][:K]
                    found[int(row[0][0]), :len(ids)] = ids
            return found

        best = None
        for cut in (5, 10, 20, 40):
            for hf in (0.6, 0.7, 0.8, 0.9, 1.0):
                r = recall(search(cut, hf, 1), exact)
                if r >= args.seismic_recall:
                    ms = 1e3 * median_time(lambda: search(cut, hf, 1), args.repeats) / nq
                    if best is None or ms < best[0]:
                        best = (ms, cut, hf, r)
                    break
        if best is None:
            out[f"{kind}_note"] = f"no setting reached recall {args.seismic_recall}"
            continue
        _, cut, hf, r = best
        out[f"{kind}_setting"] = {"query_cut": cut, "heap_factor": hf}
        out[f"{kind}_recall"] = r
        for t in args.threads:
            out[f"{kind}_ms_t{t}"] = 1e3 * median_time(lambda: search(cut, hf, t), args.repeats) / nq
        np.save(args.data / f"seismic.{kind}.npy", search(cut, hf, 1))


def _dicts(m, i):
    lo, hi = m.indptr[i], m.indptr[i + 1]
    return {str(int(t)): int(w) for t, w in zip(m.indices[lo:hi], m.data[lo:hi])}


def run_bmp(args, docs, queries, out: dict) -> None:
    import bmp

    tmp = Path(tempfile.mkdtemp(prefix="bmp-bench-"))
    t0 = time.perf_counter()
    ix = bmp.Indexer(str(tmp / "index.bmp"), 32, False)
    for i in range(docs.shape[0]):
        ix.add_document(str(i), _dicts(docs, i))
    ix.finish()
    out["build_s"] = time.perf_counter() - t0
    out["build_params"] = {"bsize": 32}
    out["index_bytes"] = dir_bytes(tmp)
    searcher = bmp.Searcher(str(tmp / "index.bmp"))
    for kind, q in queries.items():
        nq = q.shape[0]
        qd = [{k: float(v) for k, v in _dicts(q, i).items()} for i in range(nq)]

        def search():
            found = np.full((nq, K), -1, dtype=np.int64)
            for i, d in enumerate(qd):
                ids, _ = searcher.search(d, k=K, alpha=1.0, beta=1.0)
                found[i, :len(ids)] = [int(x) for x in ids]
            return found

        out[f"{kind}_ms_t1"] = 1e3 * median_time(search, args.repeats) / nq
        out[f"{kind}_note"] = "exact mode (alpha=1, beta=1); the Python API searches one query at a time"
        np.save(args.data / f"bmp.{kind}.npy", search())
    shutil.rmtree(tmp, ignore_errors=True)


def run_pisa(args, docs, queries, out: dict) -> None:
    import pandas as pd
    from pyterrier_pisa import PisaIndex

    tmp = Path(tempfile.mkdtemp(prefix="pisa-bench-"))
    t0 = time.perf_counter()
    index = PisaIndex(str(tmp / "idx"), stemmer="none", threads=max(args.threads))
    index.toks_indexer(scale=1.0).index({"docno": str(i), "toks": _dicts(docs, i)} for i in range(docs.shape[0]))
    out["build_s"] = time.perf_counter() - t0
    out["index_bytes"] = dir_bytes(tmp)
    for kind, q in queries.items():
        nq = q.shape[0]
        frame = pd.DataFrame({"qid": [str(i) for i in range(nq)],
                              "query_toks": [{k: float(v) for k, v in _dicts(q, i).items()} for i in range(nq)]})
        for t in args.threads:
            retr = index.quantized(num_results=K, threads=t, query_algorithm="maxscore", toks_scale=1.0)
            out[f"{kind}_ms_t{t}"] = 1e3 * median_time(lambda: retr(frame), args.repeats) / nq
        res = index.quantized(num_results=K, threads=1, query_algorithm="maxscore", toks_scale=1.0)(frame)
        found = np.full((nq, K), -1, dtype=np.int64)
        for qid, grp in res.groupby("qid"):
            ids = grp.sort_values("rank")["docno"].astype(int).tolist()[:K]
            found[int(qid), :len(ids)] = ids
        out[f"{kind}_note"] = "MaxScore on a quantized PISA index; time includes pyterrier's DataFrame handling"
        np.save(args.data / f"pisa.{kind}.npy", found)
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--system", required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--block-size", type=int, default=64)
    ap.add_argument("--scipy-queries", type=int, default=50)
    ap.add_argument("--seismic-recall", type=float, default=0.95)
    args = ap.parse_args()
    docs, queries = load(args.data)
    out = {"system": args.system}
    runners = {"scipy": run_scipy, "seismic": run_seismic, "bmp": run_bmp, "pisa": run_pisa}
    runner = runners.get(args.system, run_lsr)
    runner(args, docs, queries, out)
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
