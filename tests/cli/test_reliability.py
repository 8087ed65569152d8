"""Nothing lost, nothing silent: what a user's mistakes and damaged files get from the CLI."""

import json
import subprocess
import sys

import pytest

from lsr.cli import build_parser, main


@pytest.fixture
def tiny_index(tiny_beir, tmp_path):
    out = tmp_path / "idx"
    assert main(["index", "build", "--corpus", str(tiny_beir / "corpus.jsonl"), "--encoder", "bm25",
                 "--out", str(out), "-q"]) == 0
    return out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("lsr 0.")


@pytest.mark.parametrize("argv", [["-q", "-vv", "search", "idx", "x"], ["search", "idx", "x", "-q", "-vv"],
                                  ["-q", "search", "-vv", "idx", "x"]])
def test_verbosity_flags_before_or_after_the_subcommand(argv):
    args = build_parser().parse_args(argv)
    assert args.quiet is True and args.verbose == 2


def test_usage_errors_show_the_subcommands_usage(capsys):
    assert main(["search", "idx"]) == 2
    assert "usage: lsr search" in capsys.readouterr().err
    assert main(["index", "build", "--out", "x"]) == 2
    assert "usage: lsr index build" in capsys.readouterr().err


def test_overwrite_never_deletes_a_users_folder(tiny_beir, tmp_path, capsys):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("years of work")
    rc = main(["index", "build", "--corpus", str(tiny_beir / "corpus.jsonl"), "--encoder", "bm25", "--out", str(mine),
               "--overwrite", "-q"])
    assert rc == 1
    assert "not something lsr wrote" in capsys.readouterr().err
    assert (mine / "chapter1.tex").read_text() == "years of work"


def test_output_into_the_current_folder(tiny_beir, tmp_path, monkeypatch, capsys):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(["index", "build", "--corpus", str(tiny_beir / "corpus.jsonl"), "--encoder", "bm25",
                 "--out", ".", "-q"]) == 0
    assert (here / "manifest.json").exists()
    assert main(["search", ".", "cat"]) == 0


def test_flipped_bytes_in_posting_docs_exit_1_naming_the_array(tiny_index, capsys):
    f = tiny_index / "posting_docs.npy"
    raw = bytearray(f.read_bytes())
    raw[-3] ^= 0x7F  # the high byte of a document index: far outside the index
    f.write_bytes(bytes(raw))
    proc = subprocess.run([sys.executable, "-m", "lsr.cli", "search", str(tiny_index), "cat"],
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert "posting_docs" in proc.stderr and "corrupt" in proc.stderr


def test_k_is_capped_at_the_documents(tiny_index, tiny_beir, tmp_path, capsys):
    qfile = tmp_path / "q.tsv"
    qfile.write_text("a\tthe cat\nb\tgarden\n")
    assert main(["search", str(tiny_index), "--queries", str(qfile), "-k", "5000000", "--out",
                 str(tmp_path / "run.trec")]) == 0
    assert "capped at the index's 4 documents" in capsys.readouterr().err
    lines = (tmp_path / "run.trec").read_text().splitlines()
    assert 0 < len(lines) <= 8


def test_a_swapped_encoder_is_refused_with_both_identities(tiny_index, capsys):
    stats = next(p for p in (tiny_index / "encoder").iterdir() if p.name != "lsr.json")
    stats.write_bytes(stats.read_bytes() + b" ")
    assert main(["search", str(tiny_index), "cat"]) == 1
    err = capsys.readouterr().err
    assert "not the encoder this index was built with" in err and err.count("sha256:") == 2
    assert main(["index", "info", str(tiny_index), "--verify"]) == 1


def test_index_info_reports_the_encoder_identity(tiny_index, capsys):
    assert main(["index", "info", str(tiny_index)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["encoder_identity"].startswith("sha256:") and info["encoder_identity_checked"] is True


@pytest.mark.parametrize("bad_id", ["d 1", "d\t1", "d\n1", "d\x001"])
def test_ids_with_white_space_or_control_characters_are_refused(make_beir, tmp_path, capsys, bad_id):
    folder = make_beir(tmp_path / "b", [{"_id": "ok", "text": "fine"}, {"_id": bad_id, "text": "cat"}],
                       [{"_id": "q1", "text": "cat"}], {"test": [("q1", "ok", 1)]})
    assert main(["index", "build", "--corpus", str(folder / "corpus.jsonl"), "--encoder", "bm25",
                 "--out", str(tmp_path / "i"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "corpus.jsonl:2:" in err and "white space or control characters" in err
    assert not (tmp_path / "i").exists()


def test_duplicate_ids_are_named_with_both_lines(make_beir, tmp_path, capsys):
    folder = make_beir(tmp_path / "b", [{"_id": "a", "text": "x"}, {"_id": "b", "text": "y"}, {"_id": "a", "text": "z"}],
                       [{"_id": "q1", "text": "x"}], {"test": [("q1", "a", 1)]})
    assert main(["index", "build", "--corpus", str(folder / "corpus.jsonl"), "--encoder", "bm25",
                 "--out", str(tmp_path / "i"), "-q"]) == 1
    assert "corpus.jsonl:3: document id 'a' occurs twice (first at line 1)" in capsys.readouterr().err


def test_non_utf8_is_reported_at_its_own_line(tmp_path, capsys):
    lines = [json.dumps({"_id": str(i), "text": "word " * 40}).encode() for i in range(3000)]
    lines[2999] = b'{"_id": "2999", "text": "caf\xe9"}'
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["index", "build", "--corpus", str(corpus), "--encoder", "bm25", "--out", str(tmp_path / "i"),
                 "-q"]) == 1
    assert "corpus.jsonl:3000: not valid UTF-8" in capsys.readouterr().err


def test_negative_relevance_is_kept_with_a_warning(make_beir, tmp_path, caplog):
    from eval import load_dataset

    folder = make_beir(tmp_path / "b", [{"_id": "a", "text": "x"}, {"_id": "b", "text": "y"}],
                       [{"_id": "q1", "text": "x"}], {"test": [("q1", "a", 1), ("q1", "b", -1)]})
    with caplog.at_level("WARNING"):
        ds = load_dataset(str(folder))
    assert ds.qrels["q1"]["b"] == -1
    assert "1 judgement(s) with negative relevance" in caplog.text


def test_names_that_share_a_run_file_are_refused(tiny_beir, tmp_path, capsys):
    rc = main(["evaluate", "--dataset", str(tiny_beir), "--encoder", "bm25", "--encoder", "bm25", "--name", "a/b",
               "--name", "a b", "--out", str(tmp_path / "r"), "-q"])
    assert rc == 1
    assert "would both write a_b.run" in capsys.readouterr().err


def test_quiet_prints_no_progress_bar(tiny_beir, tmp_path):
    code = ("import sys; from lsr.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, "index", "build", "--corpus", str(tiny_beir / "corpus.jsonl"),
                           "--encoder", "splade-tiny", "--out", str(tmp_path / "i"), "-q"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
