"""Compile (or load from Numba's cache) every kernel a build and a search will use, before timing them.

Numba compiles a kernel on its first call in a process (from its on-disk cache when ``cache=True``
has one: still tens of milliseconds a kernel). Timed without a warm-up, the first system of a run pays
for it: the README's first command once reported BM25 at 182 queries per second and a 1.5 s build, and
7,072 / 0.17 s when run again. :func:`warm_up` builds and searches a tiny index with the same options
(kernels are specialised by impact dtype), so the timings that follow measure the work alone.

Example:
    >>> from index.warmup import warm_up
    >>> warm_up(quantization="uint8", block_max="auto")    # before timing a build with these options
"""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp

from .inverted import DEFAULT_BLOCK_SIZE, Approx, InvertedIndex

logger = logging.getLogger(__name__)

#: what reports say was warmed up before timing
WARMUP_NOTE = ("before timing, the index kernels were compiled on a 64-document index built with the same options "
               "and searched by every engine (one query, then a batch), and one real query was encoded and searched")


def warm_up(*, quantization: str | None = None, block_size: int = DEFAULT_BLOCK_SIZE, block_max: bool | str = "auto",
            reorder: str | None = None) -> float:
    """Build a tiny index with these options and search it with every engine; returns the seconds it took."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    n, dim = 64, 16
    dense = (rng.random((n, dim)) < 0.3) * (rng.random((n, dim)).astype(np.float32) + 0.1)
    dense[np.arange(n), rng.integers(0, dim, n)] = 1.0  # no empty document
    docs = sp.csr_array(dense.astype(np.float32))
    idx = InvertedIndex.build(docs, quantization=quantization, block_size=min(block_size, 8),
                              block_max=True if block_max == "auto" else block_max, reorder=reorder)
    queries = sp.csr_array(docs[:3])
    for batch in (queries[:1], queries):  # one query runs serial kernels, a batch the parallel ones
        for engine in ("taat", "auto", "oracle") + (("blockmax",) if idx.has_block_max else ()):
            idx.search(batch, k=5, engine=engine)
        idx.search(batch, k=5, approx=Approx(query_terms=2, max_postings=4, candidates=8))
        if idx.has_block_max:
            idx.search(batch, k=5, approx=Approx(max_blocks=2))
    seconds = time.perf_counter() - t0
    logger.debug("warm-up: %.2f s", seconds)
    return seconds
