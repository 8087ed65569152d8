"""The training results table: trained models against BM25 and the dense teacher, on test splits.

One command evaluates, on each data set's test split and through lsr's own index (latency, nnz,
FLOPS included), BM25, the zero-shot inference-free baseline (splade-tiny documents, IDF queries),
the dense teacher (all-MiniLM-L6-v2, exact faiss search; effectiveness and latency only) and every
trained model given, and writes one report per data set plus a combined Markdown table:

    python benchmarks/training_results.py --model if-idf=models/inference-free-idf/model \\
        --datasets scifact,nfcorpus --out results/training

``--add`` evaluates only the models given and adds them to the reports already in ``--out``
(a system of the same name is replaced), so a new model joins the table without re-running the
baselines.

Training time is read from the ``summary.json`` next to each model (its training output folder).
Inference-free models index with the IDF of the corpus they index (``use_corpus_idf``), as the
zero-shot baseline does; their ``idf.json`` holds the IDF of the training corpora.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eval import Report, SystemResult, evaluate, load_dataset  # noqa: E402
from eval.efficiency import latency_stats  # noqa: E402
from eval.metrics import parse_measures  # noqa: E402
from lsr import load_encoder  # noqa: E402
from lsr.pipeline import RunSettings, evaluate_dataset  # noqa: E402

QUIET = RunSettings(show_progress=False)

MEASURES = "nDCG@10,RR@10,R@100,R@1000"
logger = logging.getLogger("training_results")


def dense_system(ds, k: int, measures) -> SystemResult:
    """The dense teacher: mean-pooled MiniLM, exact inner product with faiss, one query at a time for latency."""
    from training.teachers import DenseTeacher

    ids, texts = zip(*ds.corpus)
    t0 = time.perf_counter()
    teacher = DenseTeacher("dense", "all-MiniLM-L6-v2", list(texts), show_progress=False)
    encode_s = time.perf_counter() - t0
    qids = list(ds.queries)
    enc_times, search_times, run = [], [], {}
    for q in qids:
        t = time.perf_counter()
        teacher.prepare_queries([ds.queries[q]])
        enc_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        res = teacher.search(k)
        search_times.append(time.perf_counter() - t)
        run[q] = {ids[int(d)]: float(s) for d, s in zip(res.doc_idx[0], res.scores[0]) if d >= 0}
    ev = evaluate(run, ds.qrels, measures)
    eff = {"search_latency": latency_stats(np.asarray(search_times)),
           "query_encode_latency": latency_stats(np.asarray(enc_times)),
           "index_bytes": int(teacher.docs.nbytes), "doc_encode_seconds": encode_s}
    return SystemResult("dense teacher (MiniLM-L6, faiss)", {"model": "all-MiniLM-L6-v2", "k": k}, ev.aggregate, eff,
                        ev.per_query)


def model_encoder(path: str, doc_max_length: int | None = None):
    enc = load_encoder(path)
    if doc_max_length:
        enc.doc_max_length = doc_max_length
    if enc.kind == "inference-free" and enc.query_weights_source == "idf":
        enc.use_corpus_idf()
    return enc


def train_info(model_dir: str) -> dict:
    summary = Path(model_dir).parent / "summary.json"
    if not summary.exists():
        return {}
    s = json.loads(summary.read_text())
    return {"train_steps": s.get("steps"), "train_minutes": round(s.get("train_seconds", 0) / 60, 1)}


def write_table(reports, out: Path, command: str) -> str:
    """table.md: one row per (data set, system); trained systems get a paired test against BM25."""
    lines = ["| data set | system | nDCG@10 | vs BM25: difference [95 % CI], p | R@100 | doc nnz | query nnz | FLOPS "
             "| p50 ms | train min |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, report in reports:
        names = [s.name for s in report.systems]
        versus = {}
        if "BM25" in names and all(s.per_query for s in report.systems):
            versus = {c.system: c for c in report.significance(baseline="BM25", measures=["nDCG@10"])}
        for s in report.systems:
            e = s.efficiency

            def get(key, sub="mean", e=e):
                v = e.get(key)
                return v.get(sub) if isinstance(v, dict) else v

            c = versus.get(s.name)
            vs = "–" if c is None else f"{c.mean_diff:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}], {c.p_adjusted:.2g}"
            cells = [name, s.name, f"{s.effectiveness['nDCG@10']:.4f}", vs, f"{s.effectiveness['R@100']:.4f}"]
            for v, fmt in ((get("doc_nnz"), "{:.1f}"), (get("query_nnz"), "{:.1f}"), (e.get("flops"), "{:.2f}"),
                           (get("search_latency", "p50_ms"), "{:.3f}"), (s.settings.get("train_minutes"), "{}")):
                cells.append("–" if v is None else fmt.format(v))
            lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    note = ("Paired over the test queries: bootstrap interval of the nDCG@10 difference and the two-sided "
            "paired t-test, Holm-adjusted over the systems of a data set (eval/significance.py).\n")
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(f"Command: `{command}`\n\n" + table + "\n" + note, encoding="utf-8")
    print(table)
    return table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=[], metavar="NAME=DIR", help="a trained model (repeat)")
    ap.add_argument("--datasets", default="scifact,nfcorpus")
    ap.add_argument("--split", default="test")
    ap.add_argument("--out", default="results/training")
    ap.add_argument("--no-baselines", action="store_true", help="only the trained models")
    ap.add_argument("--table-only", action="store_true",
                    help="rebuild table.md (and each report.md) from the reports already in --out; evaluates nothing")
    ap.add_argument("--add", action="store_true",
                    help="evaluate only the --model given and add them to the reports already in --out")
    ap.add_argument("-k", type=int, default=1000)
    ap.add_argument("--doc-max-length", type=int, default=None,
                    help="document token limit for every neural encoder (default: each model's own, 256)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    measures = parse_measures(MEASURES)
    models = []
    for item in args.model:
        name, eq, path = item.partition("=")
        if not eq:
            ap.error(f"--model expects NAME=DIR, got {item!r}")
        models.append((name, path))
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    out = Path(args.out)
    if args.add and not models:
        ap.error("--add needs at least one --model NAME=DIR to evaluate")
    saved = {}
    if args.table_only or args.add:
        table_md = out / "table.md"
        if table_md.exists():  # keep the command that produced the reports
            first = table_md.read_text(encoding="utf-8").splitlines()[0]
            earlier = first.removeprefix("Command: `").removesuffix("`")
            if earlier:
                command = earlier if args.table_only else f"{earlier} && {command}"
        for name in args.datasets.split(","):
            folder = out / f"{name}-{args.split}"
            try:
                saved[name] = Report.load(folder)
            except FileNotFoundError:
                ap.error(f"{folder}: no report to {'rebuild the table from' if args.table_only else 'add to'}; "
                         f"run this script without --table-only/--add (same --datasets, --split and --out) "
                         f"to evaluate the baselines first")
    if args.table_only:
        reports = []
        for name, report in saved.items():
            report.save(out / f"{name}-{args.split}")
            reports.append((name, report))
        write_table(reports, out, command)
        return 0
    reports = []
    new_names = {label for label, _ in models}
    for name in args.datasets.split(","):
        ds = load_dataset(name, split=args.split)
        systems = []
        if args.add:  # earlier systems stay, except those the new models replace
            systems.extend(s for s in saved[name].systems if s.name not in new_names)
        elif not args.no_baselines:
            systems.append(evaluate_dataset(ds, "bm25", name="BM25", k=args.k, measures=measures, settings=QUIET))
            zero_shot = "inference-free:model=splade-tiny,dtype=bfloat16"
            if args.doc_max_length:
                zero_shot += f",doc_max_length={args.doc_max_length}"
            systems.append(evaluate_dataset(ds, load_encoder(zero_shot),
                                            name="splade-tiny inference-free (zero-shot)", k=args.k,
                                            measures=measures, settings=QUIET))
            systems.append(dense_system(ds, args.k, measures))
        for label, path in models:
            r = evaluate_dataset(ds, model_encoder(path, args.doc_max_length), name=label, k=args.k,
                                 measures=measures, settings=QUIET)
            r.settings["model_dir"] = path
            r.settings.update(train_info(path))
            systems.append(r)
        report = Report(dataset=ds.describe(), measures=[str(m) for m in measures], systems=systems, command=command)
        report.save(out / f"{name}-{args.split}")
        reports.append((name, report))
    write_table(reports, out, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
