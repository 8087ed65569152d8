"""Every encoder family trained to a result: SPLADE, SLIM's late-interaction gain, l0 against IDF-aware FLOPS.

One command evaluates the models of the three family runs on each data set's test split, through lsr's own
index, and writes ``families.json`` (the shape below), ``families.md`` (the table the README links) and one
report per data set (``families-<data set>-test/``, per-query values kept, so every comparison is paired):

* **SPLADE**: the fine-tuned model against splade-tiny zero-shot (both encode queries with the model):
  nDCG@10, document and query non-zeros, FLOPS, paired test.
* **SLIM**: one index of the SLIM model; every test query answered by the first stage alone (pooled query
  against the index) and by the two stages (the first stage's ``--rerank`` best re-scored by late
  interaction, ``sum_i max_j q_i . d_j``); nDCG@10 of both, paired test, and the median time the second
  stage adds to one query (one query at a time, query encoding included in both).
* **l0 against IDF-aware FLOPS**: two inference-free models trained from the same recipe, data, steps and
  seed, differing only in the regularizer (l0 mask + l0-approximating activation against plain FLOPS),
  each driven by the sparsity controller to the same target; test nDCG@10, mean document non-zeros,
  their relative gap, the paired test, and each run's dev nDCG@10 read from its ``summary.json``.

Usage::

    LSR_DATA=../shared/datasets python benchmarks/families.py --splade models/fam-splade/best \\
        --slim models/fam-slim/model --l0 models/fam-l0/model --idf-flops models/fam-idf/model \\
        --datasets scifact,nfcorpus --out results/training

``--device cuda`` encodes on a GPU (the SLIM variants of ``results/training/families-runs/slim-gpu/`` were
evaluated so; their latencies are then that machine's).

``families.json``::

    {"splade": {"scifact": {"ndcg@10": x, "doc_nnz": x, "query_nnz": x, ...}, "nfcorpus": {...}},
     "slim": {"scifact": {"first_stage_ndcg@10": x, "rescored_ndcg@10": x, "added_ms_per_query": x, ...}},
     "l0_vs_idf_flops": {"scifact": {"l0_ndcg@10": x, "idf_flops_ndcg@10": x, "l0_doc_nnz": x,
                                     "idf_flops_doc_nnz": x, ...}}}

A family whose model is not given is left out of the JSON and the table (and the table says so); with
``--add`` the families already in ``--out`` that this run does not evaluate are kept, so a family joins the
results when its run is done.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from training_results import model_encoder, train_info  # noqa: E402

from eval import Report, SystemResult, evaluate, load_dataset  # noqa: E402
from eval.atomic import atomic_file  # noqa: E402
from eval.efficiency import latency_stats  # noqa: E402
from eval.significance import compare  # noqa: E402
from lsr import load_encoder  # noqa: E402
from lsr.pipeline import Retriever, RunSettings, evaluate_dataset  # noqa: E402

QUIET = RunSettings(show_progress=False)
MEASURES = ["nDCG@10", "RR@10", "R@100"]
SPLADE_ZERO_SHOT = "splade-tiny (zero-shot)"
FAMILIES = ("splade", "slim", "l0_vs_idf_flops")
logger = logging.getLogger("families")


def dev_record(model_dir: str) -> dict:
    """The dev evaluation the model comes from, read from its training run's ``summary.json`` (or ``{}``).

    A ``best/`` model is the run's best evaluation; ``model/`` is the last one."""
    summary = Path(model_dir).parent / "summary.json"
    if not summary.exists():
        return {}
    s = json.loads(summary.read_text())
    evals = s.get("evaluations") or []
    if not evals:
        return {}
    rec = next((e for e in reversed(evals) if e.get("best")), evals[-1]) if Path(model_dir).name == "best" \
        else evals[-1]
    return {"dev_dataset": rec.get("dataset"), "dev_step": rec.get("step"), "dev_ndcg@10": rec.get("nDCG@10"),
            "dev_doc_nnz": rec.get("doc_nnz")}


def paired(ours: SystemResult, theirs: SystemResult, measure: str = "nDCG@10") -> dict:
    c = compare(ours.per_query, theirs.per_query, measure, system=ours.name, baseline=theirs.name)
    return {"difference": c.mean_diff, "ci95": [c.ci_low, c.ci_high], "p_value": c.p_value,
            "wins_losses_ties": [c.wins, c.losses, c.ties]}


def mean_of(stats) -> float | None:
    return None if stats is None else float(stats["mean"] if isinstance(stats, dict) else stats)


def on_device(encoder, device: str):
    """``encoder`` moved to ``device`` (model encoders only; ``"cpu"`` leaves it as it is)."""
    if device != "cpu" and hasattr(encoder, "to"):
        try:
            encoder.to(device)
        except (RuntimeError, ValueError) as e:
            raise SystemExit(f"--device {device}: {e}") from None
    return encoder


def learned(ds, family: str, label: str, encoder, k: int, path: str | None = None) -> SystemResult:
    r = evaluate_dataset(ds, encoder, name=label, k=k, measures=MEASURES, settings=QUIET)
    r.settings["family"] = family
    if path:
        r.settings["model_dir"] = path
        r.settings.update(train_info(path))
        r.settings.update(dev_record(path))
    return r


def slim_systems(ds, path: str, rerank: int, k: int, device: str = "cpu") -> tuple[SystemResult, SystemResult]:
    """The SLIM model's first stage and its two stages on one index, timed one query at a time."""
    enc = on_device(load_encoder(path), device)
    if enc.kind != "slim":
        raise SystemExit(f"--slim {path}: a {enc.kind} model, not SLIM; give the `model/` (or `best/`) folder of "
                         "a `lsr train slim` run")
    enc.rerank = max(rerank, k)
    t0 = time.perf_counter()
    r = Retriever.build(ds.corpus, enc)
    build_s = time.perf_counter() - t0
    qids = list(ds.queries)
    texts = [ds.queries[q] for q in qids]
    reranker = r.reranker

    def first(batch):
        return r.search_vectors(reranker.first_stage(reranker.encode_queries(batch)), k)

    def both(batch):
        return r.search(batch, k)

    out = []
    for label, fn in ((f"SLIM first stage (top {k})", first), (f"SLIM + late interaction on the top {enc.rerank}", both)):
        fn(texts[:2])  # compile and warm outside the clock
        lat = np.empty(len(texts))
        for i, t in enumerate(texts):
            s = time.perf_counter()
            fn([t])
            lat[i] = time.perf_counter() - s
        res = fn(texts)
        ev = evaluate(res.to_run(qids, r.index.doc_ids), ds.qrels, MEASURES)
        eff = {"encode_and_search_latency": latency_stats(lat), "doc_tokens_stored": int(len(r.token_store)),
               "build_seconds": build_s}
        settings = {"family": "slim", "model_dir": path, "device": device, "rerank": enc.rerank if fn is both else 0, "k": k,
                    "token_top_k": enc.token_top_k, **train_info(path), **dev_record(path)}
        out.append(SystemResult(label, settings, ev.aggregate, eff, ev.per_query))
    return out[0], out[1]


def table(families: dict, missing: list[str], command: str) -> str:
    lines = [f"Command: `{command}`", "",
             "Test splits, lsr's exact engine. Paired over the test queries: difference of nDCG@10 with a 95 % "
             "bootstrap interval and the two-sided paired t-test (eval/significance.py).", ""]
    if "splade" in families:
        lines += ["### SPLADE (queries and documents by the model), fine-tuned from splade-tiny", "",
                  "| data set | nDCG@10 | zero-shot | difference [95 % CI], p | doc nnz | query nnz | FLOPS | "
                  "zero-shot doc / query nnz | dev nDCG@10 (step) | train min |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for name, v in families["splade"].items():
            t = v["vs_zero_shot"]
            lines.append(f"| {name} | {v['ndcg@10']:.4f} | {v['zero_shot_ndcg@10']:.4f} | {_diff(t)} | "
                         f"{v['doc_nnz']:.1f} | "
                         f"{v['query_nnz']:.1f} | {v['flops']:.2f} | {v['zero_shot_doc_nnz']:.1f} / "
                         f"{v['zero_shot_query_nnz']:.1f} | {_dev(v)} | {v.get('train_minutes', '–')} |")
        lines.append("")
    if "slim" in families:
        lines += ["### SLIM trained with the late-interaction score: re-scoring against its own first stage", "",
                  "| data set | first stage nDCG@10 | re-scored nDCG@10 | difference [95 % CI], p | "
                  "first stage ms | two stages ms | added ms/query | dev nDCG@10 (step) | train min |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, v in families["slim"].items():
            t = v["rescored_vs_first_stage"]
            lines.append(f"| {name} | {v['first_stage_ndcg@10']:.4f} | {v['rescored_ndcg@10']:.4f} | "
                         f"{_diff(t)} | {v['first_stage_ms_per_query']:.2f} | {v['two_stage_ms_per_query']:.2f} | "
                         f"{v['added_ms_per_query']:.2f} | {_dev(v)} | {v.get('train_minutes', '–')} |")
        lines.append("")
    if "l0_vs_idf_flops" in families:
        lines += ["### l0 (mask + l0-approximating activation) against IDF-aware FLOPS, inference-free, same "
                  "recipe, data, steps and seed", "",
                  "| data set | l0 nDCG@10 | IDF-aware FLOPS nDCG@10 | l0 - FLOPS [95 % CI], p | l0 doc nnz | "
                  "FLOPS doc nnz | nnz gap | dev nDCG@10 l0 / FLOPS |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, v in families["l0_vs_idf_flops"].items():
            t = v["l0_vs_idf_flops"]
            lines.append(f"| {name} | {v['l0_ndcg@10']:.4f} | {v['idf_flops_ndcg@10']:.4f} | {_diff(t)} | "
                         f"{v['l0_doc_nnz']:.1f} | "
                         f"{v['idf_flops_doc_nnz']:.1f} | {100 * v['doc_nnz_gap']:+.1f} % | "
                         f"{_num(v.get('l0_dev_ndcg@10'))} / {_num(v.get('idf_flops_dev_ndcg@10'))} |")
        lines.append("")
    if missing:
        lines += [f"Not evaluated here (no model given): {', '.join(missing)}.", ""]
    return "\n".join(lines)


def _diff(t: dict) -> str:
    """A paired comparison as a table cell: difference [95 % CI], p."""
    return f"{t['difference']:+.4f} [{t['ci95'][0]:+.4f}, {t['ci95'][1]:+.4f}], {t['p_value']:.2g}"


def _num(x) -> str:
    return "–" if x is None else f"{x:.4f}"


def _dev(v: dict) -> str:
    return "–" if v.get("dev_ndcg@10") is None else f"{v['dev_ndcg@10']:.4f} ({v.get('dev_step')})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splade", metavar="DIR", help="the fine-tuned SPLADE model (a `lsr train splade` output)")
    ap.add_argument("--slim", metavar="DIR", help="the SLIM model (a `lsr train slim` output)")
    ap.add_argument("--l0", metavar="DIR", help="the inference-free model trained with the l0 regularizer")
    ap.add_argument("--idf-flops", metavar="DIR", help="the inference-free model trained with IDF-aware FLOPS")
    ap.add_argument("--datasets", default="scifact,nfcorpus")
    ap.add_argument("--split", default="test")
    ap.add_argument("--rerank", type=int, default=100, help="first-stage documents SLIM re-scores (default 100)")
    ap.add_argument("-k", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path("results/training"))
    ap.add_argument("--device", default="cpu", help="where the models encode: cpu (default), cuda, cuda:N or auto "
                    "(latencies are then that machine's)")
    ap.add_argument("--add", action="store_true",
                    help="keep the families (and report systems) already in --out that this run does not evaluate")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if bool(args.l0) != bool(args.idf_flops):
        ap.error("--l0 and --idf-flops go together (they are compared with each other)")
    for flag in ("splade", "slim", "l0", "idf_flops"):
        path = getattr(args, flag)
        if path and not Path(path).is_dir():
            ap.error(f"--{flag.replace('_', '-')} {path}: no such model folder; give the `model/` (or `best/`) "
                     "folder a `lsr train` run wrote")
    if not (args.splade or args.slim or args.l0):
        ap.error("give at least one of --splade, --slim, --l0/--idf-flops")
    if args.device != "cpu":  # before any work: a GPU torch does not see is refused with the fix
        from lsr.encoders.projection import resolve_device

        try:
            resolve_device(args.device)
        except (RuntimeError, ValueError) as e:
            ap.error(f"--device {args.device}: {e}")
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    families: dict[str, dict] = {}
    earlier = {}
    if args.add and (args.out / "families.json").exists():
        try:
            earlier = json.loads((args.out / "families.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            ap.error(f"{args.out / 'families.json'}: not JSON ({e}); delete it and run without --add to rebuild it")
        command = f"{earlier.pop('command')} && {command}" if earlier.get("command") else command
    for name in args.datasets.split(","):
        ds = load_dataset(name, split=args.split)
        systems = []
        if args.splade:
            zero = learned(ds, "splade", SPLADE_ZERO_SHOT, on_device(load_encoder("splade-tiny"), args.device), args.k)
            tuned = learned(ds, "splade", "SPLADE fine-tuned", on_device(model_encoder(args.splade), args.device),
                            args.k, args.splade)
            systems += [zero, tuned]
            e, z = tuned.efficiency, zero.efficiency
            families.setdefault("splade", {})[name] = {
                "ndcg@10": tuned.effectiveness["nDCG@10"], "doc_nnz": mean_of(e.get("doc_nnz")),
                "query_nnz": mean_of(e.get("query_nnz")), "flops": e.get("flops"),
                "zero_shot_ndcg@10": zero.effectiveness["nDCG@10"], "zero_shot_doc_nnz": mean_of(z.get("doc_nnz")),
                "zero_shot_query_nnz": mean_of(z.get("query_nnz")), "zero_shot_flops": z.get("flops"),
                "vs_zero_shot": paired(tuned, zero), **_keep(tuned.settings)}
        if args.slim:
            first, both = slim_systems(ds, args.slim, args.rerank, args.k, args.device)
            systems += [first, both]
            f_ms = first.efficiency["encode_and_search_latency"]["p50_ms"]
            b_ms = both.efficiency["encode_and_search_latency"]["p50_ms"]
            families.setdefault("slim", {})[name] = {
                "first_stage_ndcg@10": first.effectiveness["nDCG@10"],
                "rescored_ndcg@10": both.effectiveness["nDCG@10"], "rerank": both.settings["rerank"],
                "first_stage_ms_per_query": f_ms, "two_stage_ms_per_query": b_ms, "added_ms_per_query": b_ms - f_ms,
                "rescored_vs_first_stage": paired(both, first), **_keep(both.settings)}
        if args.l0:
            fam = "l0_vs_idf_flops"
            l0 = learned(ds, fam, "inference-free, l0 mask + l0 activation", on_device(model_encoder(args.l0), args.device),
                         args.k, args.l0)
            fl = learned(ds, fam, "inference-free, IDF-aware FLOPS", on_device(model_encoder(args.idf_flops), args.device),
                         args.k, args.idf_flops)
            systems += [l0, fl]
            l0_nnz, fl_nnz = mean_of(l0.efficiency.get("doc_nnz")), mean_of(fl.efficiency.get("doc_nnz"))
            families.setdefault("l0_vs_idf_flops", {})[name] = {
                "l0_ndcg@10": l0.effectiveness["nDCG@10"], "idf_flops_ndcg@10": fl.effectiveness["nDCG@10"],
                "l0_doc_nnz": l0_nnz, "idf_flops_doc_nnz": fl_nnz, "doc_nnz_gap": l0_nnz / fl_nnz - 1,
                "l0_flops": l0.efficiency.get("flops"), "idf_flops_flops": fl.efficiency.get("flops"),
                "l0_dev_ndcg@10": l0.settings.get("dev_ndcg@10"), "idf_flops_dev_ndcg@10": fl.settings.get("dev_ndcg@10"),
                "l0_vs_idf_flops": paired(l0, fl)}
        folder = args.out / f"families-{name}-{args.split}"
        if args.add and (folder / "report.json").exists():  # systems of the families not evaluated now stay
            systems = [s for s in Report.load(folder).systems if s.settings.get("family") not in families] + systems
        Report(dataset=ds.describe(), measures=MEASURES, systems=systems, command=command).save(folder)
    for family, per_dataset in earlier.items():
        if family not in families:
            families[family] = per_dataset
    families = {k: families[k] for k in FAMILIES if k in families}
    missing = [label for key, label in zip(FAMILIES, ("SPLADE", "SLIM", "l0 vs FLOPS")) if key not in families]
    families["command"] = command
    md = table({k: v for k, v in families.items() if k != "command"}, missing, command)
    for file, text in (("families.json", json.dumps(families, indent=2)), ("families.md", md)):
        with atomic_file(args.out / file) as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
    print(md)
    return 0


def _keep(settings: dict) -> dict:
    """Training facts carried into families.json: steps, minutes, the dev evaluation."""
    keys = ("train_steps", "train_minutes", "dev_dataset", "dev_step", "dev_ndcg@10", "dev_doc_nnz")
    return {k: settings[k] for k in keys if settings.get(k) is not None}


if __name__ == "__main__":
    sys.exit(main())
