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
}


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
    """Get an encoder by name, spec or saved directory.

    Args:
        spec: ``"bm25"``, ``"bm25:k1=1.2,b=0.75"``, or a directory written by ``encoder.save``.
        overrides: constructor arguments for a named kind (ignored for directories).

    Example:
        >>> from lsr import load_encoder
        >>> enc = load_encoder("bm25:k1=1.2")
        >>> enc.k1
        1.2
    """
    path = Path(spec)
    if path.is_dir():
        meta = read_encoder_json(path)
        return encoder_class(meta["kind"]).from_directory(path, meta)
    spec = str(spec)
    kind, params = parse_spec(spec)
    if kind not in REGISTRY:
        if os.sep in spec or spec.startswith("."):
            raise FileNotFoundError(f"{spec}: no such encoder directory")
        raise EncoderFormatError(
            f"unknown encoder {spec!r}: give a known kind ({', '.join(sorted(REGISTRY))}), "
            "optionally with parameters (bm25:k1=1.2,b=0.75), or a directory saved by lsr"
        )
    params.update(overrides)
    try:
        return encoder_class(kind)(**params)
    except TypeError as e:
        raise ValueError(f"encoder {spec!r}: {e}") from None


__all__ = ["SparseEncoder", "EncoderFormatError", "load_encoder", "parse_spec", "encoder_class", "ENCODER_JSON", "REGISTRY"]
