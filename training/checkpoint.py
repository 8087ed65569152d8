"""Checkpoints without pickle: tensors in safetensors, everything else in JSON.

A training checkpoint folder (``checkpoints/step-N/``) holds

    checkpoint.json     {"format": "lsr-checkpoint", "version": 1, "state": <the state as JSON>}
    tensors.safetensors every tensor of the state (model, optimizer moments, RNG state...)
    config.json         the training config

In ``state``, a tensor is ``{"__tensor__": name}`` (a key of the safetensors file), a tuple
``{"__tuple__": [...]}`` and a dict with non-string keys (an optimizer's per-parameter state)
``{"__items__": [[key, value], ...]}``. Reading it executes nothing: ``torch.load`` of a pickle can
run any code a crafted file carries, so checkpoints of older lsr versions (``state.pt``) are refused.

Example:
    >>> save_state({"step": 3, "model": model.state_dict()}, folder)        # doctest: +SKIP
    >>> state = load_state(folder)                                            # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

CHECKPOINT_JSON = "checkpoint.json"
TENSORS = "tensors.safetensors"
FORMAT = "lsr-checkpoint"
VERSION = 1
LEGACY_PICKLE = "state.pt"


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be read (missing, corrupt, or an unsafe pickle of an older lsr)."""


def _encode(obj, tensors: dict[str, torch.Tensor]):
    if isinstance(obj, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = obj.detach().cpu().clone().contiguous()  # clone: safetensors refuses shared storage
        return {"__tensor__": name}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not {"__tensor__", "__tuple__", "__items__"} & set(obj):
            return {k: _encode(v, tensors) for k, v in obj.items()}
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise TypeError(f"a checkpoint dict key must be a string or number, got {type(k).__name__}")
            items.append([k, _encode(v, tensors)])
        return {"__items__": items}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint (tensors, numbers, strings, lists, dicts)")


def _decode(obj, tensors: dict[str, torch.Tensor]):
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {k: _decode(v, tensors) for k, v in obj["__items__"]}
    if "__float__" in obj:
        return float(obj["__float__"])
    return {k: _decode(v, tensors) for k, v in obj.items()}


def save_state(state: dict, directory: str | Path) -> None:
    """Write ``state`` (nested dicts, lists, tuples, numbers, strings and tensors) into ``directory``."""
    directory = Path(directory)
    tensors: dict[str, torch.Tensor] = {}
    encoded = _encode(state, tensors)
    save_file(tensors, str(directory / TENSORS))
    with open(directory / CHECKPOINT_JSON, "w", encoding="utf-8") as f:
        json.dump({"format": FORMAT, "version": VERSION, "state": encoded}, f)
        f.write("\n")


def load_state(directory: str | Path) -> dict:
    """Read a state written by :func:`save_state`; nothing in the files is executed.

    Raises:
        CheckpointError: naming the folder and what to do (an older pickled ``state.pt`` is refused).
    """
    directory = Path(directory)
    meta_path = directory / CHECKPOINT_JSON
    if not meta_path.exists():
        if (directory / LEGACY_PICKLE).exists():
            raise CheckpointError(
                f"{directory} is a checkpoint of an older lsr, a pickle ({LEGACY_PICKLE}); lsr no longer unpickles "
                "checkpoints, since loading a pickle can run any code the file carries. Delete that folder to "
                "resume from an earlier checkpoint or start over"
            )
        raise CheckpointError(f"{directory} has no {CHECKPOINT_JSON}: not an lsr checkpoint; delete it to start over")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{meta_path} is corrupt ({e}); delete {directory} to resume from an earlier one") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("version"), int):
        raise CheckpointError(f"{meta_path} is not an lsr checkpoint; delete {directory}")
    if meta["version"] > VERSION:
        raise CheckpointError(f"{meta_path} has checkpoint version {meta['version']}, newer than this lsr reads "
                              f"({VERSION}); upgrade lsr")
    try:
        tensors = load_file(str(directory / TENSORS))
    except (OSError, SafetensorError) as e:
        raise CheckpointError(f"{directory / TENSORS} cannot be read ({e}); delete {directory} to resume from an "
                              "earlier checkpoint") from None
    try:
        return _decode(meta["state"], tensors)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{meta_path} does not match {TENSORS} ({e}); delete {directory}") from None
