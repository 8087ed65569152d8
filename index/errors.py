"""Errors raised by the index package.

All of them subclass :class:`ValueError` (or :class:`FileNotFoundError`), so a caller that
only wants "bad input" can catch those; the CLI turns them into a message and exit code 1.
"""

from __future__ import annotations


class InvalidSparseError(ValueError):
    """A sparse batch breaks the contract (wrong shape, term id outside the dimension, NaN or negative weight...)."""


class IndexFormatError(ValueError):
    """A directory on disk is not a readable lsr index: missing, foreign, corrupt, truncated or too new."""


class VocabularyMismatchError(ValueError):
    """Queries were encoded with another vocabulary than the one the index was built with."""
