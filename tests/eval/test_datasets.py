import gzip
import os
import shutil
import subprocess
import sys

import pytest

from eval import DataFormatError, DatasetNotFoundError, MissingCorpusError, load_corpus, load_dataset
from eval.datasets import available_datasets, read_qrels


def test_tiny_folder_loads_by_split(tiny_beir):
    ds = load_dataset(tiny_beir)
    assert ds.split == "test"
    assert ds.queries == {"q1": "cat on a mat", "q2": "garden roses"}  # q3 is not judged in test
    assert ds.qrels == {"q1": {"d1": 1}, "q2": {"d4": 2, "d2": 1}}
    docs = list(ds.corpus)
    assert docs[0] == ("d1", "Cats The cat sat on the mat.")
    assert docs[2] == ("d3", "Stock markets fell sharply on Monday.")  # empty title: no leading space
    assert list(ds.corpus) == docs  # re-iterable
    assert ds.corpus.count() == 4
    dev = load_dataset(tiny_beir, split="dev")
    assert dev.queries == {"q1": "cat on a mat"}


def test_name_resolves_under_data_dir_and_env(tiny_beir, monkeypatch):
    root = tiny_beir.parent
    assert load_dataset("tiny", data_dir=root).name == "tiny"
    monkeypatch.setenv("LSR_DATA", str(root))
    assert load_dataset("tiny").source == str(root / "tiny")
    assert available_datasets() == ["tiny"]
    with pytest.raises(DatasetNotFoundError, match="'nope' not found under .*available: tiny"):
        load_dataset("nope")
    monkeypatch.delenv("LSR_DATA")
    with pytest.raises(DatasetNotFoundError, match="set LSR_DATA"):
        load_dataset("nope")


def test_missing_split_names_available_ones(tiny_beir):
    with pytest.raises(DatasetNotFoundError, match=r"qrels/train.tsv.*available splits: dev, test"):
        load_dataset(tiny_beir, split="train")


def test_ambiguous_split_must_be_chosen(tiny_beir):
    (tiny_beir / "qrels" / "test.tsv").rename(tiny_beir / "qrels" / "other.tsv")
    with pytest.raises(DataFormatError, match="choose a split.*dev, other"):
        load_dataset(tiny_beir)


def test_bad_json_line_names_file_and_line(tiny_beir):
    lines = (tiny_beir / "corpus.jsonl").read_text().splitlines()
    lines[2] = '{"_id": "d3", "text": broken'
    (tiny_beir / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    ds = load_dataset(tiny_beir)
    with pytest.raises(DataFormatError, match=r"corpus.jsonl:3: not valid JSON"):
        list(ds.corpus)


def test_missing_id_and_wrong_types(tiny_beir):
    (tiny_beir / "queries.jsonl").write_text('{"_id": "q1", "text": "x"}\n{"text": "no id"}\n')
    with pytest.raises(DataFormatError, match=r'queries.jsonl:2: missing "_id"'):
        load_dataset(tiny_beir)
    (tiny_beir / "queries.jsonl").write_text('{"_id": "q1", "text": ["x"]}\n')
    with pytest.raises(DataFormatError, match=r"queries.jsonl:1: field 'text' must be a string"):
        load_dataset(tiny_beir)


def test_qrel_for_unknown_query(tiny_beir):
    with open(tiny_beir / "qrels" / "test.tsv", "a") as f:
        f.write("q9\td1\t1\n")
    with pytest.raises(DataFormatError, match=r"test.tsv:5: query 'q9' is not in .*queries.jsonl"):
        load_dataset(tiny_beir)


def test_qrel_for_unknown_document(tiny_beir):
    with open(tiny_beir / "qrels" / "test.tsv", "a") as f:
        f.write("q1\td99\t1\n")
    ds = load_dataset(tiny_beir)
    ids = {d for d, _ in ds.corpus}
    with pytest.raises(DataFormatError, match=r"test.tsv:5: qrel for query 'q1' names document 'd99'"):
        ds.check_documents(ids.__contains__)


def test_malformed_qrels_rows(tiny_beir):
    q = tiny_beir / "qrels" / "test.tsv"
    q.write_text("query-id\tcorpus-id\tscore\nq1\td1\n")
    with pytest.raises(DataFormatError, match=r"test.tsv:2: expected 3 columns"):
        load_dataset(tiny_beir)
    q.write_text("q1\td1\thigh\n")
    with pytest.raises(DataFormatError, match=r"test.tsv:1: relevance 'high' is not an integer"):
        load_dataset(tiny_beir)
    q.write_text("q1\td1\t1\nq1\td1\t0\n")
    with pytest.raises(DataFormatError, match=r"test.tsv:2: duplicate judgement.*first at line 1"):
        load_dataset(tiny_beir)
    q.write_text("query-id\tcorpus-id\tscore\n")
    with pytest.raises(DataFormatError, match="no judgements"):
        load_dataset(tiny_beir)


def test_trec_format_qrels(tmp_path):
    p = tmp_path / "q.txt"
    p.write_text("1 0 doc1 2\n1 0 doc2 0\n2 0 doc1 1\n")
    assert read_qrels(p).qrels == {"1": {"doc1": 2, "doc2": 0}, "2": {"doc1": 1}}


def test_empty_corpus(tiny_beir):
    (tiny_beir / "corpus.jsonl").write_text("\n")
    with pytest.raises(DataFormatError, match="corpus is empty"):
        list(load_dataset(tiny_beir).corpus)


def test_gzipped_corpus(tiny_beir):
    raw = (tiny_beir / "corpus.jsonl").read_bytes()
    (tiny_beir / "corpus.jsonl").unlink()
    with gzip.open(tiny_beir / "corpus.jsonl.gz", "wb") as f:
        f.write(raw)
    ds = load_dataset(tiny_beir)
    assert [d for d, _ in ds.corpus] == ["d1", "d2", "d3", "d4"]
    assert [d for d, _ in load_corpus(tiny_beir / "corpus.jsonl.gz")] == ["d1", "d2", "d3", "d4"]


def test_corrupt_gzip_names_the_file(tiny_beir):
    (tiny_beir / "corpus.jsonl").unlink()
    (tiny_beir / "corpus.jsonl.gz").write_bytes(b"this is not gzip")
    with pytest.raises(DataFormatError, match="corpus.jsonl.gz"):
        list(load_dataset(tiny_beir).corpus)


def test_queries_only_folder(tiny_beir):
    (tiny_beir / "corpus.jsonl").unlink()
    ds = load_dataset(tiny_beir)
    assert not ds.has_corpus and len(ds.queries) == 2
    with pytest.raises(MissingCorpusError, match="no corpus; add a corpus.jsonl"):
        _ = ds.corpus


# ------------------------------------------------------------------------- real files
def test_real_scifact(data_root):
    ds = load_dataset("scifact", data_dir=data_root)
    assert (len(ds.queries), len(ds.qrels), sum(map(len, ds.qrels.values()))) == (300, 300, 339)
    assert ds.corpus.count() == 5183
    did, text = next(iter(ds.corpus))
    assert did == "4983" and text.startswith("Microstructural development of human newborn")
    train = load_dataset("scifact", split="train", data_dir=data_root)
    assert len(train.queries) == 809


def test_real_sets_resolve(data_root):
    assert len(load_dataset("nfcorpus", data_dir=data_root).queries) == 323
    yo = load_dataset("miracl-yo", data_dir=data_root)  # gzipped corpus, only a dev split
    assert yo.split == "dev" and len(yo.queries) == 119
    assert next(iter(yo.corpus))[0]
    fiqa = load_dataset("fiqa", data_dir=data_root)  # topics-qrels/fiqa
    assert not fiqa.has_corpus and len(fiqa.queries) == 648
    dl19 = load_dataset("topics-qrels/trec-dl-2019-passage", data_dir=data_root)
    assert len(dl19.qrels) == 43
    assert sum(1 for _ in load_corpus("samples/msmarco-passage-first1000", data_dir=data_root)) == 1000


# ------------------------------------------------------------------------- ir_datasets
# ir_datasets fixes its cache folder when it is first imported, so these run in a subprocess
# with IR_DATASETS_HOME pointing at a fresh folder, and with the network blocked.
_BLOCK_NETWORK = """
import socket
def _no_network(*a, **k):
    raise OSError("network is unreachable (blocked by the test)")
socket.create_connection = _no_network
socket.socket.connect = _no_network
"""


def run_isolated(code: str, home, data_root=None) -> subprocess.CompletedProcess:
    pytest.importorskip("ir_datasets")
    env = dict(os.environ, IR_DATASETS_HOME=str(home))
    if data_root is None:
        env.pop("LSR_DATA", None)
    return subprocess.run([sys.executable, "-c", _BLOCK_NETWORK + code], env=env,
                          capture_output=True, text=True, timeout=120)


def test_ir_datasets_id_reads_a_local_copy(data_root, tmp_path):
    """ir_datasets' own BEIR loader, fed with the files it would have downloaded."""
    target = tmp_path / "beir" / "scifact"
    target.mkdir(parents=True)
    shutil.copy(data_root / "scifact" / "queries.jsonl", target / "queries.json")
    shutil.copy(data_root / "scifact" / "qrels" / "test.tsv", target / "test.qrels")
    out = run_isolated(
        "from eval import load_dataset\n"
        "ds = load_dataset('beir/scifact/test')\n"
        "print(ds.source, len(ds.queries), sum(map(len, ds.qrels.values())), ds.queries['1'])\n",
        tmp_path, data_root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "irds:beir/scifact/test 300 339 0-dimensional biomaterials show inductive properties."


def test_ir_datasets_offline_error_names_the_local_option(tmp_path):
    out = run_isolated(
        "from eval import load_dataset\n"
        "try:\n"
        "    load_dataset('beir/nfcorpus/test')\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n",
        tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("DatasetNotFoundError could not load 'beir/nfcorpus/test' through ir_datasets")
    assert "BEIR layout" in out.stdout and "LSR_DATA" in out.stdout


def test_unknown_ir_datasets_id(tmp_path):
    out = run_isolated(
        "from eval import load_dataset\n"
        "try:\n"
        "    load_dataset('nosuch/collection/test')\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n",
        tmp_path)
    assert "DatasetNotFoundError" in out.stdout and "neither a local folder" in out.stdout, out.stderr


def test_a_public_collection_missing_locally_falls_back_to_its_ir_datasets_id(tmp_path, monkeypatch):
    from eval import datasets as dsmod

    assert dsmod.ir_datasets_id("scifact") == "beir/scifact/test"
    assert dsmod.ir_datasets_id("nfcorpus", "dev") == "beir/nfcorpus/dev"
    assert dsmod.ir_datasets_id("trec-dl-2019-passage") == "msmarco-passage/trec-dl-2019/judged"
    assert dsmod.ir_datasets_id("arguana", "train") is None and dsmod.ir_datasets_id("my-set") is None
    asked = []

    def offline(dataset_id):
        asked.append(dataset_id)
        raise dsmod.DatasetNotFoundError(f"could not load {dataset_id!r} through ir_datasets (ConnectionError)")

    monkeypatch.setattr(dsmod, "load_ir_datasets", offline)
    with pytest.raises(dsmod.DatasetNotFoundError) as e:
        dsmod.load_dataset("nfcorpus", split="dev", data_dir=tmp_path)
    assert asked == ["beir/nfcorpus/dev"]
    assert "beir/nfcorpus/dev" in str(e.value) and "LSR_DATA" in str(e.value) and "go online" in str(e.value)
    # a name that is no public collection still lists what the data root has
    with pytest.raises(dsmod.DatasetNotFoundError, match="not found under"):
        dsmod.load_dataset("my-set", data_dir=tmp_path)
