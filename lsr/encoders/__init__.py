"""Sparse encoders and :func:`load_encoder`, which finds one by name, spec or directory.

Kinds are registered by module path and imported only when used, so that naming ``bm25``
never imports torch.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from .base import ENCODER_JSON, EncoderFormatError, SparseEncoder, read_encoder_json

#: kind -> "module:Class"; neural kinds register here as they land.
REGISTRY: dict[str, str] = {
    "bm25": "lsr.encoders.bm25:BM25Encoder",
    "splade": "lsr.encoders.splade:SpladeEncoder",
    "inference-free": "lsr.encoders.splade:InferenceFreeEncoder",
    "slim": "lsr.encoders.slim:SlimEncoder",
}
#: short names of models shipped in PyPI packages (see lsr.encoders.models.PACKAGED); loaded as SPLADE
PACKAGED_NAMES = ("splade-tiny", "all-MiniLM-L6-v2", "minilm", "minilm-l6")
#: encoders trained by lsr and shipped inside this package (lsr/models/<name>/, with a model card README.md)
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "models"
SHIPPED = ("inference-free-tiny",)


def shipped_path(name: str) -> Path:
    """The folder of a model shipped in the lsr package; a clear error if the installation lacks it."""
    path = SHIPPED_DIR / name
    if not (path / ENCODER_JSON).exists():
        raise EncoderFormatError(f"the shipped model {name!r} is missing from this installation ({path}); "
                                 "reinstall lsr (pip install --force-reinstall lsr)")
    return path


def encoder_class(kind: str) -> type[SparseEncoder]:
    if kind not in REGISTRY:
        raise EncoderFormatError(f"unknown encoder kind {kind!r}; known: {', '.join(sorted(REGISTRY))}")
    module, cls = REGISTRY[kind].split(":")
    return getattr(importlib.import_module(module), cls)


def _parse_value(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> tuple[str, dict]:
    """Split ``"bm25:k1=1.2,b=0.75"`` into ``("bm25", {"k1": 1.2, "b": 0.75})``."""
    kind, _, rest = spec.partition(":")
    params = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"encoder spec {spec!r}: expected key=value pairs after ':', got {item!r}")
        params[key.strip()] = _parse_value(value.strip())
    return kind.strip(), params


def load_encoder(spec: str | os.PathLike, **overrides) -> SparseEncoder:
    """Get an encoder by name, spec or directory.

    Args:
        spec: one of
            ``"bm25"`` or ``"bm25:k1=1.2,b=0.75"`` (BM25 with parameters);
            ``"splade-tiny"`` (a packaged model, as SPLADE; ``"splade-tiny:dtype=bfloat16"``);
            ``"inference-free-tiny"`` (the model lsr trained and ships, see ``lsr/models/``);
            ``"splade:model=all-MiniLM-L6-v2"`` / ``"inference-free:model=splade-tiny"`` (a kind with
            constructor arguments);
            a directory saved by ``encoder.save`` (with ``lsr.json``), or a Hugging Face model directory;
            a hub name such as ``"naver/splade-v3"`` (downloaded by transformers, online only).
        overrides: constructor arguments (for named kinds and model directories).

    Example:
        >>> from lsr import load_encoder
        >>> enc = load_encoder("bm25:k1=1.2")
        >>> enc.k1
        1.2
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        if (path / ENCODER_JSON).exists():
            meta = read_encoder_json(path)
            return encoder_class(meta["kind"]).from_directory(path, meta)
        if (path / "config.json").exists():
            return encoder_class("splade")(str(path), **overrides)
        raise EncoderFormatError(
            f"{path} has neither {ENCODER_JSON} (an lsr encoder) nor config.json (a Hugging Face model)"
        )
    spec = str(spec)
    kind, params = parse_spec(spec)
    params.update(overrides)
    if kind in SHIPPED:
        return _with_overrides(load_encoder(shipped_path(kind)), params, spec)
    if kind in REGISTRY:
        cls = encoder_class(kind)
    elif kind in PACKAGED_NAMES:
        cls = encoder_class("splade")
        params.setdefault("model", kind)
    elif "/" in kind and not spec.startswith((".", "/", "~")):
        cls = encoder_class("splade")  # a hub name: transformers downloads it (online only)
        params.setdefault("model", kind)
    else:
        if os.sep in spec or spec.startswith("."):
            raise FileNotFoundError(f"{spec}: no such encoder directory")
        raise EncoderFormatError(
            f"unknown encoder {spec!r}: give a kind ({', '.join(sorted(REGISTRY))}) optionally with parameters "
            f"(bm25:k1=1.2,b=0.75), a packaged model ({', '.join(PACKAGED_NAMES[:2])}), a hub name, "
            "or a directory"
        )
    try:
        return cls(**params)
    except TypeError as e:
        raise ValueError(f"encoder {spec!r}: {e}") from None


def _with_overrides(enc: SparseEncoder, params: dict, spec: str) -> SparseEncoder:
    """A loaded encoder with run-time settings changed (``inference-free-tiny:dtype=bfloat16,batch_size=64``)."""
    settable = set(enc.config())
    for key, value in params.items():
        if key not in settable:
            raise ValueError(f"encoder {spec!r}: {key!r} cannot be set on a saved model; settable: {sorted(settable)}")
        setattr(enc, key, value)
    return enc


__all__ = ["SparseEncoder", "EncoderFormatError", "load_encoder", "parse_spec", "encoder_class", "ENCODER_JSON", "REGISTRY"]
