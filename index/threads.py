"""The Numba thread count for a block of code, restored afterwards (no hidden global change)."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def numba_threads(n: int | None):
    """Run the block with ``n`` Numba threads, restoring the previous setting afterwards."""
    if n is None:
        yield
        return
    import numba

    n = int(n)
    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"threads must be in [1, {numba.config.NUMBA_NUM_THREADS}], got {n}")
    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(before)
