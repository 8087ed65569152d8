"""Engines as plug-ins: the :class:`Searcher` protocol, the options objects, and the registry of engine names.

A searcher holds document vectors (or embeddings) and answers a batch of query vectors with the top-k
documents as :class:`~index.SearchResults`. lsr's :class:`~index.InvertedIndex` is one, Milvus
(``lsr.milvus``) another. Code above
``index`` picks an engine by name through :func:`searcher_class` and never branches on it.

Options are values, created once at the edge (CLI, server, API call) and recorded whole in reports and
manifests:

* :class:`BuildOptions` -- how lsr's inverted index is laid out (quantization, block size, block-max
  metadata, document reordering);
* :class:`SearchOptions` -- which engine runs a search and with which knobs (exact engine variant,
  :class:`~index.Approx` setting, threads), plus, when a tuner chose the setting, the recall it aimed for.

Adding an engine: one module with a class that implements :class:`Searcher`, and one line in
:data:`ENGINES`. Removing one: delete both.

Example:
    >>> from index.searcher import SearchOptions, searcher_class
    >>> cls = searcher_class("lsr")                          # index.inverted.InvertedIndex
    >>> opts = SearchOptions(engine="taat", threads=1)
    >>> opts.to_json()["engine"]
    'taat'
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from .results import SearchResults

#: Engine name -> ``"module:Class"`` implementing :class:`Searcher`, imported on first use (so that
#: ``import index`` never loads Java, Milvus or faiss). lsr's own exact variants (``auto``, ``taat``,
#: ``blockmax``, ``oracle``) are :class:`SearchOptions` engines of the ``lsr`` searcher.
ENGINES: dict[str, str] = {
    "lsr": "index.inverted:InvertedIndex",
    "lucene": "lsr.lucene:LuceneIndex",
    "milvus": "lsr.milvus:MilvusIndex",
}

#: the engine variants of lsr's own inverted index (``SearchOptions.engine``)
LSR_ENGINES = ("auto", "taat", "blockmax", "oracle")


@runtime_checkable
class Searcher(Protocol):
    """What every engine implements.

    Attributes:
        kind: the engine's name in :data:`ENGINES`.
        n_docs: documents searchable (document indices in results run over ``[0, n_docs)``).
    """

    kind: ClassVar[str]
    n_docs: int

    def search(self, queries, k: int = 10, options: SearchOptions | None = None) -> SearchResults:
        """Top-k documents of a batch of query vectors (``n_queries x dim`` CSR, or embeddings)."""
        ...

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the searcher to a folder (atomically), loadable by :meth:`load`."""
        ...

    @classmethod
    def load(cls, path: str | os.PathLike) -> Searcher:
        """Open a folder written by :meth:`save`."""
        ...

    def size_bytes(self) -> int:
        """Bytes the searcher takes on disk (or in memory when never saved)."""
        ...

    def describe(self) -> dict:
        """A JSON-able description (kind, counts, settings) for reports and manifests."""
        ...

    @classmethod
    def from_vectors(cls, path: str | os.PathLike, doc_ids, vectors, *, terms, vocabulary=None, encoder=None,
                     overwrite: bool = False, show_progress: bool = False, **options) -> Searcher:
        """Build the engine's index of these document vectors into ``path`` (what a Retriever calls)."""
        ...

    def warm_variants(self, options: SearchOptions) -> tuple:
        """Options to run once before timing ``options`` (see :class:`SearcherDefaults`)."""
        ...

    def search_with_work(self, queries, k: int, options: SearchOptions | None = None):
        """``(results, mean postings scored per query or None)`` (see :class:`SearcherDefaults`)."""
        ...


class SearcherDefaults:
    """What an engine gets for free by subclassing: no extra warm-up variants, no work statistics."""

    def warm_variants(self, options: SearchOptions) -> tuple:
        """Other options to run once before timing ``options`` (engines whose kernels differ per query)."""
        return ()

    def search_with_work(self, queries, k: int, options: SearchOptions | None = None):
        """:meth:`Searcher.search` plus the mean postings scored per query (``None``: not reported)."""
        return self.search(queries, k, options), None


def searcher_class(name: str) -> type:
    """The class registered for engine ``name`` (imported now), or a ``ValueError`` listing the names."""
    if name in LSR_ENGINES:
        name = "lsr"
    target = ENGINES.get(name)
    if target is None:
        raise ValueError(f"unknown engine {name!r}; choose one of {', '.join([*LSR_ENGINES, *ENGINES])}")
    module, _, cls = target.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as e:
        raise ImportError(f"engine {name!r} needs {module}, which could not be imported ({e}); "
                          f"install its extra, e.g. pip install 'lsr[{name}]'") from None


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """How lsr's inverted index is built (see :meth:`index.InvertedIndex.build` for each field)."""

    quantization: str | None = None
    block_size: int = 64
    block_max: bool | str = "auto"
    reorder: str | None = None

    def __post_init__(self) -> None:
        if self.quantization not in (None, "uint8", "uint16"):
            raise ValueError(f"quantization must be None, 'uint8' or 'uint16', got {self.quantization!r}")
        if isinstance(self.block_size, bool) or not isinstance(self.block_size, int) \
                or not 1 <= self.block_size <= 1 << 20:
            raise ValueError(f"block_size must be an integer in [1, 2**20], got {self.block_size!r}")
        if self.block_max not in (True, False, "auto"):
            raise ValueError(f"block_max must be True, False or 'auto', got {self.block_max!r}")
        if self.reorder not in (None, "bp"):
            raise ValueError(f"reorder must be None or 'bp', got {self.reorder!r}")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> BuildOptions:
        return cls(**obj)


@dataclasses.dataclass(frozen=True)
class SearchOptions:
    """Which engine searches, and how.

    Attributes:
        engine: ``"auto"`` (lsr, exact, the default; ``"lsr"`` means the same), ``"taat"``, ``"blockmax"``,
            ``"oracle"``, or the name of
            another registered engine (``"milvus"``).
        approx: an :class:`~index.Approx` setting for lsr's approximate search; ``None`` is exact.
        threads: search threads (``None``: the engine's default).
        target_recall: when a tuner chose ``approx``, the recall@10 it aimed for (recorded, not acted on).
    """

    engine: str = "auto"
    approx: Any = None
    threads: int | None = None
    target_recall: float | None = None

    def __post_init__(self) -> None:
        if self.engine == "lsr":  # the registry name of lsr's own searcher: its default variant
            object.__setattr__(self, "engine", "auto")
        if self.engine not in LSR_ENGINES and self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}; choose one of {', '.join([*LSR_ENGINES, *ENGINES])}")
        if self.approx is not None:
            from .inverted import Approx

            if not isinstance(self.approx, Approx):
                raise ValueError(f"approx must be an index.Approx, got {type(self.approx).__name__}")
            valid = self.approx.validate()
            object.__setattr__(self, "approx", None if valid.exact else valid)
            if self.approx is not None and self.engine not in LSR_ENGINES:
                raise ValueError(f"approximate search runs on lsr's engine, not {self.engine!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {self.threads!r}")
        if self.target_recall is not None and not 0 < self.target_recall <= 1:
            raise ValueError(f"target_recall must be in (0, 1], got {self.target_recall}")

    @property
    def searcher(self) -> str:
        """The registry name of the searcher that runs these options (``"lsr"`` for lsr's variants)."""
        return "lsr" if self.engine in LSR_ENGINES else self.engine

    def to_json(self) -> dict[str, Any]:
        return {"engine": self.engine, "approx": None if self.approx is None else self.approx._asdict(),
                "threads": self.threads, "target_recall": self.target_recall}

    @classmethod
    def from_json(cls, obj: dict) -> SearchOptions:
        from .inverted import Approx

        approx = obj.get("approx")
        return cls(engine=obj.get("engine", "auto"), approx=None if approx is None else Approx(**approx),
                   threads=obj.get("threads"), target_recall=obj.get("target_recall"))
