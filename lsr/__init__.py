"""lsr: learned sparse retrieval — encode, index, search, evaluate, train.

Example (BM25 on a BEIR set, five lines)::

    from lsr import load_encoder, evaluate_dataset
    from eval import load_dataset
    ds = load_dataset("scifact")                            # LSR_DATA=../shared/datasets
    result = evaluate_dataset(ds, load_encoder("bm25"))     # eval.SystemResult
    print(result.effectiveness["nDCG@10"])
"""

from index._version import library_version

from .encoders import SparseEncoder, load_encoder
from .pipeline import Retriever, RunSettings, build_index, compare, evaluate_dataset

__version__ = library_version()

__all__ = ["__version__", "SparseEncoder", "load_encoder", "build_index", "evaluate_dataset", "compare", "Retriever",
           "RunSettings"]
