"""lsr's evaluation harness: data sets, qrels and runs, metrics, efficiency statistics, reports.

Depends on numpy and ir_measures (ir_datasets and matplotlib lazily); never imports torch.

Example:
    >>> from eval import load_dataset, evaluate
    >>> ds = load_dataset("scifact", split="test")           # LSR_DATA=../shared/datasets  # doctest: +SKIP
    >>> scores = evaluate(run, ds.qrels, ["nDCG@10", "R@100"])  # doctest: +SKIP
    >>> scores["nDCG@10"]                                       # doctest: +SKIP
"""

from .datasets import (
    ENV_DATA,
    Corpus,
    Dataset,
    available_datasets,
    data_root,
    load_corpus,
    load_dataset,
    read_qrels,
    read_queries,
)
from .efficiency import flops, latency_stats, throughput, vector_length_stats
from .errors import DataFormatError, DatasetNotFoundError, MissingCorpusError
from .metrics import DEFAULT_MEASURES, Evaluation, evaluate, parse_measures
from .report import Report, SystemResult, machine_info
from .significance import Comparison, compare, holm
from .trec import read_trec_qrels, read_trec_run, write_trec_qrels, write_trec_run

__all__ = [
    "ENV_DATA",
    "Corpus",
    "Dataset",
    "available_datasets",
    "data_root",
    "load_corpus",
    "load_dataset",
    "read_qrels",
    "read_queries",
    "flops",
    "latency_stats",
    "throughput",
    "vector_length_stats",
    "DataFormatError",
    "DatasetNotFoundError",
    "MissingCorpusError",
    "DEFAULT_MEASURES",
    "Evaluation",
    "evaluate",
    "parse_measures",
    "Report",
    "SystemResult",
    "machine_info",
    "Comparison",
    "compare",
    "holm",
    "read_trec_qrels",
    "read_trec_run",
    "write_trec_qrels",
    "write_trec_run",
]
