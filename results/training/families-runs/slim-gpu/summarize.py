"""summary.json and summary.md of the SLIM variants trained and evaluated on a borrowed GPU (issue 20).

Reads this folder's runs/<variant>/ (config.json, eval_log.jsonl, train_log.jsonl.gz) and test/<variant>/
families.json (written on the GPU machine by benchmarks/families.py --device cuda), and writes one row per
variant: what differs from the recipe, steps, dev nDCG@10 of the model kept, the token-vector non-zeros
over training (first step, the minimum, the last step) and the test comparison of re-scoring against the
first stage. Usage: python results/training/families-runs/slim-gpu/summarize.py
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def describe(cfg: dict) -> dict:
    backbone = "all-MiniLM-L6-v2 + new MLM head" if "minilm" in cfg["model"]["backbone"] else "splade-tiny"
    teachers = cfg["loss"]["teacher_weights"]
    return {"backbone": backbone,
            "teachers": "+".join(t for t, w in teachers.items() if w > 0),
            "flops_weight": cfg["regularizer"]["doc"]["weight"], "lr": cfg["optim"]["lr"]}


def token_nnz(path: Path, kept_step: int) -> dict:
    rows = [json.loads(line) for line in gzip.open(path, "rt")]
    kept = next(r for r in rows if r["step"] == kept_step)
    doc = [r["doc_token_nnz"] for r in rows]
    query = [r["query_token_nnz"] for r in rows]
    low = min(range(len(doc)), key=doc.__getitem__)
    return {"steps_logged": len(rows), "doc_token_nnz_first": doc[0], "query_token_nnz_first": query[0],
            "doc_token_nnz_min": doc[low], "doc_token_nnz_min_step": rows[low]["step"],
            "doc_token_nnz_last": doc[-1], "query_token_nnz_last": query[-1],
            "pooled_doc_nnz_last": rows[-1]["doc_nnz"], "doc_token_nnz_kept": kept["doc_token_nnz"],
            "query_token_nnz_kept": kept["query_token_nnz"]}


def main() -> int:
    out = {}
    for run in sorted((HERE / "runs").iterdir()):
        if not run.is_dir():
            continue
        cfg = json.loads((run / "config.json").read_text())
        evals = [json.loads(line) for line in open(run / "eval_log.jsonl")]
        kept = [e for e in evals if e.get("best")][-1]
        nnz = token_nnz(run / "train_log.jsonl.gz", kept["step"])
        rec = {**describe(cfg), "steps_trained": nnz["steps_logged"], "dev_step": kept["step"],
               "dev_ndcg@10": kept["nDCG@10"], **nnz}
        test = json.loads((HERE / "test" / run.name / "families.json").read_text())["slim"]
        for ds, v in test.items():
            t = v["rescored_vs_first_stage"]
            rec[ds] = {"first_stage_ndcg@10": v["first_stage_ndcg@10"], "rescored_ndcg@10": v["rescored_ndcg@10"],
                       "difference": t["difference"], "ci95": t["ci95"], "p_value": t["p_value"],
                       "wins_losses_ties": t["wins_losses_ties"], "added_ms_per_query_gpu": v["added_ms_per_query"]}
        out[run.name] = rec
    lines = ["| variant | backbone | teachers | FLOPS weight | lr | steps | dev nDCG@10 (step) | "
             "doc / query token nnz: first, min (step), last, model kept | SciFact first → re-scored, diff [95 % CI], p | "
             "NFCorpus first → re-scored, diff [95 % CI], p |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in out.items():
        cells = []
        for ds in ("scifact", "nfcorpus"):
            v = r[ds]
            cells.append(f"{v['first_stage_ndcg@10']:.4f} → {v['rescored_ndcg@10']:.4f}, {v['difference']:+.4f} "
                         f"[{v['ci95'][0]:+.4f}, {v['ci95'][1]:+.4f}], {v['p_value']:.2g}")
        lines.append(f"| {name} | {r['backbone']} | {r['teachers']} | {r['flops_weight']:g} | {r['lr']:g} | "
                     f"{r['steps_trained']} | {r['dev_ndcg@10']:.4f} ({r['dev_step']}) | "
                     f"{r['doc_token_nnz_first']:.2f} / {r['query_token_nnz_first']:.2f}, "
                     f"{r['doc_token_nnz_min']:.2f} ({r['doc_token_nnz_min_step']}), "
                     f"{r['doc_token_nnz_last']:.2f} / {r['query_token_nnz_last']:.2f}, "
                     f"{r['doc_token_nnz_kept']:.2f} / {r['query_token_nnz_kept']:.2f} | {cells[0]} | {cells[1]} |")
    (HERE / "summary.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    (HERE / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
