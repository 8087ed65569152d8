"""lsr's retrieval engine: the sparse-vector contract, inverted index, oracle and storage.

This package depends on numpy, numba and scipy only; it never imports torch.

Example:
    >>> from index import InvertedIndex, brute_force_search
    >>> idx = InvertedIndex.build(docs, doc_ids=ids)       # docs: scipy.sparse.csr_array  # doctest: +SKIP
    >>> res = idx.search(queries, k=10)                    # SearchResults(doc_idx, scores)  # doctest: +SKIP
"""

from ._version import library_version
from .builder import IndexBuilder
from .docids import DocIds
from .errors import IndexFormatError, InvalidSparseError, VocabularyMismatchError
from .inverted import Approx, DetailedSearch, InvertedIndex, SearchStats, Vocabulary, numba_threads
from .oracle import brute_force_search
from .results import NO_DOC, SearchResults
from .searcher import BuildOptions, Searcher, SearchOptions, searcher_class
from .sparse import SparseBatch, as_csr
from .storage import atomic_dir, directory_size
from .tuning import Tuned, recall_at_k, tune_approximate
from .warmup import warm_up

__all__ = [
    "InvertedIndex",
    "IndexBuilder",
    "Approx",
    "DetailedSearch",
    "SearchStats",
    "numba_threads",
    "SearchResults",
    "Searcher",
    "SearchOptions",
    "BuildOptions",
    "searcher_class",
    "SparseBatch",
    "Vocabulary",
    "DocIds",
    "brute_force_search",
    "as_csr",
    "atomic_dir",
    "directory_size",
    "library_version",
    "InvalidSparseError",
    "IndexFormatError",
    "VocabularyMismatchError",
    "NO_DOC",
    "Tuned",
    "recall_at_k",
    "tune_approximate",
    "warm_up",
]
