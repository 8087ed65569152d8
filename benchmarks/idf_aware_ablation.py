"""IDF-aware FLOPS against plain FLOPS, at equal document non-zeros, on a held-out split.

Geng et al. 2024 (arXiv 2411.04403) train inference-free models with IDF-weighted queries in the
ranking score, so the FLOPS penalty competes with an IDF-scaled ranking gradient and prunes
low-IDF expansions first. This runner trains two models that differ only in that choice
(``model.query_weights`` ``"idf"`` against ``"binary"``: every query token weighs 1 while
training), both with the same sparsity *target* (the controller sets each run's lambda so that both
end at the same document non-zeros), then evaluates both with IDF query weights of the indexed
corpus on a split neither trained on (NFCorpus dev by default; the training splits are SciFact and
NFCorpus train). One command:

    python benchmarks/idf_aware_ablation.py --steps 300 --target-nnz 120 --out results/training/idf-aware-ablation
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eval import Report, load_dataset  # noqa: E402
from lsr import load_encoder  # noqa: E402
from lsr.pipeline import RunSettings, evaluate_dataset  # noqa: E402
from training import load_config, train  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="inference-free-idf")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--target-nnz", type=float, default=120)
    ap.add_argument("--dataset", default="nfcorpus")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--models", default="models/ablation")
    ap.add_argument("--out", default="results/training/idf-aware-ablation")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    ds = load_dataset(args.dataset, split=args.split)
    systems = []
    for arm in ("idf", "binary"):
        out = Path(args.models) / arm
        cfg = load_config(args.recipe, {
            "output_dir": str(out), "model.query_weights": arm, "optim.steps": args.steps, "optim.max_minutes": None,
            "optim.warmup_steps": min(100, args.steps // 5), "eval.every": 0, "eval.dataset": None,
            "regularizer.doc.target_nnz": args.target_nnz, "regularizer.doc.warmup_steps": min(200, args.steps // 3),
            "checkpoint.every": args.steps,
            "data.negatives.cache_dir": str(Path(args.models) / "negatives")})
        result = train(cfg)
        enc = load_encoder(result.model_dir).use_corpus_idf()  # both evaluated with IDF queries
        name = "IDF-aware FLOPS (IDF queries in training)" if arm == "idf" else "plain FLOPS (binary queries in training)"
        r = evaluate_dataset(ds, enc, name=name, k=1000, measures="nDCG@10,RR@10,R@100",
                             settings=RunSettings(show_progress=False))
        r.settings.update(train_steps=result.steps, train_minutes=round(result.seconds / 60, 1), query_weights=arm,
                          target_nnz=args.target_nnz)
        systems.append(r)
    report = Report(dataset=ds.describe(), measures=["nDCG@10", "RR@10", "R@100"], systems=systems, command=command)
    report.save(args.out)
    print(report.to_markdown())
    print(json.dumps({s.name: {**s.effectiveness, "doc_nnz": s.efficiency["doc_nnz"]["mean"]} for s in systems},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
