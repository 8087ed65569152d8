"""The sparse-vector contract shared by encoders, the index and training.

A batch of sparse vectors is a CSR matrix with

* ``indptr``  int64, ``n + 1`` entries, starting at 0 and non-decreasing;
* ``indices`` int32, term ids in ``[0, dim)``, strictly increasing within a row;
* ``data``    float32, finite and ``> 0`` (explicit zeros are dropped);
* ``dim``     the vocabulary size (the number of columns).

:func:`as_csr` is the one boundary where any accepted input is checked and normalised into a
``scipy.sparse.csr_array`` with exactly those dtypes; code past it trusts the types. (scipy's
``tocoo()`` refuses mixed int64/int32 index arrays: expand rows with ``np.repeat`` over ``indptr``.)

Example
-------
>>> import numpy as np
>>> from index.sparse import SparseBatch, as_csr
>>> batch = SparseBatch(indptr=np.array([0, 2, 2]), indices=np.array([3, 1]),
...                     data=np.array([0.5, 2.0]), dim=10)
>>> m = as_csr(batch)          # row 0 gets its term ids sorted: [1, 3]
>>> m.indices.tolist(), m.shape
([1, 3], (2, 10))
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .errors import InvalidSparseError

INDPTR_DTYPE = np.int64
INDICES_DTYPE = np.int32
DATA_DTYPE = np.float32

ACCEPTED = (
    "a scipy.sparse matrix or array (CSR preferred), an index.SparseBatch(indptr, indices, data, dim), "
    "or a dense 2-D numpy array"
)


class SparseBatch(NamedTuple):
    """Raw CSR arrays of a batch of sparse vectors (the contract without scipy)."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    dim: int

    def to_csr(self) -> sp.csr_array:
        """Validate and convert to a ``scipy.sparse.csr_array`` (see :func:`as_csr`)."""
        return as_csr(self)


def _raw_to_csr(indptr, indices, data, dim, name: str) -> sp.csr_array:
    indptr = np.asarray(indptr)
    indices = np.asarray(indices)
    data = np.asarray(data)
    if indptr.ndim != 1 or indices.ndim != 1 or data.ndim != 1:
        raise InvalidSparseError(f"{name}: indptr, indices and data must be 1-D arrays")
    if indptr.size == 0 or indptr[0] != 0:
        raise InvalidSparseError(f"{name}: indptr must start with 0 (got {indptr[:1].tolist()})")
    if indices.size != data.size:
        raise InvalidSparseError(
            f"{name}: indices ({indices.size}) and data ({data.size}) must have the same length"
        )
    if indptr[-1] != indices.size:
        raise InvalidSparseError(
            f"{name}: indptr ends at {int(indptr[-1])} but there are {indices.size} entries"
        )
    if np.any(np.diff(indptr) < 0):
        raise InvalidSparseError(f"{name}: indptr must be non-decreasing")
    if not np.issubdtype(indices.dtype, np.integer):
        raise InvalidSparseError(f"{name}: term ids must be integers, got dtype {indices.dtype}")
    if dim is None or int(dim) < 0:
        raise InvalidSparseError(f"{name}: a non-negative dimension (vocabulary size) is required")
    dim = int(dim)
    if indices.size and (indices.min() < 0 or indices.max() >= dim):
        bad = int(indices.min()) if indices.min() < 0 else int(indices.max())
        raise InvalidSparseError(
            f"{name}: term id {bad} is outside the dimension [0, {dim}); "
            "were the vectors encoded with another vocabulary?"
        )
    n = indptr.size - 1
    return sp.csr_array((data, indices.astype(np.int64), indptr.astype(np.int64)), shape=(n, dim))


def as_csr(x, dim: int | None = None, *, name: str = "sparse batch") -> sp.csr_array:
    """Check ``x`` against the sparse contract and return a normalised ``csr_array``.

    Args:
        x: any of the accepted inputs: a ``scipy.sparse`` matrix or array (any format), a
            :class:`SparseBatch`, or a dense 2-D array (zeros are dropped).
        dim: if given, the required number of columns (the vocabulary size of the index).
        name: what the batch is, for error messages ("queries", "documents"...).

    Returns:
        A ``csr_array`` with int64 ``indptr``, int32 ``indices`` sorted within each row, no
        duplicate entries (duplicates are summed), float32 ``data`` that is finite and > 0.
        Input that already satisfies the contract is returned without copying its arrays.

    Raises:
        InvalidSparseError: wrong type or shape, a term id outside the dimension, a NaN,
            infinite or negative weight.
    """
    if isinstance(x, SparseBatch):
        m = _raw_to_csr(x.indptr, x.indices, x.data, x.dim, name)
    elif sp.issparse(x):
        m = x if x.format == "csr" else x.tocsr()
        if not isinstance(m, sp.csr_array):
            m = sp.csr_array(m)
    elif isinstance(x, np.ndarray) or (hasattr(x, "__array__") and not isinstance(x, (str, bytes))):
        arr = np.asarray(x)
        if arr.ndim != 2:
            raise InvalidSparseError(f"{name}: a dense input must be 2-D, got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number):
            raise InvalidSparseError(f"{name}: a dense input must be numeric, got dtype {arr.dtype}")
        m = sp.csr_array(arr)
    else:
        raise InvalidSparseError(f"{name}: expected {ACCEPTED}; got {type(x).__name__}")

    if m.ndim != 2:
        raise InvalidSparseError(f"{name}: expected a 2-D matrix, got {m.ndim} dimensions")
    if dim is not None and m.shape[1] != dim:
        raise InvalidSparseError(
            f"{name}: dimension {m.shape[1]} does not match the expected {dim}; "
            "queries and documents must share one vocabulary"
        )
    if m.shape[1] > np.iinfo(INDICES_DTYPE).max:
        raise InvalidSparseError(f"{name}: dimension {m.shape[1]} does not fit int32 term ids")

    data = m.data
    if data.size:
        if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
            raise InvalidSparseError(f"{name}: weights must be real numbers, got dtype {data.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):
            data32 = data.astype(DATA_DTYPE, copy=False)
        finite = np.isfinite(data32)
        if not finite.all():
            pos = int(np.flatnonzero(~finite)[0])
            row = int(np.searchsorted(m.indptr, pos, side="right") - 1)
            raise InvalidSparseError(
                f"{name}: row {row} has a non-finite weight ({data[pos]!r}, or too large for float32); "
                "weights must be finite and > 0"
            )
        if (data32 < 0).any():
            pos = int(np.flatnonzero(data32 < 0)[0])
            row = int(np.searchsorted(m.indptr, pos, side="right") - 1)
            raise InvalidSparseError(
                f"{name}: row {row} has a negative weight ({float(data32[pos])}); "
                "weights must be > 0 (apply ReLU or drop the term)"
            )

    canonical = bool(m.has_canonical_format) and not (data.size and (data == 0).any())
    if not canonical:
        m = m.copy()
        m.sum_duplicates()
        m.eliminate_zeros()
    if (
        m.indptr.dtype != INDPTR_DTYPE
        or m.indices.dtype != INDICES_DTYPE
        or m.data.dtype != DATA_DTYPE
    ):
        m = sp.csr_array(
            (
                m.data.astype(DATA_DTYPE, copy=False),
                m.indices.astype(INDICES_DTYPE, copy=False),
                m.indptr.astype(INDPTR_DTYPE, copy=False),
            ),
            shape=m.shape,
        )
        # scipy may upcast index arrays while constructing; force the contract's dtypes.
        m.indices = m.indices.astype(INDICES_DTYPE, copy=False)
        m.indptr = m.indptr.astype(INDPTR_DTYPE, copy=False)
    return m
