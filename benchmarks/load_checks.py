"""What the checks on every load cost: ``InvertedIndex.load`` against one plain read of the same arrays.

Every load checks what the search kernels trust (offsets, document ranges and order, impacts, block-max
entries and maxima, document lengths) in one pass over the postings. This measures that pass on a
synthetic SPLADE-like index (``synthetic.py``), float32 and uint8, with the page cache warm, and prints it
against a baseline from the same run: summing every posting array once (numpy, one sequential read):

    python benchmarks/load_checks.py --docs 1000000

Writes ``results/engine/load-checks-<docs>.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import synthetic  # noqa: E402

from index import InvertedIndex  # noqa: E402
from index.storage import MANIFEST  # noqa: E402
from index.tuning import median_seconds  # noqa: E402


def best_of(fn, repeats: int) -> float:
    """Median seconds of ``fn`` (the tuner's timer) after one warm call: page cache, Numba's compiled kernel."""
    fn()
    return median_seconds(fn, repeats)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None, help="result JSON (default results/engine/load-checks-<docs>.json)")
    args = ap.parse_args(argv)
    docs, _, _ = synthetic.generate(args.docs, 1, seed=0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="lsr-load-checks-") as tmp:
        for quantization in (None, "uint8"):
            path = Path(tmp) / f"idx-{quantization}"
            InvertedIndex.build(docs, quantization=quantization, block_max=True).save(path)
            manifest = json.loads((path / MANIFEST).read_text())

            def plain_read(path=path):  # the baseline: every posting array read once
                for name in ("posting_docs", "posting_impacts", "term_offsets", "bm_blocks", "bm_max", "bm_start"):
                    np.load(path / f"{name}.npy", mmap_mode="r").sum()

            load = best_of(lambda path=path: InvertedIndex.load(path), args.repeats)
            read = best_of(plain_read, args.repeats)
            verify = best_of(lambda path=path: InvertedIndex.load(path, verify=True), max(1, args.repeats // 2))
            nnz = manifest["nnz"]
            rows.append({"impacts": quantization or "float32", "postings": nnz, "block_entries": manifest["n_block_entries"],
                         "load_s": load, "plain_read_s": read, "load_verify_s": verify,
                         "load_ms_per_million_postings": 1e3 * load / (nnz / 1e6), "load_over_read": load / read})
    result = {"docs": args.docs, "machine": {"cpu": platform.processor() or platform.machine(),
                                             "python": platform.python_version()}, "rows": rows}
    out = Path(args.out) if args.out else ROOT / "results" / "engine" / f"load-checks-{args.docs}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"| impacts ({args.docs:,} docs) | postings | load (checks) ms | ms per 1M postings | plain read ms | "
          "load / read | load --verify ms |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['impacts']} | {r['postings']:,} | {1e3 * r['load_s']:.0f} | {r['load_ms_per_million_postings']:.2f} | "
              f"{1e3 * r['plain_read_s']:.0f} | {r['load_over_read']:.2f}x | {1e3 * r['load_verify_s']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
