"""Scratch arrays reused across searches.

A search at a million documents accumulates scores into a 4 MB array per thread; allocating and
zeroing a fresh one costs about as much as the search itself (page faults), so every call after the
first takes one from a pool. Kernels leave the arrays zero again, as they found them.

Thread-safe: concurrent searches each take their own arrays (the pool grows to the peak concurrency);
an array in use by a call that raised is dropped rather than returned, since it may not be zero.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np


class ScratchPool:
    """Zeroed arrays by shape and dtype, lent for the duration of a ``with`` block.

    Example:
        >>> pool = ScratchPool()
        >>> with pool.zeros((2, 8), np.float32) as acc:
        ...     acc[0, 3] = 1.0
        ...     acc[0, 3] = 0.0   # the borrower hands it back zeroed
        >>> pool.size_bytes()
        64
    """

    def __init__(self):
        self._free: dict[tuple, list[np.ndarray]] = {}
        self._lock = threading.Lock()

    def zeros(self, shape: tuple[int, ...], dtype):
        """A zero array of ``shape`` and ``dtype``; it must be zero again when the block ends."""
        return self._lend(shape, dtype, np.zeros, "zeros")

    def empty(self, shape: tuple[int, ...], dtype):
        """An array of ``shape`` and ``dtype`` with any content (kept apart from the zeroed ones)."""
        return self._lend(shape, dtype, np.empty, "empty")

    @contextmanager
    def _lend(self, shape, dtype, make, kind: str):
        key = (tuple(int(s) for s in shape), np.dtype(dtype).str, kind)
        with self._lock:
            free = self._free.get(key)
            arr = free.pop() if free else None
        if arr is None:
            arr = make(key[0], dtype=dtype)
        yield arr  # not in try/finally: an exception drops the array (it may hold partial sums)
        with self._lock:
            self._free.setdefault(key, []).append(arr)

    def size_bytes(self) -> int:
        """Bytes held by arrays not lent out."""
        with self._lock:
            return sum(a.nbytes for free in self._free.values() for a in free)

    def clear(self) -> None:
        """Release every array not lent out."""
        with self._lock:
            self._free.clear()
