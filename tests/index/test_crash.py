"""kill -9 while adding, deleting, committing or merging: the index opens, equals its last commit, and every
committed document is there and found by search (bounded: 20 kills at random instants, ~45 s)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from index.segments import SegmentedIndex

WORKER = Path(__file__).with_name("crash_worker.py")
KILLS = 20


def _journal_states(journal: Path) -> tuple[dict, dict | None, int]:
    """(the live set of the last commit that returned, the live set of a commit the kill interrupted or None,
    the generation the last returned commit reached)."""
    committed, pending, done = {}, None, 0
    for line in journal.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by the kill
        if "intent" in rec:
            pending = rec["intent"]
        else:
            committed, pending, done = pending, None, rec["done"]
    return committed, pending, done


@pytest.mark.slow
def test_kill_9_loses_no_committed_write(tmp_path):
    sys.path.insert(0, str(WORKER.parent))
    from crash_worker import DIM, vector

    path = tmp_path / "live"
    SegmentedIndex.create(path, DIM, max_segments=3, merge_factor=2, build={"block_size": 8})
    journal = tmp_path / "journal.jsonl"
    rng = np.random.default_rng(0)
    expected_ids: dict = {}
    for kill in range(KILLS):
        proc = subprocess.Popen([sys.executable, str(WORKER), str(path), str(journal), str(kill)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(float(rng.uniform(0.8, 3.0)))
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.kill()  # SIGKILL
        proc.wait()
        live = SegmentedIndex.open(path)
        committed, pending, done = _journal_states(journal)
        g = live.generation
        assert g >= done, f"kill {kill}: generation {g} is older than the last commit that returned ({done})"
        found = sorted(live.doc_ids)
        # the last returned commit, or the one the kill interrupted if its commit point was already written
        if pending is not None and found == sorted(pending):
            expected_ids = pending
        else:
            expected_ids = committed
        assert found == sorted(expected_ids), f"kill {kill}: generation {g} holds other documents than committed"
        if expected_ids:  # committed documents are searchable: each one's own vector finds it first
            sample = sorted(expected_ids)[:: max(1, len(expected_ids) // 15)]
            queries = sp.vstack([vector(d, expected_ids[d]) if expected_ids[d] is not None else
                                 live.segments[0].index.document_vectors()[[0]] for d in sample], format="csr")
            res = live.search(queries, k=live.n_docs)
            for i, d in enumerate(sample):
                if expected_ids[d] is not None:  # found, with the score of its own vector against itself
                    own = float((queries[[i]] @ queries[[i]].T).toarray()[0, 0])
                    got = {live.doc_ids[int(j)]: s for j, s in zip(res.doc_idx[i], res.scores[i]) if j >= 0}
                    assert d in got and np.isclose(got[d], own, rtol=1e-5), f"kill {kill}: {d} not found"
