"""External document ids stored compactly: UTF-8 bytes in one array plus offsets.

No fixed-width string arrays and no pickles: two flat arrays that memory-map, decoded on demand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


class DocIds(Sequence[str]):
    """A read-only sequence of document ids backed by ``(utf8 bytes, offsets)`` arrays.

    ``ids[i]`` decodes one id; :meth:`position` maps an id back to its index (the lookup table
    is built on first use).
    """

    def __init__(self, data: np.ndarray, offsets: np.ndarray):
        self.data = data
        self.offsets = offsets
        self._lookup: dict[str, int] | None = None

    @classmethod
    def from_strings(cls, ids: Iterable[str]) -> DocIds:
        encoded = [str(i).encode("utf-8") for i in ids]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        if encoded:
            np.cumsum([len(e) for e in encoded], out=offsets[1:])
        data = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        return cls(data, offsets)

    @classmethod
    def range(cls, n: int) -> DocIds:
        """Ids ``"0" .. "n-1"`` for documents given without ids."""
        return cls.from_strings(str(i) for i in range(n))

    def __len__(self) -> int:
        return int(self.offsets.shape[0]) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"document index {i} out of range [0, {n})")
        return bytes(self.data[self.offsets[i]:self.offsets[i + 1]]).decode("utf-8")

    def __iter__(self):
        raw = bytes(self.data)
        offs = self.offsets.tolist()
        for a, b in zip(offs[:-1], offs[1:]):
            yield raw[a:b].decode("utf-8")

    def tolist(self) -> list[str]:
        return list(iter(self))

    def position(self, doc_id: str) -> int | None:
        """Internal index of ``doc_id``, or ``None`` when the index does not hold it."""
        if self._lookup is None:
            self._lookup = {d: i for i, d in enumerate(self)}
        return self._lookup.get(doc_id)

    def first_duplicate(self) -> str | None:
        """The first id that occurs twice, or ``None``."""
        seen: set[str] = set()
        for d in self:
            if d in seen:
                return d
            seen.add(d)
        return None


def as_doc_ids(ids: Sequence[str] | None, n: int) -> DocIds:
    if ids is None:
        return DocIds.range(n)
    if isinstance(ids, DocIds):
        return ids
    return DocIds.from_strings(ids)
