import numpy as np
import pytest
import scipy.sparse as sp

from index import InvalidSparseError, SparseBatch, as_csr


def test_contract_dtypes_and_no_copy_when_canonical():
    m = sp.csr_array((np.array([1.0, 2.0], np.float32), np.array([0, 3], np.int32), np.array([0, 2, 2], np.int64)),
                     shape=(2, 5))
    m.indices = m.indices.astype(np.int32)
    m.indptr = m.indptr.astype(np.int64)
    out = as_csr(m)
    assert out.indptr.dtype == np.int64 and out.indices.dtype == np.int32 and out.data.dtype == np.float32
    assert out is m


def test_unsorted_duplicates_and_zeros_are_normalised():
    b = SparseBatch(indptr=np.array([0, 3, 4]), indices=np.array([4, 1, 4, 2]),
                    data=np.array([1.0, 2.0, 0.5, 0.0]), dim=6)
    m = as_csr(b)
    assert m.indices[:2].tolist() == [1, 4]
    assert m.data[:2].tolist() == [2.0, 1.5]
    assert np.diff(m.indptr).tolist() == [2, 0]  # explicit zero dropped


def test_dense_input_and_dimension_check():
    m = as_csr(np.array([[0, 1.5, 0], [2, 0, 0]]))
    assert m.shape == (2, 3) and m.nnz == 2
    with pytest.raises(InvalidSparseError, match="dimension 3 does not match the expected 4"):
        as_csr(m, dim=4, name="queries")


@pytest.mark.parametrize("bad,match", [
    (np.nan, "non-finite"),
    (np.inf, "non-finite"),
    (-1.0, "negative weight"),
    (1e300, "non-finite"),
])
def test_bad_weights_are_refused(bad, match):
    b = SparseBatch(np.array([0, 1, 2]), np.array([0, 1]), np.array([1.0, bad]), dim=3)
    with pytest.raises(InvalidSparseError, match=match) as e:
        as_csr(b, name="documents")
    assert "row 1" in str(e.value) and "documents" in str(e.value)


def test_term_id_outside_dimension():
    with pytest.raises(InvalidSparseError, match="term id 7 is outside the dimension"):
        as_csr(SparseBatch(np.array([0, 1]), np.array([7]), np.array([1.0]), dim=5))
    with pytest.raises(InvalidSparseError, match="term id -1"):
        as_csr(SparseBatch(np.array([0, 1]), np.array([-1]), np.array([1.0]), dim=5))


@pytest.mark.parametrize("indptr,indices,data,match", [
    ([1, 2], [0], [1.0], "start with 0"),
    ([0, 2], [0], [1.0], "ends at 2"),
    ([0, 1], [0, 1], [1.0], "same length"),
    ([0, 1, 0], [0], [1.0], "ends at 0"),
])
def test_malformed_raw_arrays(indptr, indices, data, match):
    with pytest.raises(InvalidSparseError, match=match):
        as_csr(SparseBatch(np.array(indptr), np.array(indices), np.array(data), dim=4))


def test_foreign_types_are_refused():
    with pytest.raises(InvalidSparseError, match="expected a scipy.sparse"):
        as_csr("not a matrix")
    with pytest.raises(InvalidSparseError, match="2-D"):
        as_csr(np.ones(3))
