"""Document metadata fields and filters: columns stored beside the postings, evaluated to a document mask.

A document may carry fields of two types:

* ``keyword``: a string, or a list of strings (tags); ``True``/``False`` are stored as ``"true"``/``"false"``;
* ``numeric``: one number (int or float).

A field's type is set by its first value and fixed from then on (a later value of the other type is refused,
naming the field and the document). ``None`` or an absent key means the document lacks the field.

Storage is columnar and memory-mappable, as flat arrays in the index folder (listed in its manifest, with
checksums, like the postings): a keyword column is a CSR of dictionary codes (``ptr`` int64 ``[n+1]``,
``codes`` int32) plus its dictionary (UTF-8 bytes and offsets, as document ids are stored); a numeric column
is one float64 per document, NaN where absent.

Filters are JSON objects, the same in Python, on the CLI (``--filter '{...}'``) and over HTTP:

    {"year": 2020}                                equality (keyword: the document has this value)
    {"lang": ["en", "fr"]}                        in (a list is shorthand for {"in": [...]})
    {"year": {"gte": 2015, "lt": 2020}}           ranges: gt, gte, lt, lte (numeric fields)
    {"lang": {"eq": "en"}} {"lang": {"in": [...]}} {"lang": {"exists": true}}
    {"and": [f, ...]} {"or": [f, ...]} {"not": f}  several keys in one object are and-ed

A filter naming a field no document has is refused (a typo would otherwise match nothing, silently).
:meth:`Fields.mask` evaluates a filter to a boolean mask; the search kernels honour the mask while
collecting the top-k (no post-filtering), so ``k`` results come back whenever ``k`` matching documents
score above zero.

Example:
    >>> f = Fields.from_records([{"year": 2019, "lang": "en"}, {"year": 2021, "tags": ["a", "b"]}, None])
    >>> f.mask({"year": {"gte": 2020}}).tolist()
    [False, True, False]
    >>> f.mask({"or": [{"lang": "en"}, {"tags": "b"}]}).tolist()
    [True, True, False]
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

import numpy as np

from .docids import DocIds

KEYWORD, NUMERIC = "keyword", "numeric"
FIELD_TYPES = (KEYWORD, NUMERIC)
RANGE_OPS = {"gt": np.greater, "gte": np.greater_equal, "lt": np.less, "lte": np.less_equal}
FIELD_OPS = ("eq", "in", "exists", *RANGE_OPS)
#: array names of a column inside an index manifest: f"field{i}_{part}"
_PARTS = {KEYWORD: ("ptr", "codes", "dict_bytes", "dict_offsets"), NUMERIC: ("values",)}


class FilterError(ValueError):
    """A filter that is malformed, or names a field or value type the index does not have."""


def _keyword(value, name: str, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    raise TypeError(f"field {name!r} of {where} is a keyword field; {value!r} is not a string")


def _value_type(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (bool, str)):
        return KEYWORD
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (str, bool)) for v in value):
            return KEYWORD
        return "list" if value else None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return NUMERIC
    return "other"


class _Keyword:
    """One keyword column: per document, a (possibly empty) list of dictionary codes."""

    type = KEYWORD

    def __init__(self, ptr: np.ndarray, codes: np.ndarray, dictionary: DocIds, multi: bool = False):
        self.ptr, self.codes, self.dictionary = ptr, codes, dictionary
        self.multi = bool(multi)  # values were given as lists: a document's value reads back as a list
        self._rows: np.ndarray | None = None

    @classmethod
    def from_values(cls, values: list, multi: bool = False) -> _Keyword:
        """``values``: per document a list of strings (empty when absent)."""
        vocab = sorted({v for vs in values for v in vs})
        code = {v: i for i, v in enumerate(vocab)}
        lengths = np.fromiter((len(vs) for vs in values), dtype=np.int64, count=len(values))
        ptr = np.zeros(len(values) + 1, dtype=np.int64)
        np.cumsum(lengths, out=ptr[1:])
        codes = np.fromiter((code[v] for vs in values for v in vs), dtype=np.int32, count=int(ptr[-1]))
        return cls(ptr, codes, DocIds.from_strings(vocab), multi)

    def arrays(self) -> dict:
        return {"ptr": self.ptr, "codes": self.codes, "dict_bytes": self.dictionary.data,
                "dict_offsets": self.dictionary.offsets}

    @classmethod
    def from_arrays(cls, a: dict, multi: bool = False) -> _Keyword:
        return cls(a["ptr"], a["codes"], DocIds(a["dict_bytes"], a["dict_offsets"]), multi)

    def rows(self) -> np.ndarray:
        """The document of each code (built on first use)."""
        if self._rows is None:
            self._rows = np.repeat(np.arange(self.ptr.shape[0] - 1, dtype=np.int64), np.diff(self.ptr))
        return self._rows

    def value(self, doc: int):
        vals = [self.dictionary[int(c)] for c in self.codes[self.ptr[doc]:self.ptr[doc + 1]]]
        if not vals:
            return None
        return vals if self.multi or len(vals) > 1 else vals[0]

    def strings(self) -> list[str]:
        return self.dictionary.tolist()

    def match(self, wanted: list[str], n: int) -> np.ndarray:
        codes = [c for c in (self.dictionary.position(w) for w in wanted) if c is not None]
        mask = np.zeros(n, dtype=bool)
        if codes:
            hit = np.isin(self.codes, np.asarray(codes, dtype=np.int32))
            mask[self.rows()[hit]] = True
        return mask

    def exists(self, n: int) -> np.ndarray:
        return np.diff(self.ptr) > 0

    def take(self, rows: np.ndarray) -> _Keyword:
        lengths = np.diff(self.ptr)[rows]
        ptr = np.zeros(rows.shape[0] + 1, dtype=np.int64)
        np.cumsum(lengths, out=ptr[1:])
        gather = np.repeat(self.ptr[rows] - ptr[:-1], lengths) + np.arange(int(ptr[-1]), dtype=np.int64)
        codes = np.asarray(self.codes)[gather]
        used = np.unique(codes)  # drop dictionary values no kept document has
        strings = self.strings()
        remap = np.zeros(max(len(strings), 1), dtype=np.int32)
        remap[used] = np.arange(used.shape[0], dtype=np.int32)
        return _Keyword(ptr, remap[codes] if codes.size else codes.astype(np.int32),
                        DocIds.from_strings([strings[int(c)] for c in used]), self.multi)


class _Numeric:
    """One numeric column: a float64 per document, NaN where absent."""

    type = NUMERIC

    def __init__(self, values: np.ndarray):
        self.values = values

    def arrays(self) -> dict:
        return {"values": self.values}

    @classmethod
    def from_arrays(cls, a: dict) -> _Numeric:
        return cls(a["values"])

    def value(self, doc: int):
        v = float(self.values[doc])
        return None if math.isnan(v) else int(v) if v.is_integer() and abs(v) < 2 ** 53 else v

    def exists(self, n: int) -> np.ndarray:
        return ~np.isnan(self.values)

    def take(self, rows: np.ndarray) -> _Numeric:
        return _Numeric(np.asarray(self.values)[rows])


def _absent(kind: str, n: int):
    if kind == KEYWORD:
        return _Keyword(np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int32), DocIds.from_strings([]))
    return _Numeric(np.full(n, np.nan, dtype=np.float64))


class Fields:
    """The metadata columns of one index (see the module documentation).

    Build with :meth:`from_records`; an index keeps its own (``InvertedIndex.fields``). ``len(fields)`` is the
    number of documents; :attr:`schema` maps each field name to its type.
    """

    def __init__(self, n_docs: int, columns: dict | None = None):
        self.n_docs = int(n_docs)
        self.columns: dict[str, _Keyword | _Numeric] = dict(columns or {})

    def __len__(self) -> int:
        return self.n_docs

    def __bool__(self) -> bool:
        return bool(self.columns)

    @property
    def schema(self) -> dict[str, str]:
        return {name: col.type for name, col in self.columns.items()}

    # ------------------------------------------------------------------ build
    @classmethod
    def from_records(cls, records: Sequence[Mapping | None], *, doc_ids: Sequence[str] | None = None,
                     schema: Mapping[str, str] | None = None) -> Fields:
        """Columns from one mapping (or ``None``) per document.

        ``schema``: types already fixed (a live index's), which the records must follow. Raises
        :class:`TypeError` naming the field and document on a value of the wrong type, a nested object, a
        list of numbers, or a non-string field name.
        """
        n = len(records)
        types = dict(schema or {})

        def where(i: int) -> str:
            return f"document {doc_ids[i]!r}" if doc_ids is not None else f"document {i}"

        for i, rec in enumerate(records):
            if rec is None:
                continue
            if not isinstance(rec, Mapping):
                raise TypeError(f"the fields of {where(i)} must be an object of name: value, got {type(rec).__name__}")
            for name, value in rec.items():
                if not isinstance(name, str) or not name:
                    raise TypeError(f"field names must be non-empty strings ({where(i)} has {name!r})")
                kind = _value_type(value)
                if kind is None:
                    continue
                if kind == "list":
                    raise TypeError(f"field {name!r} of {where(i)}: lists hold strings (keyword tags); numeric "
                                    "fields hold one number")
                if kind == "other":
                    raise TypeError(f"field {name!r} of {where(i)}: {type(value).__name__} is neither a string, a "
                                    "list of strings nor a number")
                if isinstance(value, float) and not math.isfinite(value):
                    raise TypeError(f"field {name!r} of {where(i)}: {value} is not a finite number")
                known = types.setdefault(name, kind)
                if known != kind:
                    raise TypeError(f"field {name!r} of {where(i)} holds a {kind} value ({value!r}) but the field "
                                    f"is {known}; keep one type per field")
        columns: dict = {}
        for name, kind in types.items():
            if kind == KEYWORD:
                vals, multi = [], False
                for i, rec in enumerate(records):
                    v = rec.get(name) if rec is not None else None
                    if v is None:
                        vals.append([])
                    elif isinstance(v, (list, tuple)):
                        vals.append([_keyword(x, name, where(i)) for x in v])
                        multi = True
                    else:
                        vals.append([_keyword(v, name, where(i))])
                columns[name] = _Keyword.from_values(vals, multi)
            elif kind == NUMERIC:
                vals = np.full(n, np.nan, dtype=np.float64)
                for i, rec in enumerate(records):
                    v = rec.get(name) if rec is not None else None
                    if v is not None:
                        if _value_type(v) != NUMERIC:
                            raise TypeError(f"field {name!r} of {where(i)} holds {v!r} but the field is numeric")
                        vals[i] = float(v)
                columns[name] = _Numeric(vals)
            else:
                raise ValueError(f"field {name!r}: unknown type {kind!r}; one of {', '.join(FIELD_TYPES)}")
        return cls(n, columns)

    def record(self, doc: int) -> dict:
        """The fields of document ``doc`` (internal index) as a mapping; absent fields left out."""
        out = {}
        for name, col in self.columns.items():
            v = col.value(int(doc))
            if v is not None:
                out[name] = v
        return out

    def take(self, rows) -> Fields:
        """The columns of documents ``rows``, in that order (merges, reordering)."""
        rows = np.asarray(rows, dtype=np.int64)
        return Fields(rows.shape[0], {name: col.take(rows) for name, col in self.columns.items()})

    @classmethod
    def concat(cls, parts: Sequence[Fields]) -> Fields:
        """Documents of ``parts`` one after the other; a field absent from a part is absent for its documents."""
        n = sum(p.n_docs for p in parts)
        types: dict[str, str] = {}
        for p in parts:
            for name, kind in p.schema.items():
                if types.setdefault(name, kind) != kind:
                    raise TypeError(f"field {name!r} is {types[name]} in one part and {kind} in another")
        columns: dict = {}
        for name, kind in types.items():
            cols = [p.columns.get(name) or _absent(kind, p.n_docs) for p in parts]
            if kind == NUMERIC:
                columns[name] = _Numeric(np.concatenate([np.asarray(c.values) for c in cols]))
                continue
            vocab = sorted({s for c in cols for s in c.strings()})
            code = {s: i for i, s in enumerate(vocab)}
            ptrs, codes, base = [np.zeros(1, dtype=np.int64)], [], 0
            for c in cols:
                remap = np.asarray([code[s] for s in c.strings()] or [0], dtype=np.int32)
                codes.append(remap[np.asarray(c.codes)] if c.codes.shape[0] else np.zeros(0, np.int32))
                ptrs.append(np.asarray(c.ptr[1:]) + base)
                base += int(c.ptr[-1])
            columns[name] = _Keyword(np.concatenate(ptrs), np.concatenate(codes).astype(np.int32),
                                     DocIds.from_strings(vocab), any(getattr(c, "multi", False) for c in cols))
        return cls(n, columns)

    # ---------------------------------------------------------------- storage
    def to_arrays(self) -> tuple[dict[str, np.ndarray], list[dict]]:
        """Flat arrays (named ``field<i>_<part>``) and the manifest entries that describe them."""
        arrays, entries = {}, []
        for i, (name, col) in enumerate(self.columns.items()):
            prefix = f"field{i}"
            for part, arr in col.arrays().items():
                arrays[f"{prefix}_{part}"] = arr
            entries.append({"name": name, "type": col.type, "prefix": prefix,
                            **({"multi": True} if getattr(col, "multi", False) else {})})
        return arrays, entries

    @classmethod
    def from_arrays(cls, n_docs: int, entries: list[dict], arrays: Mapping[str, np.ndarray], where: str) -> Fields:
        """Columns described by manifest ``entries`` over ``arrays`` (as :meth:`to_arrays` wrote them)."""
        from .errors import IndexFormatError

        columns = {}
        for e in entries or []:
            try:
                name, kind, prefix = e["name"], e["type"], e["prefix"]
                parts = {p: arrays[f"{prefix}_{p}"] for p in _PARTS[kind]}
            except (KeyError, TypeError) as err:
                raise IndexFormatError(f"{where}: field entry {e!r} is incomplete ({err}); rebuild the index") from None
            col = (_Keyword.from_arrays(parts, bool(e.get("multi"))) if kind == KEYWORD
                   else _Numeric.from_arrays(parts))
            ok = (col.ptr.shape == (n_docs + 1,) and int(col.ptr[-1]) == col.codes.shape[0]
                  and (col.codes.shape[0] == 0 or 0 <= int(col.codes.min()) and int(col.codes.max()) < len(col.dictionary))
                  if kind == KEYWORD else col.values.shape == (n_docs,))
            if not ok:
                raise IndexFormatError(f"{where}: field {name!r} does not describe {n_docs} documents; rebuild the index")
            columns[name] = col
        return cls(n_docs, columns)

    @staticmethod
    def array_names(entries: list[dict]) -> list[str]:
        return [f"{e['prefix']}_{p}" for e in entries or [] for p in _PARTS.get(e.get("type"), ())]

    # ---------------------------------------------------------------- filters
    def mask(self, spec, *, schema: Mapping[str, str] | None = None) -> np.ndarray:
        """Boolean ``[n_docs]``: which documents ``spec`` (a filter, see the module documentation) matches.

        ``schema``: the field types to check ``spec`` against (default: this object's; a live index passes the
        types of all its segments, so a field only some segments have is known to each).
        """
        node = parse_filter(spec, dict(schema) if schema is not None else self.schema)
        return self._eval(node)

    def _eval(self, node) -> np.ndarray:
        op = node[0]
        n = self.n_docs
        if op == "and":
            out = np.ones(n, dtype=bool)
            for child in node[1]:
                out &= self._eval(child)
            return out
        if op == "or":
            out = np.zeros(n, dtype=bool)
            for child in node[1]:
                out |= self._eval(child)
            return out
        if op == "not":
            return ~self._eval(node[1])
        _, name, field_op, arg = node
        col = self.columns.get(name)
        if col is None:  # a field this part's documents lack: nothing has it here
            return np.zeros(n, dtype=bool) if field_op != "exists" or arg else np.ones(n, dtype=bool)
        if field_op == "exists":
            have = col.exists(n)
            return have if arg else ~have
        if col.type == KEYWORD:
            return col.match(arg, n)
        values = np.asarray(col.values)
        if field_op == "in":
            return np.isin(values, np.asarray(arg, dtype=np.float64))
        if field_op == "eq":
            return values == arg
        out = np.ones(n, dtype=bool)
        for rop, bound in arg:
            out &= RANGE_OPS[rop](values, bound)
        return out


def parse_filter(spec, schema: Mapping[str, str]):
    """Check a filter against field types; return it as a tree of tuples.

    Nodes: ``("and", [..])``, ``("or", [..])``, ``("not", node)``, ``("field", name, op, arg)`` with ``op`` one
    of ``eq``/``in`` (``arg``: a list of values), ``exists`` (bool), ``range`` (``[(op, bound), ...]``).
    Raises :class:`FilterError` with the path of the offending part.
    """
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as e:
            raise FilterError(f"the filter is not valid JSON ({e}): {spec!r}") from None
    return _parse(spec, schema, "filter")


def _parse(spec, schema: Mapping[str, str], path: str):
    if not isinstance(spec, Mapping) or not spec:
        raise FilterError(f"{path}: a filter is a non-empty JSON object, got {spec!r}")
    nodes = []
    for key, value in spec.items():
        where = f"{path}.{key}"
        if key in ("and", "or"):
            if not isinstance(value, list) or not value:
                raise FilterError(f"{where}: {key!r} takes a non-empty list of filters")
            nodes.append((key, [_parse(v, schema, f"{where}[{i}]") for i, v in enumerate(value)]))
        elif key == "not":
            nodes.append(("not", _parse(value, schema, where)))
        else:
            nodes.append(_parse_field(key, value, schema, where))
    return nodes[0] if len(nodes) == 1 else ("and", nodes)


def _parse_field(name: str, value, schema: Mapping[str, str], where: str):
    kind = schema.get(name)
    if kind is None:
        known = ", ".join(sorted(schema)) or "none: no document has fields"
        raise FilterError(f"{where}: no document has a field {name!r} (fields: {known})")
    if isinstance(value, Mapping):
        ops = dict(value)
        unknown = [o for o in ops if o not in FIELD_OPS]
        if unknown or not ops:
            raise FilterError(f"{where}: unknown operator {unknown[0]!r} (operators: {', '.join(FIELD_OPS)})"
                              if unknown else f"{where}: an empty operator object")
        nodes = []
        if "exists" in ops:
            if not isinstance(ops["exists"], bool):
                raise FilterError(f"{where}.exists takes true or false")
            nodes.append(("field", name, "exists", ops["exists"]))
        if "eq" in ops:
            nodes.append(("field", name, "eq" if kind == NUMERIC else "in",
                          _scalar(ops["eq"], kind, f"{where}.eq") if kind == NUMERIC
                          else [_scalar(ops["eq"], kind, f"{where}.eq")]))
        if "in" in ops:
            if not isinstance(ops["in"], list):
                raise FilterError(f"{where}.in takes a list of values")
            nodes.append(("field", name, "in", [_scalar(v, kind, f"{where}.in") for v in ops["in"]]))
        bounds = [(o, ops[o]) for o in RANGE_OPS if o in ops]
        if bounds:
            if kind != NUMERIC:
                raise FilterError(f"{where}: ranges ({', '.join(o for o, _ in bounds)}) apply to numeric fields; "
                                  f"{name!r} is a keyword field")
            nodes.append(("field", name, "range", [(o, _scalar(b, kind, f"{where}.{o}")) for o, b in bounds]))
        return nodes[0] if len(nodes) == 1 else ("and", nodes)
    if isinstance(value, list):
        return ("field", name, "in", [_scalar(v, kind, where) for v in value])
    v = _scalar(value, kind, where)
    return ("field", name, "eq", v) if kind == NUMERIC else ("field", name, "in", [v])


def _scalar(value, kind: str, where: str):
    if kind == KEYWORD:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return value
        raise FilterError(f"{where}: the field is a keyword field; compare it with strings, not {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FilterError(f"{where}: the field is numeric; compare it with a finite number, not {value!r}")
    return float(value)
