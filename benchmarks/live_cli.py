"""The live index through the CLI on a real collection: `lsr index add` + `lsr index delete` against a fresh build.

    LSR_DATA=../shared/datasets .venv/bin/python benchmarks/live_cli.py --dataset nfcorpus --encoder splade-tiny

Splits the collection's corpus (seeded): the base (80 % of the documents) is built with `lsr index build`;
then `lsr index add` adds the other 20 % together with new texts for 5 % of the base (an id already present
is replaced: the upsert), and `lsr index delete --ids` deletes another 5 % of the base. A fresh
`lsr index build` over the final corpus (base - deleted, with the replaced texts, + added) is the reference.
Both are searched with `lsr search --queries` (the split's queries, k=20) and their top-10 compared query by
query: the same ids in the same order, scores equal to 1e-5. Two kinds of difference are told apart from a real
one. NFCorpus holds 40 texts twice under two ids: their scores are equal up to the encoder's float rounding, which
depends on the batch a document was padded in (a document's vector can differ in the 7th digit between the two
builds, as it does between any two encodings in different batches), so (1) "near-tie order": the same ten ids
with the same scores (1e-5), ordered differently only among scores within 1e-5 of each other; (2) "tie at the
cutoff": the 10th place falls inside a group of equal scores (1e-5) and the two keep different members, each in
the other's top-20 with the same score. Writes ``results/live/live-cli-<dataset>.json`` with the counts, the
commands' wall times and the queries that differ otherwise (the bar: none), and exits 1 if any does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eval import load_dataset  # noqa: E402
from eval.datasets import iter_jsonl  # noqa: E402
from eval.trec import read_trec_run  # noqa: E402


def lsr(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lsr", "-q", *args], check=True)
    return time.perf_counter() - t0


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def top10(run: dict) -> list:
    return sorted(run.items(), key=lambda kv: (-kv[1], kv[0]))[:10]


def compare(full_a: dict, full_b: dict, tol: float = 1e-5) -> str:
    """How two rankings' top-10 relate: "same", "near_tie_order", "tie_at_cutoff" or "differ" (see above)."""
    a, b = top10(full_a), top10(full_b)
    ids_a, ids_b = [d for d, _ in a], [d for d, _ in b]
    same_scores = len(a) == len(b) and np.allclose([s for _, s in a], [s for _, s in b], atol=tol)
    if ids_a == ids_b and same_scores:
        return "same"
    if same_scores and set(ids_a) == set(ids_b):
        if all(abs(full_a[d] - full_b[d]) <= tol for d in ids_a):
            return "near_tie_order"
    cut = a[-1][1] if a else 0.0
    above = [d for d, s in a if s > cut + tol] == [d for d, s in b if s > cut + tol]
    tied = [d for d, s in a + b if abs(s - cut) <= tol]
    if (same_scores and above and len(a) == 10
            and all(d in full_a and d in full_b and abs(full_a[d] - full_b[d]) <= tol for d in tied)):
        return "tie_at_cutoff"
    return "differ"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="nfcorpus")
    ap.add_argument("--split", default="test")
    ap.add_argument("--encoder", default="splade-tiny")
    ap.add_argument("--data-dir", default=None, help="default: $LSR_DATA")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    ds = load_dataset(args.dataset, split=args.split, data_dir=args.data_dir)
    corpus_file = Path(ds.source) / "corpus.jsonl"
    if not corpus_file.exists():
        corpus_file = corpus_file.with_suffix(".jsonl.gz")
    lines = [obj for _, obj in iter_jsonl(corpus_file)]
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(len(lines))
    n_base = int(0.8 * len(lines))
    base = [lines[i] for i in sorted(perm[:n_base])]
    added = [lines[i] for i in sorted(perm[n_base:])]
    pick = rng.permutation(n_base)
    n5 = max(1, n_base // 20)
    replaced = {base[i]["_id"] for i in pick[:n5]}
    deleted = {base[i]["_id"] for i in pick[n5:2 * n5]}
    # a new text for a replaced document: its title and text swapped (different vectors, same vocabulary)
    new_texts = [dict(obj, title=obj.get("text", ""), text=obj.get("title", "")) for obj in base
                 if obj["_id"] in replaced]
    final = [obj for obj in base if obj["_id"] not in replaced | deleted] + new_texts + added
    out = Path(args.out) if args.out else ROOT / "results" / "live" / f"live-cli-{args.dataset}.json"
    times = {}
    with tempfile.TemporaryDirectory(prefix="lsr-live-cli-") as tmp:
        t = Path(tmp)
        queries = write_jsonl(t / "queries.jsonl", [{"_id": q, "text": text} for q, text in ds.queries.items()])
        (t / "deleted.txt").write_text("".join(f"{d}\n" for d in sorted(deleted)), encoding="utf-8")
        times["build_base_s"] = lsr("index", "build", "--corpus", str(write_jsonl(t / "base.jsonl", base)),
                                    "--encoder", args.encoder, "--out", str(t / "live"))
        times["add_s"] = lsr("index", "add", str(t / "live"), "--corpus",
                             str(write_jsonl(t / "add.jsonl", added + new_texts)))
        times["delete_s"] = lsr("index", "delete", str(t / "live"), "--ids", str(t / "deleted.txt"))
        times["build_fresh_s"] = lsr("index", "build", "--corpus", str(write_jsonl(t / "final.jsonl", final)),
                                     "--encoder", args.encoder, "--out", str(t / "fresh"))
        for name in ("live", "fresh"):
            lsr("search", str(t / name), "--queries", str(queries), "-k", "20", "--out", str(t / f"{name}.run"))
        info = json.loads(subprocess.run([sys.executable, "-m", "lsr", "-q", "index", "info", str(t / "live")],
                                         check=True, capture_output=True, text=True).stdout)
        live_run, fresh_run = read_trec_run(t / "live.run"), read_trec_run(t / "fresh.run")
    kinds: dict[str, list] = {"same": [], "near_tie_order": [], "tie_at_cutoff": [], "differ": []}
    details = {}
    for q in ds.queries:
        full_a, full_b = live_run.get(q, {}), fresh_run.get(q, {})
        kind = compare(full_a, full_b)
        kinds[kind].append(q)
        if kind != "same":
            details[q] = {"live": top10(full_a), "fresh": top10(full_b)}
    differ, ties = kinds["differ"], kinds["tie_at_cutoff"]
    report = {"command": "python benchmarks/live_cli.py " + " ".join(argv or sys.argv[1:]),
              "dataset": args.dataset, "split": args.split, "encoder": args.encoder,
              "documents": {"base": len(base), "added": len(added), "replaced": len(replaced), "deleted": len(deleted),
                            "final": len(final)},
              "live_index": {"n_docs": info["n_docs"], "n_deleted": info["n_deleted"],
                             "segments": len(info["segments"]), "generation": info["generation"]},
              "queries": len(ds.queries), "queries_whose_top10_differs": len(differ),
              "queries_identical": len(kinds["same"]), "queries_ordered_differently_among_near_ties":
              len(kinds["near_tie_order"]), "queries_with_a_tie_at_the_cutoff": len(ties),
              "differing": differ[:5], "near_tie_order": kinds["near_tie_order"][:5], "ties": ties[:5],
              "details": dict(list(details.items())[:6]),
              "seconds": {k: round(v, 1) for k, v in times.items()}, "threads": os.environ.get("OMP_NUM_THREADS")}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 1 if differ or info["n_docs"] != len(final) else 0


if __name__ == "__main__":
    sys.exit(main())
