"""Writers overwrite only what lsr wrote, one at a time, and clean up after writers that died."""

import os
import stat
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from index import InvertedIndex
from index.storage import (
    ConcurrentWriteError,
    NotAnArtifactError,
    atomic_dir,
    remove_stale_temporaries,
    write_lock,
)


@pytest.fixture
def small():
    return InvertedIndex.build(sp.csr_array(np.array([[1.0, 0, 2.0], [0, 3.0, 0]], dtype=np.float32)))


def test_overwrite_refuses_a_folder_lsr_did_not_write(small, tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "thesis.tex").write_text("years of work")
    with pytest.raises(NotAnArtifactError, match="not something lsr wrote"):
        small.save(user, overwrite=True)
    assert (user / "thesis.tex").read_text() == "years of work"
    small.save(tmp_path / "idx")
    small.save(tmp_path / "idx", overwrite=True)  # an lsr index of the same kind is replaced
    assert InvertedIndex.load(tmp_path / "idx").n_docs == 2


def test_overwrite_refuses_another_kind_of_lsr_artifact(small, tmp_path):
    enc = tmp_path / "enc"
    enc.mkdir()
    (enc / "lsr.json").write_text('{"kind": "bm25"}')
    with pytest.raises(NotAnArtifactError, match="is an lsr encoder"):
        small.save(enc, overwrite=True)


def test_save_into_the_current_folder_by_dot(small, tmp_path, monkeypatch):
    target = tmp_path / "here"
    target.mkdir()
    monkeypatch.chdir(target)
    small.save(".")
    assert InvertedIndex.load(target).n_docs == 2


def test_a_second_writer_fails_at_once_naming_the_first(tmp_path):
    code = ("import sys, time; from index.storage import write_lock\n"
            "with write_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(30)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "idx")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConcurrentWriteError, match=f"pid {holder.pid}"):
            with write_lock(tmp_path / "idx"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with write_lock(tmp_path / "idx"):  # the lock of a writer that is gone is taken over
        with write_lock(tmp_path / "idx"):  # re-entrant within a process
            pass
    assert not (tmp_path / ".idx.lock").exists()


def test_temporaries_of_dead_writers_are_removed(small, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".idx.tmp-{pid}-abc"
    stale.mkdir()
    (stale / "posting_docs.npy").write_bytes(b"x" * 100)
    shards = tmp_path / f".other.shards-{pid}-x"
    shards.mkdir()
    mine = tmp_path / f".idx.tmp-{os.getpid()}-live"
    mine.mkdir()
    user = tmp_path / ".config.tmp"  # not one of lsr's names
    user.mkdir()
    small.save(tmp_path / "idx")
    assert not stale.exists() and not shards.exists()
    assert mine.exists() and user.exists()
    assert remove_stale_temporaries(tmp_path) == 0


def test_folders_follow_the_umask(small, tmp_path):
    old = os.umask(0o022)
    try:
        path = small.save(tmp_path / "idx")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755


def test_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "idx") as tmp:
            (tmp / "manifest.json").write_text("{}")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_writer_killed_mid_write_leaves_no_lock_and_its_temporary_is_removed(small, tmp_path):
    code = ("import sys, time; from index.storage import atomic_dir\n"
            "with atomic_dir(sys.argv[1]) as tmp:\n"
            "    (tmp / 'posting_docs.npy').write_bytes(b'x' * 1000); print('writing', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "idx")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.kill()  # SIGKILL: no clean-up runs in the writer
    proc.wait()
    assert any(p.name.startswith(f".idx.tmp-{proc.pid}-") for p in tmp_path.iterdir())
    small.save(tmp_path / "idx")  # the lock died with its holder; the orphan is removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]
