"""`lsr serve` under load and under kill -9, on loopback.

    LSR_DATA=../shared/datasets .venv/bin/python benchmarks/serve_load.py --dataset scifact --seconds 60 --clients 16 --kills 20

1. Load: a BM25 index of the collection (built, then served: it becomes live) takes ``--clients`` concurrent
   clients for ``--seconds``: each loops over the collection's queries (``POST /search``, k=10, explained) and,
   one request in ten, writes (adds a document; one write in five with ``commit=true``). Prints requests, errors
   (any non-2xx or transport error), QPS and p50 / p99 latency per kind; the bar is zero errors.
2. Faults: ``--kills`` times, a writer adds documents with ``commit=true`` one after the other while the server
   is killed with SIGKILL at a random instant (0.2-3 s after the writer starts); the server is restarted and
   every write acknowledged with ``"committed": true`` must be found (``GET /documents/{id}``) and searchable.
   A write whose response never came may or may not be there (it was never acknowledged).

Writes ``results/serve/load-<dataset>.json``; exits 1 on any error or lost write.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eval import load_dataset  # noqa: E402
from eval.datasets import load_corpus  # noqa: E402
from lsr.serve import ServerProcess  # noqa: E402


def load(server, queries: list[str], seconds: float, clients: int, seed: int) -> dict:
    stop = time.time() + seconds
    lat: dict[str, list[float]] = {"search": [], "write": [], "write+commit": []}
    errors: list[str] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        rng = random.Random(seed + c)
        n = 0
        while time.time() < stop:
            n += 1
            if rng.random() < 0.1:
                commit = rng.random() < 0.2
                kind = "write+commit" if commit else "write"
                body = {"documents": [{"id": f"load-{c}-{n}", "title": "load test",
                                       "text": rng.choice(queries)}], "commit": commit}
                method, path = "POST", "/documents"
            else:
                kind, method, path = "search", "POST", "/search"
                body = {"query": rng.choice(queries), "k": 10}
            t0 = time.perf_counter()
            try:
                status, answer = server.call(method, path, body)
                ok = 200 <= status < 300
            except OSError as e:
                status, answer, ok = None, {"error": repr(e)}, False
            dt = time.perf_counter() - t0
            with lock:
                lat[kind].append(dt)
                if not ok:
                    errors.append(f"{kind} {status}: {answer.get('error')}")

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    out = {"seconds": round(wall, 1), "clients": clients, "errors": len(errors), "first_errors": errors[:5]}
    total = 0
    for kind, ts in lat.items():
        total += len(ts)
        if ts:
            a = np.asarray(ts) * 1e3
            out[kind] = {"requests": len(ts), "p50_ms": round(float(np.percentile(a, 50)), 2),
                         "p99_ms": round(float(np.percentile(a, 99)), 2)}
    out["requests"] = total
    out["qps"] = round(total / wall, 1)
    return out


def faults(index: Path, kills: int, seed: int) -> dict:
    rng = random.Random(seed)
    acknowledged: list[str] = []
    rounds = []
    for r in range(kills):
        server = ServerProcess(index)
        done = threading.Event()
        acked_now: list[str] = []

        def writer() -> None:
            i = 0
            while not done.is_set():
                doc_id = f"crash-{r}-{i}"
                i += 1
                try:
                    status, answer = server.call("POST", "/documents", {
                        "documents": [{"id": doc_id, "text": f"crash test document {r} {i} insulin",
                                       "fields": {"crash": doc_id}}],
                        "commit": True}, timeout=30)
                except OSError:
                    return  # the server died mid-request: this write was never acknowledged
                if status == 200 and answer.get("committed") is True:
                    acked_now.append(doc_id)

        t = threading.Thread(target=writer)
        t.start()
        time.sleep(rng.uniform(0.2, 3.0))
        server.kill9()
        done.set()
        t.join()
        acknowledged.extend(acked_now)
        rounds.append(len(acked_now))
    server = ServerProcess(index)
    try:
        missing = [d for d in acknowledged if server.call("GET", f"/documents/{d}")[0] != 200]
        sample = acknowledged[-20:]
        unsearchable = []
        for d in sample:  # its text's one word the BM25 vocabulary knows, filtered to the document
            res = server.call("POST", "/search", {"query": "insulin", "k": 10, "filter": {"crash": d}})[1]
            if [h["id"] for h in res.get("results", [])] != [d]:
                unsearchable.append(d)
    finally:
        server.kill9()
    return {"kills": kills, "acknowledged_committed_writes": len(acknowledged), "per_round": rounds,
            "missing_after_restart": missing, "not_found_by_search_of_last_20": unsearchable}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="scifact")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    from lsr import load_encoder
    from lsr.pipeline import Retriever

    ds = load_dataset(args.dataset, data_dir=args.data_dir)
    queries = list(ds.queries.values())
    report = {"command": "python benchmarks/serve_load.py " + " ".join(argv or sys.argv[1:]), "dataset": args.dataset,
              "encoder": "bm25", "machine_cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="lsr-serve-load-") as tmp:
        index = Path(tmp) / "idx"
        Retriever.build(load_corpus(ds.source, fields=True), load_encoder("bm25"), show_progress=False,
                        store=True).save(index)
        server = ServerProcess(index)
        try:
            report["load"] = load(server, queries, args.seconds, args.clients, args.seed)
        finally:
            server.kill9()
        report["faults"] = faults(index, args.kills, args.seed)
    out = Path(args.out) if args.out else ROOT / "results" / "serve" / f"load-{args.dataset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    f = report["faults"]
    bad = report["load"]["errors"] or f["missing_after_restart"] or f["not_found_by_search_of_last_20"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
