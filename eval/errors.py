"""Errors of the evaluation harness; each message names the file (and line) and the fix."""

from __future__ import annotations


class DataFormatError(ValueError):
    """A data file (corpus, queries, qrels, run) is malformed or inconsistent."""


class DatasetNotFoundError(FileNotFoundError):
    """A data set name or path could not be resolved to a local folder or an ir_datasets id."""


class MissingCorpusError(DataFormatError):
    """The data set has queries and qrels but no corpus (e.g. the ``topics-qrels`` sets)."""
