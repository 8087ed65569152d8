"""Run by test_fuzz.py in a subprocess: flip random bytes of one array of a saved index, load, search.

Each case prints one line: ``CASE i`` before it starts, then ``error`` (refused with an lsr error) or
``exact`` (loaded, and every exact engine returned the oracle's top-k over the index's own postings).
A wrong answer raises (exit 1); a crash kills the process (negative exit code), and the last
``CASE`` line tells which flip did it.
"""

import shutil
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from index import Approx, InvertedIndex, brute_force_search
from index.errors import IndexFormatError


def main(src: str, array: str, cases: int, seed: int, work: str) -> None:
    rng = np.random.default_rng(seed)
    q = sp.csr_array(np.load(Path(src).parent / "queries.npy"))
    for case in range(cases):
        print(f"CASE {case}", flush=True)
        dst = Path(work) / f"case-{case}"
        shutil.copytree(src, dst)
        f = dst / f"{array}.npy"
        raw = bytearray(f.read_bytes())
        data_start = 10 + int.from_bytes(raw[8:10], "little")  # .npy version 1: the header's length
        for _ in range(int(rng.integers(1, 4))):
            # mostly in the data (the header is most of a small array's file), sometimes anywhere
            lo = data_start if rng.random() < 0.8 and data_start < len(raw) else 0
            pos = int(rng.integers(lo, len(raw)))
            raw[pos] ^= int(rng.integers(1, 256))
        f.write_bytes(bytes(raw))
        try:
            idx = InvertedIndex.load(dst)
            idx.doc_ids.tolist()
        except (IndexFormatError, ValueError) as e:
            print(f"error {type(e).__name__}: {str(e)[:120]}", flush=True)
            shutil.rmtree(dst)
            continue
        ref = brute_force_search(idx.document_vectors(), q, k=5)
        engines = ["auto", "taat", "oracle"] + (["blockmax"] if idx.has_block_max else [])
        for engine in engines:
            res = idx.search(q, k=5, engine=engine)
            if not (np.array_equal(res.doc_idx, ref.doc_idx) and np.allclose(res.scores, ref.scores, rtol=1e-5)):
                raise AssertionError(f"case {case}: engine {engine} differs from the oracle over the loaded postings")
        try:  # approximate search builds the forward index, which checks every document's length first
            idx.search(q, k=5, approx=Approx(max_postings=3, candidates=10))
            idx.search(q, k=5, engine="taat", approx=Approx(query_terms=2))
        except IndexFormatError as e:
            print(f"error {type(e).__name__}: {str(e)[:120]}", flush=True)
        else:
            print("exact", flush=True)
        del idx
        shutil.rmtree(dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
