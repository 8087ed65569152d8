"""The trainer: one config in, a saved lsr encoder, logs, checkpoints and evaluations out.

Each step draws a batch (queries, one positive and ``n_negatives`` hard negatives each), scores
every query against every document of the batch, and minimises

    contrastive(scores) + distill_weight * distill(group scores, ensemble teacher)
      + lambda_doc(t) * doc_penalty(doc vectors) + lambda_query(t) * query_penalty(query vectors)

with AdamW (linear warm-up, linear decay), gradient accumulation, bf16 autocast and gradient
clipping. ``lambda(t)`` is SPLADE's quadratic warm-up of a fixed weight or, when the config states a
target (``target_nnz`` / ``target_flops``), the output of a :class:`~training.regularizers.SparsityController`.

Written to ``output_dir``: ``config.json``, ``train_log.jsonl`` (one line per step: losses, lambdas,
non-zeros, FLOPS, learning rate, seconds), ``eval_log.jsonl``, ``checkpoints/step-N/`` (model,
optimizer, scheduler, controllers, RNG; the last ``keep`` kept), ``model/`` (an lsr encoder
directory: ``lsr evaluate --encoder output_dir/model``), ``training.png`` and ``summary.json``; with
``eval.keep_best``, ``best/`` holds the model of the evaluation with the highest ``eval.select``
measure (on the eval split: a dev split, never the test split) and its ``selection.json``.
Starting again on the same ``output_dir`` resumes from the latest checkpoint.

``optim.device`` runs the steps on a GPU (``cuda``, ``cuda:N``, or ``auto``: a GPU when torch sees one);
data, teachers, evaluation and the saved files stay the same.

Example:
    >>> from training import load_config, train
    >>> result = train(load_config("inference-free-idf"))                # doctest: +SKIP
    >>> result.model_dir                                                 # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from index import atomic_dir
from lsr.encoders.projection import late_interaction, pooled_tokens, resolve_device

from . import losses
from .checkpoint import CHECKPOINT_JSON, LEGACY_PICKLE, load_state, save_state
from .config import TrainConfig
from .data import Batch, Batcher, Source, beir_source, jsonl_source, triples_source
from .model import TrainableSparse, idf_table

logger = logging.getLogger(__name__)


class TrainResult(NamedTuple):
    output_dir: Path
    model_dir: Path
    steps: int
    seconds: float
    evaluations: list[dict]


class TrainingCollapsed(RuntimeError):
    """A run whose vectors collapsed (toward no terms or toward the whole vocabulary); the message says what to change."""


class CollapseGuard:
    """Stops a run whose document vectors collapse, with a message that says which way and what to change.

    A running mean (over ~50 steps) of the batch's mean document non-zeros is compared, after ``grace``
    steps, with ``low`` (toward 0: the regularizer won) and ``high`` x |V| (toward the vocabulary: it lost).
    Non-finite losses are stopped by the trainer at once.
    """

    def __init__(self, dim: int, *, low: float = 1.0, high: float = 0.5, grace: int = 100, smoothing: float = 0.98):
        self.dim, self.low, self.high, self.grace, self.smoothing = dim, float(low), float(high), int(grace), smoothing
        self.ema: float | None = None

    def check(self, logs: dict, step: int) -> None:
        nnz = float(logs["doc_nnz"])
        self.ema = nnz if self.ema is None else self.smoothing * self.ema + (1 - self.smoothing) * nnz
        if step < self.grace:
            return
        if self.ema < self.low:
            raise TrainingCollapsed(
                f"step {step}: document vectors collapsed toward 0 non-zeros (running mean {self.ema:.2f}); the "
                "sparsity regularizer overpowers the ranking loss: lower regularizer.doc.weight, raise "
                "regularizer.doc.warmup_steps, or set regularizer.doc.target_nnz")
        if self.ema > self.high * self.dim:
            raise TrainingCollapsed(
                f"step {step}: document vectors grew toward the whole vocabulary (running mean {self.ema:.0f} of "
                f"{self.dim} terms); raise regularizer.doc.weight or set regularizer.doc.target_nnz")


class Trainer:
    """Runs a :class:`~training.config.TrainConfig` (see the module documentation)."""

    def __init__(self, config: TrainConfig, *, show_progress: bool = True, sources: list[Source] | None = None):
        config.check()
        self.config = config
        self.out = Path(config.output_dir)
        self.show_progress = show_progress
        if config.optim.threads:
            torch.set_num_threads(int(config.optim.threads))
        torch.manual_seed(config.optim.seed)
        m = config.model
        self.device = resolve_device(config.optim.device)
        self.model = TrainableSparse(m.kind, m.backbone, query_weights=m.query_weights, activation=m.activation,
                                     query_max_length=m.query_max_length, doc_max_length=m.doc_max_length,
                                     token_top_k=m.token_top_k, bf16=m.bf16).to(self.device)
        self.sources = sources if sources is not None else self._load_sources()
        self._prepare_idf()
        self.batcher = Batcher(self.sources, config.optim.batch_size, config.data.n_negatives, config.optim.seed)
        self.optimizer = self._make_optimizer()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        # judged only once the document regularizer is fully on (a fresh head starts dense)
        self.guard = CollapseGuard(self.model.dim, grace=100 + config.regularizer.doc.warmup_steps)
        self.loss = losses.SparseLoss.from_config(config.loss, config.regularizer, dim=self.model.dim,
                                                  query_side=self.model.kind != "inference-free")
        self.step = 0
        self.elapsed = 0.0
        self.evaluations: list[dict] = []

    # ----------------------------------------------------------------- setup
    def _load_sources(self) -> list[Source]:
        d = self.config.data
        out = []
        for s in d.train:
            if s.dataset:
                out.append(beir_source(s.dataset, s.split, data_dir=d.data_dir, teachers=d.negatives.teachers,
                                       depth=d.negatives.depth, keep=d.negatives.keep,
                                       cache_dir=d.negatives.cache_dir or self.out / "negatives",
                                       dense_model=d.negatives.dense_model, max_queries=d.max_queries,
                                       weight=s.weight, show_progress=self.show_progress,
                                       self_encoder=self._self_teacher() if "self" in d.negatives.teachers else None,
                                       self_model=self.config.model.backbone))
            elif s.triples:
                out.append(triples_source(s.triples, weight=s.weight, max_queries=d.max_queries))
            else:
                out.append(jsonl_source(s.jsonl, s.corpus, d.data_dir, weight=s.weight, max_queries=d.max_queries))
        for s in out:
            logger.info("source %s: %d queries, %d documents, teachers %s", s.name, len(s.examples), len(s.docs),
                        s.teachers() or "none")
        return out

    def _self_teacher(self):
        """The model under training as an encoder that mines (inference-free: IDF fitted on the corpus it indexes)."""
        if getattr(self, "_self_encoder", None) is None:
            self._self_encoder = self.model.to_encoder(idf=None, batch_size=32)
            self.model.mlm.train()
        return self._self_encoder

    def _prepare_idf(self) -> None:
        for s in self.sources:
            if s.idf is None:
                s.idf = idf_table(self.model.mlm, self.model.tokenizer, s.docs.values())
        self.idf = [torch.as_tensor(s.idf, device=self.device) for s in self.sources]
        # the table saved with the model: IDF over all training documents
        if len(self.sources) == 1:
            self.saved_idf = self.sources[0].idf
        else:
            texts = (t for s in self.sources for t in s.docs.values())
            self.saved_idf = idf_table(self.model.mlm, self.model.tokenizer, texts)
        self.model.set_idf(self.saved_idf)
        self.model.mlm.train()

    def _make_optimizer(self):
        o = self.config.optim
        decay, no_decay = [], []
        for name, p in self.model.mlm.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
        groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        if self.model.query_raw is not None:
            groups.append({"params": [self.model.query_raw], "weight_decay": 0.0, "lr": o.query_weights_lr})
        return torch.optim.AdamW(groups, lr=o.lr)

    def _lr_factor(self, step: int) -> float:
        o = self.config.optim
        if o.warmup_steps and step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        return max(0.0, (o.steps - step) / max(1, o.steps - o.warmup_steps))

    # ------------------------------------------------------------------ step
    def _forward(self, batch: Batch) -> tuple[torch.Tensor, dict]:
        model = self.model
        if model.kind == "slim":
            qt = model.encode_tokens(batch.queries, model.query_max_length)
            dt = model.encode_tokens(batch.docs, model.doc_max_length)
            scores = late_interaction(qt, dt, model.dim)
            q_vec, d_vec = pooled_tokens(qt, model.dim), pooled_tokens(dt, model.dim)
            loss, logs = self.loss(scores, batch, q_vec, d_vec, self.step)
            # non-zeros per token vector: near 1, late interaction ranks like the pooled first stage
            logs["doc_token_nnz"] = float((dt.values > 0).sum(1).float().mean())
            logs["query_token_nnz"] = float((qt.values > 0).sum(1).float().mean())
            return loss, logs
        d_vec = model.encode(batch.docs, model.doc_max_length)
        if model.kind == "inference-free":
            q_vec = model.inference_free_queries(batch.queries, [self.idf[s] for s in batch.source_of_query])
        else:
            q_vec = model.encode(batch.queries, model.query_max_length)
        scores = q_vec @ d_vec.T
        return self.loss(scores, batch, q_vec, d_vec, self.step)

    def train_step(self) -> dict:
        """One optimizer step (``accumulation`` batches); returns the step's log record."""
        o = self.config.optim
        self.model.mlm.train()
        t0 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        merged: dict[str, float] = {}
        for micro in range(o.accumulation):
            batch = self.batcher.batch(self.step * o.accumulation + micro)
            loss, logs = self._forward(batch)
            (loss / o.accumulation).backward()
            for k, v in logs.items():
                merged[k] = merged.get(k, 0.0) + v / o.accumulation
        if not math.isfinite(merged["loss"]):
            raise FloatingPointError(f"step {self.step}: the loss is {merged['loss']}; lower optim.lr or the "
                                     "regularizer weights")
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if o.max_grad_norm:
            merged["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, o.max_grad_norm))
        self.optimizer.step()
        self.scheduler.step()
        self.loss.update(merged, self.step)
        self.guard.check(merged, self.step)
        self.step += 1
        dt = time.perf_counter() - t0
        self.elapsed += dt
        merged.update(step=self.step, lr=self.scheduler.get_last_lr()[0], seconds=round(dt, 3),
                      elapsed=round(self.elapsed, 1))
        return merged

    # ------------------------------------------------------------------- run
    def train(self) -> TrainResult:
        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        self.resume()
        cfg.save(self.out / "config.json")
        deadline = cfg.optim.max_minutes * 60 if cfg.optim.max_minutes else None
        log_path = self.out / "train_log.jsonl"
        bar = tqdm(total=cfg.optim.steps, initial=self.step, desc="training", unit="step",
                   disable=not self.show_progress, mininterval=2.0)
        with open(log_path, "a", encoding="utf-8") as log:
            while self.step < cfg.optim.steps:
                rec = self.train_step()
                log.write(json.dumps(rec) + "\n")
                log.flush()
                bar.update(1)
                bar.set_postfix(loss=f"{rec['loss']:.3f}", doc_nnz=f"{rec['doc_nnz']:.0f}", refresh=False)
                if cfg.eval.dataset and cfg.eval.every and self.step % cfg.eval.every == 0:
                    self.evaluate()
                if self.step % cfg.checkpoint.every == 0:
                    self.save_checkpoint()
                if deadline is not None and self.elapsed >= deadline:
                    logger.info("stopping at step %d: max_minutes (%.0f) reached", self.step, cfg.optim.max_minutes)
                    break
        bar.close()
        self.save_checkpoint()
        model_dir = self.save_model(self.out / "model")
        if cfg.eval.dataset and (not self.evaluations or self.evaluations[-1]["step"] != self.step):
            self.evaluate()
        plot_training_log(self.out)
        summary = {"steps": self.step, "train_seconds": round(self.elapsed, 1), "evaluations": self.evaluations,
                   "model_dir": str(model_dir), "config": cfg.to_dict()}
        best = [r for r in self.evaluations if r.get("best")]
        if best:
            summary["best"] = {"dir": str(self.out / "best"), "step": best[-1]["step"],
                               cfg.eval.selection_measure: best[-1][cfg.eval.selection_measure]}
        from eval.atomic import atomic_file

        with atomic_file(self.out / "summary.json") as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        return TrainResult(self.out, model_dir, self.step, self.elapsed, self.evaluations)

    def encoder(self):
        """The lsr encoder with the current weights (IDF models fit their IDF on the corpus they index)."""
        return self.model.to_encoder(idf=None, batch_size=32)

    def evaluate(self) -> dict:
        """nDCG etc. on the eval split through lsr's own index (``eval_log.jsonl``)."""
        import dataclasses

        from eval import load_dataset
        from lsr.pipeline import RunSettings, evaluate_dataset

        e = self.config.eval
        ds = load_dataset(e.dataset, split=e.split, data_dir=self.config.data.data_dir)
        if e.max_queries and len(ds.queries) > e.max_queries:
            keep = sorted(ds.queries)[:e.max_queries]
            ds = dataclasses.replace(ds, queries={q: ds.queries[q] for q in keep},
                                     qrels={q: ds.qrels[q] for q in keep if q in ds.qrels})
        t0 = time.perf_counter()
        result = evaluate_dataset(ds, self.encoder(), name=f"step-{self.step}", k=e.k, measures=e.measures,
                                  settings=RunSettings(show_progress=False))
        self.model.mlm.train()
        rec = {"step": self.step, "dataset": f"{e.dataset}/{e.split}", **result.effectiveness,
               "doc_nnz": result.efficiency["doc_nnz"]["mean"], "seconds": round(time.perf_counter() - t0, 1)}
        if e.keep_best:
            measure = e.selection_measure
            before = [r[measure] for r in self.evaluations if measure in r]
            if measure not in rec:
                raise KeyError(f"eval.select: the evaluation has no {measure!r} (it reported {sorted(rec)})")
            if not before or rec[measure] > max(before):
                rec["best"] = True
                self.save_best(rec, measure)
        self.evaluations.append(rec)
        with open(self.out / "eval_log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        logger.info("eval at step %d: %s", self.step, rec)
        return rec

    def save_best(self, rec: dict, measure: str) -> Path:
        """The model as it is now, as ``output_dir/best`` (an lsr encoder) with ``selection.json`` saying why."""
        from eval.atomic import atomic_file

        path = self.save_model(self.out / "best")
        with atomic_file(path / "selection.json") as tmp:
            tmp.write_text(json.dumps({"step": self.step, "measure": measure, "value": rec[measure],
                                       "dataset": rec["dataset"]}, indent=2) + "\n", encoding="utf-8")
        logger.info("best so far at step %d: %s %.4f on %s (saved in %s)", self.step, measure, rec[measure],
                    rec["dataset"], path)
        return path

    def save_model(self, path: Path) -> Path:
        enc = self.model.to_encoder(idf=self.saved_idf)
        enc.save(path, overwrite=True)
        self.config.save(path / "training_config.json")
        self.model.mlm.train()
        return path

    # ----------------------------------------------------------- checkpoints
    def _state(self) -> dict:
        return {
            "step": self.step, "elapsed": self.elapsed, "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            **self.loss.state_dict(), "torch_rng": torch.get_rng_state(), "evaluations": self.evaluations,
        }

    def save_checkpoint(self) -> Path:
        root = self.out / "checkpoints"
        path = root / f"step-{self.step:07d}"
        with atomic_dir(path, overwrite=True, kind="checkpoint") as tmp:
            save_state(self._state(), tmp)
            self.config.save(tmp / "config.json")
        for old in sorted(root.glob("step-*"))[:-self.config.checkpoint.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return path

    def latest_checkpoint(self) -> Path | None:
        root = self.out / "checkpoints"
        found = sorted([*root.glob(f"step-*/{CHECKPOINT_JSON}"), *root.glob(f"step-*/{LEGACY_PICKLE}")])
        return found[-1].parent if found else None

    def resume(self, path: Path | None = None) -> bool:
        """Load the latest (or the given) checkpoint; False when there is none."""
        path = path or self.latest_checkpoint()
        if path is None:
            return False
        state = load_state(path)  # never unpickles: safetensors + JSON
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.loss.load_state_dict(state)
        torch.set_rng_state(state["torch_rng"])
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        self.evaluations = list(state.get("evaluations", []))
        logger.info("resumed from %s (step %d)", path, self.step)
        return True


def plot_training_log(folder) -> Path | None:
    """Draw ``training.png`` from a run folder's ``train_log.jsonl`` (matplotlib; None without it)."""
    folder = Path(folder)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    recs = [json.loads(line) for line in open(folder / "train_log.jsonl", encoding="utf-8") if line.strip()]
    if not recs:
        return None
    steps = [r["step"] for r in recs]
    window = max(1, len(recs) // 50)

    def smooth(values):  # batch-to-batch noise is large: draw a running mean over ~2 % of the run
        v = np.asarray(values, dtype=np.float64)
        if window == 1:
            return v
        c = np.cumsum(np.insert(np.nan_to_num(v), 0, 0.0))
        out = (c[window:] - c[:-window]) / window
        return np.concatenate([v[:window - 1], out])

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    axes[0].plot(steps, smooth([r["loss"] for r in recs]), lw=0.8, label="total")
    if "contrastive" in recs[0]:
        axes[0].plot(steps, smooth([r.get("contrastive", np.nan) for r in recs]), lw=0.8, label="contrastive")
    if any("distill" in r for r in recs):
        axes[0].plot(steps, smooth([r.get("distill", np.nan) for r in recs]), lw=0.8, label="distill")
    axes[0].set_title(f"loss (running mean of {window})")
    axes[0].legend()
    axes[1].plot(steps, [r["doc_nnz"] for r in recs], lw=0.6, label="doc")
    axes[1].plot(steps, [r["query_nnz"] for r in recs], lw=0.6, label="query")
    axes[1].set_title("non-zeros per vector")
    axes[1].legend()
    axes[2].plot(steps, smooth([r["flops"] for r in recs]), lw=0.8)
    axes[2].set_title("FLOPS (batch estimate)")
    for ax in axes:
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(folder / "training.png", dpi=110)
    plt.close(fig)
    return folder / "training.png"


def train(config: TrainConfig, **options) -> TrainResult:
    """Train (or resume) as configured; see :class:`Trainer`."""
    return Trainer(config, **options).train()
