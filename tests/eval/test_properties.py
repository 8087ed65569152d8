"""Property-based tests (Hypothesis): any bytes in a corpus, queries or qrels file give data or a clear error.

"Clear" means a :class:`DataFormatError` whose message names the file (and line); never a traceback
from inside a library (json, gzip, codecs).
"""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eval.datasets import load_corpus, read_qrels, read_queries
from eval.errors import DataFormatError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                        max_size=3), max_leaves=6)
objects = st.fixed_dictionaries({}, optional={"_id": json_values | st.text(max_size=6), "title": json_values,
                                              "text": json_values | st.text()})
jsonl_lines = st.one_of(objects.map(json.dumps), st.text(max_size=30),
                        st.binary(max_size=30).map(lambda b: b.decode("latin-1")))


def _assert_clear(e: DataFormatError, path) -> None:
    assert str(path) in str(e)


@SETTINGS
@given(st.lists(jsonl_lines, max_size=8), st.binary(max_size=8))
def test_corpus_lines_give_documents_or_a_clear_error(tmp_path, lines, tail):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + b"\n" + tail)
    try:
        docs = list(load_corpus(path))
    except DataFormatError as e:
        _assert_clear(e, path)
        return
    ids = [d for d, _ in docs]
    assert len(ids) == len(set(ids)) and all(isinstance(t, str) for _, t in docs)


@SETTINGS
@given(st.lists(jsonl_lines, max_size=8))
def test_query_lines_give_queries_or_a_clear_error(tmp_path, lines):
    path = tmp_path / "queries.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
    try:
        queries = read_queries(path)
    except DataFormatError as e:
        _assert_clear(e, path)
        return
    assert all(isinstance(q, str) and isinstance(t, str) for q, t in queries.items())


qrels_fields = st.one_of(st.text(max_size=6), st.integers(-3, 5).map(str), st.floats().map(str))


@SETTINGS
@given(st.lists(st.lists(qrels_fields, min_size=1, max_size=5).map("\t".join) | st.text(max_size=20), max_size=8))
def test_qrels_lines_give_judgements_or_a_clear_error(tmp_path, lines):
    path = tmp_path / "test.tsv"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
    try:
        qrels = read_qrels(path).qrels
    except DataFormatError as e:
        _assert_clear(e, path)
        return
    for qid, docs in qrels.items():
        assert qid and qid.strip() == qid
        assert all(isinstance(r, int) for r in docs.values())
