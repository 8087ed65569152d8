"""Child process of test_crash.py: adds, upserts, deletes, commits and merges in a loop until killed.

Before each commit it appends its intent (the ids that will then be live, with the version of each one's
vector) to a journal, and after the commit (and any merge) a "done" line with the generation reached, each
fsync'd, so the parent can tell what the index must hold whichever instant the kill came.
"""

import json
import os
import sys
import zlib
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from index.segments import SegmentedIndex  # noqa: E402

DIM = 32


def vector(doc_id: str, version: int) -> sp.csr_array:
    """The vector of a document version, the same in every process (crc32, not the salted hash())."""
    rng = np.random.default_rng(zlib.crc32(f"{doc_id}/{version}".encode()))
    row = (rng.random(DIM) < 0.3) * (rng.random(DIM) + 0.05)
    row[zlib.crc32(doc_id.encode()) % DIM] += 1.0  # never empty
    return sp.csr_array(row.astype(np.float32)[None, :])


def main(path: str, journal: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    live = SegmentedIndex.open(path)
    state = {d: None for d in live.doc_ids}  # id -> version (None: as found)
    with open(journal, "a", encoding="utf-8") as log:
        def write(obj):
            log.write(json.dumps(obj) + "\n")
            log.flush()
            os.fsync(log.fileno())

        step = 0
        while True:
            step += 1
            new = [f"s{seed}-{step}-{i}" for i in range(int(rng.integers(1, 12)))]
            upsert = list(rng.choice(sorted(state), size=min(2, len(state)), replace=False)) if state else []
            ids = new + upsert
            live.add(ids, sp.vstack([vector(d, step) for d in ids], format="csr"))
            for d in ids:
                state[d] = step
            doomed = [d for d in sorted(state) if rng.random() < 0.1 and d not in ids]
            if doomed:
                live.delete(doomed)
                for d in doomed:
                    del state[d]
            write({"intent": {d: v for d, v in state.items()}})
            if rng.random() < 0.15:
                live.commit()
                live.compact()  # a merge of everything, after the commit
            else:
                live.commit()
            write({"done": live.generation})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
