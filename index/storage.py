"""On-disk layout helpers: atomic directories, ``.npy`` arrays with checksums, manifests.

An artifact is a directory of ``.npy`` files plus ``manifest.json``. It is written into a
hidden temporary sibling directory and renamed into place only when complete, so a crash never
leaves a half-written artifact under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import IndexFormatError

MANIFEST = "manifest.json"


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory that becomes ``path`` when the block ends without error.

    Args:
        path: the final directory.
        overwrite: replace an existing ``path``; otherwise an existing non-empty directory is an
            error (so nothing is lost by mistake).

    On an exception the temporary directory is removed and ``path`` is left untouched.
    """
    final = Path(path)
    if final.exists() and not final.is_dir():
        raise FileExistsError(f"{final} exists and is not a directory; choose another output path")
    if final.is_dir() and any(final.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{final} already exists and is not empty; pass overwrite=True (CLI: --overwrite) "
            "or choose another output path"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            trash = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, trash)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
        path = directory / entry["file"]
        dtype = np.dtype(entry["dtype"])
        shape = tuple(int(s) for s in entry["shape"])
    except (KeyError, TypeError, ValueError) as e:
        raise IndexFormatError(f"{directory / MANIFEST}: malformed array entry {entry!r} ({e})") from None
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
    except (ValueError, OSError, EOFError) as e:
        raise IndexFormatError(f"{path} cannot be read as a .npy array ({e}); rebuild the index") from None
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
