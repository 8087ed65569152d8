"""Stored documents: each document's title and text (or any small JSON object), kept with the index for display.

The search kernels never read them; a server shows them as result titles and snippets and in a document view.
Stored as two flat arrays in the index folder (UTF-8 JSON of every document one after the other, and offsets),
memory-mapped like the document ids; a document stored without an object reads back as ``None``.

Example:
    >>> s = StoredDocs.from_records([{"title": "Vitamin D", "text": "..."}, None])
    >>> s.get(0)["title"], s.get(1)
    ('Vitamin D', None)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np

from .docids import DocIds

ARRAYS = ("stored_bytes", "stored_offsets")


class StoredDocs:
    """Per document, a JSON object or ``None`` (an empty string in the arrays)."""

    def __init__(self, docs: DocIds):
        self.docs = docs

    def __len__(self) -> int:
        return len(self.docs)

    @classmethod
    def from_records(cls, records: Sequence[Mapping | None]) -> StoredDocs:
        out = []
        for i, r in enumerate(records):
            if r is not None and not isinstance(r, Mapping):
                raise TypeError(f"stored document {i} must be an object (title, text...) or None, got {type(r).__name__}")
            out.append("" if r is None else json.dumps(dict(r), ensure_ascii=False, separators=(",", ":")))
        return cls(DocIds.from_strings(out))

    @classmethod
    def empty(cls, n: int) -> StoredDocs:
        return cls(DocIds(np.zeros(0, dtype=np.uint8), np.zeros(n + 1, dtype=np.int64)))

    def get(self, i: int) -> dict | None:
        raw = self.docs[int(i)]
        return json.loads(raw) if raw else None

    def take(self, rows) -> StoredDocs:
        return StoredDocs(DocIds.from_strings([self.docs[int(r)] for r in rows]))

    @classmethod
    def concat(cls, parts: Sequence[StoredDocs]) -> StoredDocs:
        return cls(DocIds.from_strings([s for p in parts for s in p.docs]))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"stored_bytes": self.docs.data, "stored_offsets": self.docs.offsets}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], n_docs: int, where: str) -> StoredDocs | None:
        if "stored_bytes" not in arrays:
            return None
        docs = DocIds(arrays["stored_bytes"], arrays["stored_offsets"])
        offs = arrays["stored_offsets"]
        if len(docs) != n_docs or (offs.shape[0] and int(offs[-1]) != arrays["stored_bytes"].shape[0]):
            from .errors import IndexFormatError

            raise IndexFormatError(f"{where}: the stored documents do not describe {n_docs} documents; rebuild the index")
        return cls(docs)
