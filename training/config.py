"""Training configuration: a JSON (or YAML) file read into validated dataclasses.

Unknown keys and impossible values are refused with the key's path and the accepted values, e.g.
``config.json: regularizer.doc.kind: 'flop' is not one of flops, l1, df_flops, none``. The
resolved config is saved as ``config.json`` with every checkpoint and the final model.

A minimal config (everything else has defaults)::

    {"output_dir": "models/if-scifact",
     "model": {"kind": "inference-free", "backbone": "splade-tiny"},
     "data": {"train": [{"dataset": "scifact", "split": "train"}]},
     "regularizer": {"doc": {"kind": "flops", "target_nnz": 200}},
     "optim": {"steps": 2000}}
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .model import KINDS, QUERY_WEIGHTS
from .regularizers import PENALTIES

TEACHERS = ("bm25", "dense", "splade", "self")
DISTILL = ("none", "kl", "margin_mse")


class ConfigError(ValueError):
    """A training config that cannot be used; the message names the file and the key."""


@dataclass
class ModelConfig:
    kind: str = "inference-free"
    backbone: str = "splade-tiny"
    query_weights: str = "idf"
    activation: str = "log1p_relu"
    query_max_length: int = 64
    doc_max_length: int = 256
    token_top_k: int = 20
    bf16: bool = True

    def check(self) -> None:
        _one_of("kind", self.kind, KINDS)
        _one_of("query_weights", self.query_weights, QUERY_WEIGHTS)
        _one_of("activation", self.activation, ("log1p_relu", "log_log"))
        _positive("query_max_length", self.query_max_length)
        _positive("doc_max_length", self.doc_max_length)
        _positive("token_top_k", self.token_top_k)


@dataclass
class SourceConfig:
    """One training source: a BEIR data set split, a triples TSV or a JSONL of examples."""

    dataset: str | None = None
    split: str = "train"
    triples: str | None = None
    jsonl: str | None = None
    corpus: str | None = None  # the corpus a JSONL's document ids refer to (BEIR folder or name)
    weight: float = 1.0

    def check(self) -> None:
        given = [k for k in ("dataset", "triples", "jsonl") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of dataset, triples, jsonl")
        _positive("weight", self.weight)


@dataclass
class NegativesConfig:
    teachers: list[str] = field(default_factory=lambda: ["bm25"])
    depth: int = 100
    keep: int = 32
    cache_dir: str | None = None
    dense_model: str = "all-MiniLM-L6-v2"

    def check(self) -> None:
        for t in self.teachers:
            _one_of("teachers", t, TEACHERS)
        if not self.teachers:
            raise ValueError("teachers: at least one teacher mines the hard negatives")
        _positive("depth", self.depth)
        _positive("keep", self.keep)


@dataclass
class DataConfig:
    train: list[SourceConfig] = field(default_factory=list)
    data_dir: str | None = None
    negatives: NegativesConfig = field(default_factory=NegativesConfig)
    n_negatives: int = 3
    max_queries: int | None = None

    def check(self) -> None:
        if not self.train:
            raise ValueError("train: give at least one source, e.g. [{\"dataset\": \"scifact\", \"split\": \"train\"}]")
        for s in self.train:
            s.check()
        self.negatives.check()
        if self.n_negatives < 0:
            raise ValueError(f"n_negatives must be >= 0, got {self.n_negatives}")


@dataclass
class LossConfig:
    contrastive: float = 1.0
    in_batch: bool = True
    temperature: float = 1.0
    distill: str = "none"
    distill_weight: float = 1.0
    distill_temperature: float = 1.0
    teacher_weights: dict[str, float] = field(default_factory=dict)
    teacher_scale: float = 10.0

    def check(self) -> None:
        _one_of("distill", self.distill, DISTILL)
        if self.contrastive < 0 or self.distill_weight < 0:
            raise ValueError("loss weights must be >= 0")
        if self.contrastive == 0 and self.distill == "none":
            raise ValueError("no ranking loss: set contrastive > 0 or a distill loss")
        _positive("temperature", self.temperature)
        _positive("distill_temperature", self.distill_temperature)
        for k in self.teacher_weights:
            _one_of("teacher_weights", k, TEACHERS)


@dataclass
class PenaltyConfig:
    kind: str = "flops"
    weight: float = 1e-3
    warmup_steps: int = 0
    l0_threshold: int | None = None
    target_nnz: float | None = None
    target_flops: float | None = None
    controller_gain: float = 0.05
    controller_damping: float = 4.0
    df_alpha: float = 0.1
    df_beta: float = 4.0

    def check(self) -> None:
        _one_of("kind", self.kind, PENALTIES)
        if self.weight < 0:
            raise ValueError(f"weight must be >= 0, got {self.weight}")
        if self.warmup_steps < 0:
            raise ValueError("warmup_steps must be >= 0")
        if self.target_nnz is not None and self.target_flops is not None:
            raise ValueError("give target_nnz or target_flops, not both")
        for name in ("target_nnz", "target_flops"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ValueError(f"{name} must be > 0, got {v}")
        if (self.target_nnz or self.target_flops) and (self.kind == "none" or self.weight <= 0):
            raise ValueError("a sparsity target needs a regularizer kind and a starting weight > 0")
        if self.l0_threshold is not None and self.l0_threshold < 0:
            raise ValueError("l0_threshold must be >= 0")
        if self.controller_gain < 0 or self.controller_damping < 0:
            raise ValueError(f"controller_gain and controller_damping must be >= 0, got {self.controller_gain} and "
                             f"{self.controller_damping}")
        if not 0 < self.df_alpha < 1:
            raise ValueError("df_alpha must be in (0, 1)")


@dataclass
class RegularizerConfig:
    doc: PenaltyConfig = field(default_factory=PenaltyConfig)
    query: PenaltyConfig = field(default_factory=lambda: PenaltyConfig(kind="none", weight=0.0))

    def check(self) -> None:
        self.doc.check()
        self.query.check()


@dataclass
class OptimConfig:
    lr: float = 3e-5
    query_weights_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    steps: int = 1000
    batch_size: int = 16
    accumulation: int = 1
    max_grad_norm: float = 1.0
    seed: int = 0
    threads: int | None = None
    max_minutes: float | None = None
    device: str = "cpu"

    def check(self) -> None:
        if not (self.device in ("cpu", "cuda", "auto") or self.device.startswith("cuda:")):
            raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {self.device!r}")
        _positive("lr", self.lr)
        _positive("steps", self.steps)
        _positive("batch_size", self.batch_size)
        _positive("accumulation", self.accumulation)
        if self.warmup_steps < 0 or self.weight_decay < 0:
            raise ValueError("warmup_steps and weight_decay must be >= 0")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError("max_minutes must be > 0")


@dataclass
class EvalConfig:
    dataset: str | None = None
    split: str = "dev"
    every: int = 0
    measures: str = "nDCG@10,R@100"
    max_queries: int | None = None
    k: int = 100
    keep_best: bool = False
    select: str | None = None

    def check(self) -> None:
        if self.every < 0:
            raise ValueError("every must be >= 0")
        _positive("k", self.k)
        names = [m.strip() for m in self.measures.split(",") if m.strip()]
        if self.select is not None and self.select not in names:
            raise ValueError(f"select ({self.select!r}) must be one of the measures {names}")
        if self.keep_best and not self.dataset:
            raise ValueError("keep_best needs eval.dataset (the split the best model is chosen on)")

    @property
    def selection_measure(self) -> str:
        """The measure that picks the best model: ``select``, else the first of ``measures``."""
        return self.select or self.measures.split(",")[0].strip()


@dataclass
class CheckpointConfig:
    every: int = 500
    keep: int = 2

    def check(self) -> None:
        _positive("every", self.every)
        _positive("keep", self.keep)


@dataclass
class TrainConfig:
    output_dir: str = "models/lsr-model"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    regularizer: RegularizerConfig = field(default_factory=RegularizerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)

    def check(self) -> None:
        for name in ("model", "data", "loss", "regularizer", "optim", "eval", "checkpoint"):
            try:
                getattr(self, name).check()
            except ValueError as e:
                raise ConfigError(f"{name}: {e}") from None
        if self.model.kind != "inference-free" and self.model.query_weights != "idf":
            raise ConfigError("model.query_weights applies to inference-free models only")
        if self.model.kind == "inference-free" and self.regularizer.query.kind != "none":
            raise ConfigError("regularizer.query: inference-free queries have no model to regularize; use kind 'none'")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike) -> Path:
        from eval.atomic import atomic_file

        path = Path(path)
        with atomic_file(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def _one_of(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(map(str, allowed))}")


def _positive(name: str, value) -> None:
    if value is None or value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def _build(cls, data, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where + ': ' if where else ''}unknown key {unknown[0]!r}; known keys: {', '.join(sorted(names))}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        path = f"{where}.{key}" if where else key
        kwargs[key] = _convert(hint, value, path)
    return cls(**kwargs)


def _convert(hint, value, path: str):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
        return [_convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected an object, got {type(value).__name__}")
        return {str(k): _convert(args[1], v, f"{path}.{k}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, path)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    return value


def config_from_dict(data: dict, source: str = "config") -> TrainConfig:
    """A validated :class:`TrainConfig` from a dict (``source`` names the file in errors)."""
    try:
        cfg = _build(TrainConfig, data, "")
        cfg.check()
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    return cfg


def load_config(path: str | os.PathLike, overrides: dict | None = None) -> TrainConfig:
    """Read a ``.json`` (or ``.yaml``/``.yml`` with PyYAML installed) training config, or a shipped recipe by name.

    ``overrides`` maps dotted keys to values, e.g. ``{"optim.steps": 10}``.
    """
    p = Path(path)
    if not p.exists() and not p.suffix:
        shipped = Path(__file__).parent / "recipes" / f"{p.name}.json"
        if shipped.exists():
            p = shipped
    if not p.exists():
        raise FileNotFoundError(f"{path}: no such config file (shipped recipes: {', '.join(list_recipes())})")
    text = p.read_text(encoding="utf-8")
    if p.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"{p}: reading YAML needs PyYAML (pip install pyyaml), or write the config as JSON") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({e})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{p}:{e.lineno}: not valid JSON ({e.msg})") from None
    for key, value in (overrides or {}).items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return config_from_dict(data, str(p))


def list_recipes() -> list[str]:
    folder = Path(__file__).parent / "recipes"
    return sorted(p.stem for p in folder.glob("*.json"))
