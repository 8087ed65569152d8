"""Flipped bytes in any array of an index give a clear error or a correct answer, never a crash.

"Correct" means: every exact engine returns the oracle's top-k over the postings as loaded. A flip
that changes a posting's impact into another valid impact cannot be told from the data without the
checksum (``verify=True``); the engines must still agree with their own data rather than read outside it.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from index import InvertedIndex
from index.inverted import OPTIONAL_ARRAYS, REQUIRED_ARRAYS

WORKER = Path(__file__).with_name("fuzz_worker.py")
CASES = 12


def random_csr(rng, n, dim, density):
    mask = rng.random((n, dim)) < density
    return sp.csr_array(np.where(mask, rng.random((n, dim)) + 0.01, 0).astype(np.float32))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("fuzz")
    docs = random_csr(rng, 300, 40, 0.15)
    np.save(root / "queries.npy", random_csr(rng, 6, 40, 0.2).toarray())
    InvertedIndex.build(docs, block_max=True, block_size=16, reorder="bp").save(root / "float")
    InvertedIndex.build(docs, block_max=True, block_size=16, quantization="uint8").save(root / "uint8")
    return root


@pytest.mark.parametrize("variant", ["float", "uint8"])
def test_flipped_bytes_never_crash(saved, variant, tmp_path):
    arrays = [*REQUIRED_ARRAYS, *(a for a in OPTIONAL_ARRAYS if (saved / variant / f"{a}.npy").exists())]
    procs = []
    for i, array in enumerate(arrays):
        work = tmp_path / array
        work.mkdir()
        procs.append((array, subprocess.Popen(
            [sys.executable, str(WORKER), str(saved / variant), array, str(CASES), str(1000 + i), str(work)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
        if len(procs) >= 2:  # two at a time: the machine has two cores
            _check(*procs.pop(0))
    for array, p in procs:
        _check(array, p)


def _check(array, proc):
    out, err = proc.communicate(timeout=300)
    lines = out.splitlines()
    last_case = next((ln for ln in reversed(lines) if ln.startswith("CASE")), None)
    assert proc.returncode == 0, (f"{array}: the worker died with exit {proc.returncode} at {last_case}:\n"
                                  f"{out[-2000:]}\n{err[-2000:]}")
    outcomes = [ln.split()[0] for ln in lines if not ln.startswith("CASE")]
    assert len(outcomes) == CASES and set(outcomes) <= {"error", "exact"}, out
