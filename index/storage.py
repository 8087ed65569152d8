"""On-disk layout helpers: atomic directories, write locks, ``.npy`` arrays with checksums, manifests.

An artifact is a directory of ``.npy`` files plus ``manifest.json``. It is written into a
hidden temporary sibling directory and renamed into place only when complete, so a crash never
leaves a half-written artifact under the final name. Three more guards:

* **Overwrite only what lsr wrote.** ``overwrite=True`` replaces an existing non-empty folder
  only when it holds the marker file of the same kind of artifact (``manifest.json`` of an index,
  ``lsr.json`` of an encoder...); any other folder is refused with its path, so a mistyped
  ``--out`` never erases user files.
* **One writer at a time.** A writer holds an advisory lock on ``.<name>.lock`` (holding its pid) in
  the target's parent; a second writer of the same target fails at once, naming the first. The kernel
  drops the lock when its holder dies.
* **Nothing left behind.** Temporary names carry the writer's pid (``.<name>.tmp-<pid>-...``,
  ``.<name>.shards-<pid>-...``); a later writer in the same folder removes those whose process is gone
  (a run killed with SIGKILL cannot clean up after itself).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import IndexFormatError

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"

#: ``(marker file, value of its "format" field or None for any JSON object)`` per kind of artifact
#: that :func:`atomic_dir` may replace with ``overwrite=True``.
MARKERS: dict[str, tuple[str, str | None]] = {
    "index": (MANIFEST, "lsr-index"),
    "live": ("segments.json", "lsr-segmented-index"),
    "lucene": ("lucene.json", "lsr-lucene"),
    "milvus": (MANIFEST, "lsr-milvus"),
    "faiss": (MANIFEST, "lsr-faiss"),
    "encoder": ("lsr.json", None),
    "token-store": (MANIFEST, "lsr-token-store"),
    "checkpoint": ("checkpoint.json", "lsr-checkpoint"),
    "encoding": ("encode.json", "lsr-encoding"),
    "report": ("report.json", "lsr-report"),
}

_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?:tmp|shards|old)-(?P<pid>\d+)(?:[-.]|$)")
_held_locks: dict[str, int] = {}
_held_guard = threading.Lock()


class ConcurrentWriteError(FileExistsError):
    """Another process is writing the same artifact."""


class NotAnArtifactError(FileExistsError):
    """``overwrite`` was asked for a folder that lsr did not write (or wrote as another kind of artifact)."""


def absolute(path: str | os.PathLike) -> Path:
    """``path`` made absolute without resolving links, so that ``.`` and ``..`` have a name."""
    return Path(os.path.abspath(os.fspath(path)))


def current_umask() -> int:
    """The process's file-mode creation mask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: Path) -> None:
    """Give a directory made by :func:`tempfile.mkdtemp` (mode 0700) the mode the user's umask gives."""
    os.chmod(path, 0o777 & ~current_umask())


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete lsr's temporary files and folders in ``folder`` whose writing process is gone.

    Returns how many were removed. Those of live processes (another writer at work) are kept.
    """
    folder = Path(folder)
    removed = 0
    try:
        entries = list(folder.iterdir())
    except OSError:
        return 0
    for p in entries:
        m = _TEMP_NAME.match(p.name)
        if m is None or pid_alive(int(m.group("pid"))):
            continue
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed += 1
            logger.info("removed %s, left by a writer (pid %s) that is gone", p, m.group("pid"))
        except OSError as e:
            logger.warning("could not remove the stale temporary %s (%s)", p, e)
    return removed


def artifact_kind(path: str | os.PathLike) -> str | None:
    """Which kind of lsr artifact (a key of :data:`MARKERS`) the folder ``path`` holds, or ``None``."""
    path = Path(path)
    for kind, (marker, fmt) in MARKERS.items():
        mp = path / marker
        if not mp.is_file():
            continue
        try:
            obj = json.loads(mp.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(obj, dict) and (fmt is None or obj.get("format") == fmt):
            return kind
    return None


def check_target(path: str | os.PathLike, overwrite: bool, kind: str) -> Path:
    """Refuse to write ``path`` unless it is absent, an empty folder, or (with ``overwrite``) an lsr ``kind``.

    Returns the absolute path. Raises :class:`FileExistsError` (:class:`NotAnArtifactError` for a
    folder lsr did not write) naming the path and the fix.
    """
    if kind not in MARKERS:
        raise ValueError(f"unknown artifact kind {kind!r}; one of {', '.join(MARKERS)}")
    final = absolute(path)
    if final.exists() and not final.is_dir():
        raise FileExistsError(f"{final} exists and is not a directory; choose another output path")
    if final.is_dir() and any(final.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{final} already exists and is not empty; pass overwrite=True (CLI: --overwrite) "
                "or choose another output path"
            )
        found = artifact_kind(final)
        if found != kind:
            what = f"an lsr {found}" if found else "not something lsr wrote"
            raise NotAnArtifactError(
                f"{final} is {what} (no {MARKERS[kind][0]} of an lsr {kind}), so --overwrite will not replace it: "
                "overwrite only replaces a folder of the same kind that lsr wrote; choose another output path "
                "or remove the folder yourself"
            )
    return final


def _lock_path(final: Path) -> Path:
    return final.parent / f".{final.name}.lock"


@contextlib.contextmanager
def write_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold the write lock of the artifact ``path`` (``.<name>.lock`` beside it) for the block.

    The lock is an advisory ``flock`` on that file, so the kernel releases it when its holder dies, even
    by SIGKILL: a killed build never blocks the next one. The file holds the holder's pid, for the
    message a second writer gets. Re-entrant within a process.

    Raises:
        ConcurrentWriteError: another process holds the lock (its pid is named); raised at once.
    """
    import fcntl

    final = absolute(path)
    key = str(final)
    with _held_guard:
        reentered = key in _held_locks
        if reentered:
            _held_locks[key] += 1
    if reentered:
        try:
            yield final
        finally:
            with _held_guard:
                _held_locks[key] -= 1
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    lock = _lock_path(final)
    while True:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                owner = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            finally:
                os.close(fd)
            raise ConcurrentWriteError(
                f"{final} is being written by another process (pid {owner}, lock {lock}); wait for it to finish "
                "or write elsewhere"
            ) from None
        try:  # the previous holder may have removed the file between our open and our lock: retry on a fresh one
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    with _held_guard:
        _held_locks[key] = 1
    try:
        yield final
    finally:
        with _held_guard:
            _held_locks.pop(key, None)
        try:
            lock.unlink(missing_ok=True)  # while still locked: a waiter then sees the inode change and retries
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False, *, kind: str = "index") -> Iterator[Path]:
    """Yield a fresh temporary directory that becomes ``path`` when the block ends without error.

    Args:
        path: the final directory.
        overwrite: replace an existing ``path``, but only if it holds an lsr artifact of the same
            ``kind`` (see :func:`check_target`); otherwise an existing non-empty directory is an error.
        kind: the kind of artifact written (a key of :data:`MARKERS`); the block must write its marker.

    The writer holds :func:`write_lock` for the block. On an exception the temporary directory is
    removed and ``path`` is left untouched.
    """
    final = check_target(path, overwrite, kind)
    with write_lock(final):
        final = check_target(final, overwrite, kind)  # again, now that no one else can write it
        remove_stale_temporaries(final.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-{os.getpid()}-", dir=final.parent))
        apply_umask(tmp)
        try:
            yield tmp
            if final.exists() and _holds_cwd(final):
                _fill_in_place(tmp, final, MARKERS[kind][0])
            elif final.exists():
                trash = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-{os.getpid()}-", dir=final.parent))
                os.replace(final, trash / "old")
                os.replace(tmp, final)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _holds_cwd(final: Path) -> bool:
    """Whether ``final`` is the working directory or one above it (``--out .``)."""
    try:
        cwd = Path.cwd()
    except OSError:
        return False
    return cwd == final or final in cwd.parents


def _fill_in_place(tmp: Path, final: Path, marker: str) -> None:
    """Move ``tmp``'s entries into ``final`` (the marker file last) instead of renaming ``tmp`` over it.

    Renaming over the working directory would leave this process and the user's shell in a deleted
    folder. Readers still see all or nothing: an artifact is read only through its marker file, which is
    removed first and moved in last.
    """
    (final / marker).unlink(missing_ok=True)
    old = [p for p in final.iterdir()]
    if old:  # only an lsr artifact of the same kind gets here (check_target)
        trash = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-{os.getpid()}-", dir=final.parent))
        for p in old:
            os.replace(p, trash / p.name)
        shutil.rmtree(trash, ignore_errors=True)
    entries = sorted(tmp.iterdir(), key=lambda p: p.name == marker)
    for p in entries:
        os.replace(p, final / p.name)
    tmp.rmdir()


def copy_artifact(source: Path, path: str | os.PathLike, *, overwrite: bool = False, kind: str) -> Path:
    """Copy the artifact folder ``source`` to ``path`` atomically (same rules as :func:`atomic_dir`)."""
    path = Path(path)
    if path.resolve() == Path(source).resolve():
        return path
    with atomic_dir(path, overwrite=overwrite, kind=kind) as tmp:
        for p in Path(source).iterdir():
            (shutil.copytree if p.is_dir() else shutil.copy2)(p, tmp / p.name)
    return path


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def write_array(directory: Path, name: str, array: np.ndarray) -> dict:
    """Save ``array`` as ``<name>.npy`` and return its manifest entry (file, dtype, shape, sha256, bytes)."""
    path = directory / f"{name}.npy"
    np.save(path, np.ascontiguousarray(array), allow_pickle=False)
    return describe_array(path, array)


def describe_array(path: Path, array: np.ndarray) -> dict:
    """Manifest entry of an array already saved at ``path``."""
    return {
        "file": path.name,
        "dtype": np.dtype(array.dtype).str,
        "shape": list(array.shape),
        "bytes": path.stat().st_size,
        "sha256": file_sha256(path),
    }


def write_json(path: Path, obj: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def read_manifest(directory: Path, expected_format: str, max_version: int) -> dict:
    """Read and check ``manifest.json`` of an artifact directory.

    Raises:
        IndexFormatError: naming the directory and what to do, when the directory or manifest is
            missing, unreadable, of another format, or written by a newer format version.
    """
    directory = Path(directory)
    if not directory.exists():
        raise FileNotFoundError(f"{directory}: no such index directory; build one with `lsr index build`")
    if not directory.is_dir():
        raise IndexFormatError(f"{directory} is a file, not an index directory")
    mpath = directory / MANIFEST
    if not mpath.exists():
        raise IndexFormatError(
            f"{directory} is not an lsr index: it has no {MANIFEST} "
            "(build one with `lsr index build` or InvertedIndex.save)"
        )
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexFormatError(f"{mpath} is corrupt (not valid JSON: {e}); rebuild the index") from None
    if not isinstance(manifest, dict) or manifest.get("format") != expected_format:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise IndexFormatError(
            f"{mpath} describes a {found!r} artifact, not an {expected_format!r}; "
            "point at a directory written by lsr"
        )
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise IndexFormatError(f"{mpath} has no integer format_version; rebuild the index")
    if version > max_version:
        raise IndexFormatError(
            f"{mpath} has format version {version}, newer than this lsr reads ({max_version}); "
            f"upgrade lsr (it was written by lsr {manifest.get('library_version')})"
        )
    return manifest


def load_array(directory: Path, entry: dict, mmap: bool, verify: bool) -> np.ndarray:
    """Load one array described by a manifest entry, checking size, dtype, shape (and checksum)."""
    try:
        name = entry["file"]
        dtype = np.dtype(entry["dtype"])
        shape = tuple(int(s) for s in entry["shape"])
    except (KeyError, TypeError, ValueError) as e:
        raise IndexFormatError(f"{directory / MANIFEST}: malformed array entry {entry!r} ({e})") from None
    if not isinstance(name, str) or not name or name != Path(name).name or name in (".", "..") or "\\" in name:
        raise IndexFormatError(
            f"{directory / MANIFEST}: array file {name!r} is not a plain file name inside the index folder; "
            "the manifest is corrupt or crafted, rebuild the index"
        )
    path = directory / name
    if path.is_symlink():
        raise IndexFormatError(f"{path} is a symbolic link; an index holds its arrays itself, rebuild it")
    if not path.exists():
        raise IndexFormatError(f"{path} is missing; the index is incomplete, rebuild it")
    size = path.stat().st_size
    if "bytes" in entry and size != entry["bytes"]:
        raise IndexFormatError(
            f"{path} has {size} bytes but the manifest says {entry['bytes']}: the file is truncated "
            "or was replaced; rebuild the index"
        )
    if verify and "sha256" in entry and file_sha256(path) != entry["sha256"]:
        raise IndexFormatError(f"{path} fails its sha256 checksum: the file is corrupt; rebuild the index")
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - a corrupt header fails inside numpy's parser in many ways
        raise IndexFormatError(f"{path} cannot be read as a .npy array ({type(e).__name__}: {e}); "
                               "the index is corrupt, rebuild it") from None
    if arr.dtype != dtype or arr.shape != shape:
        raise IndexFormatError(
            f"{path} holds {arr.dtype}{list(arr.shape)} but the manifest says {dtype}{list(shape)}; "
            "rebuild the index"
        )
    return arr


def directory_size(path: str | os.PathLike) -> int:
    """Total bytes of the regular files under ``path`` (the size of an artifact on disk)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            fp = os.path.join(root, f)
            if not os.path.islink(fp):
                total += os.path.getsize(fp)
    return total
