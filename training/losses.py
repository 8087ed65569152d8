"""Ranking and distillation losses over a batch's score matrix.

Conventions: a batch has ``Q`` queries and ``Q * G`` documents, laid out as ``G`` consecutive
documents per query (its group): the positive first, then its hard negatives. ``scores`` is the
``[Q, Q * G]`` matrix of query-document scores (every query against every document of the batch),
so in-batch negatives are the other groups' documents.

* :func:`contrastive` — InfoNCE with in-batch and hard negatives (Karpukhin et al. 2020, DPR;
  SPLADE v2 trains with it): ``-log softmax(scores / tau)[positive]``.
* :func:`margin_mse` — Margin-MSE distillation (Hofstätter et al. 2020): the student's margins
  ``s(q, d+) - s(q, d-)`` regress the teacher's.
* :func:`kl_distillation` — listwise KL divergence between the teacher's and the student's softmax
  over each query's group (as in SPLADE++ and the inference-free paper of Geng et al. 2024).
* :func:`normalize_teacher` / :func:`ensemble_teacher` — per-query min-max normalisation of each
  teacher's scores before they are summed, so that a dense teacher (cosine in [-1, 1]) and a
  sparse one (BM25, tens of points) weigh as configured (Geng et al. 2024, "Towards Competitive
  Search Relevance For Inference-Free Learned Sparse Retrievers", heterogeneous ensemble).

Example:
    >>> import torch
    >>> scores = torch.tensor([[5.0, 1.0, 0.0, 0.5], [0.2, 0.1, 4.0, 1.0]])   # Q=2, G=2
    >>> float(contrastive(scores, group=2)) < 0.05
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def group_scores(scores: torch.Tensor, group: int) -> torch.Tensor:
    """``[Q, G]``: each query's scores for its own group (positive first)."""
    q = scores.shape[0]
    idx = torch.arange(q, device=scores.device)[:, None] * group + torch.arange(group, device=scores.device)[None, :]
    return scores.gather(1, idx)


def contrastive(scores: torch.Tensor, group: int, *, in_batch: bool = True, temperature: float = 1.0,
                exclude: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE: the positive (column ``q * group``) against the hard negatives and, with ``in_batch``, every other document.

    Args:
        scores: ``[Q, Q * group]`` scores.
        group: documents per query (1 positive + ``group - 1`` hard negatives).
        in_batch: use the other queries' documents as negatives too.
        temperature: scores are divided by it. SPLADE trains with 1.0; IDF-weighted inference-free
            scores are several times larger (IDF 2-9 per query token), and at 1.0 the softmax saturates
            and the cheapest way down the loss is to shrink every weight (documents lose most terms).
        exclude: optional boolean ``[Q, Q * group]``; True marks in-batch documents that must not act as
            negatives (judged positives of the query in another group: false negatives).
    """
    if scores.ndim != 2 or scores.shape[1] != scores.shape[0] * group:
        raise ValueError(f"scores must be [Q, Q*{group}], got {tuple(scores.shape)}")
    logits = scores / temperature
    if exclude is not None and in_batch:
        logits = logits.masked_fill(exclude, float("-inf"))
    if not in_batch:
        return F.cross_entropy(group_scores(logits, group),
                               torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device))
    target = torch.arange(scores.shape[0], device=scores.device) * group
    return F.cross_entropy(logits, target)


def margin_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Margin-MSE over ``[Q, G]`` group scores: mean over negatives of ``((s+ - s-) - (t+ - t-))^2``."""
    if student.shape != teacher.shape:
        raise ValueError(f"student {tuple(student.shape)} and teacher {tuple(teacher.shape)} scores differ in shape")
    s = student[:, :1] - student[:, 1:]
    t = teacher[:, :1] - teacher[:, 1:]
    return F.mse_loss(s, t)


def kl_distillation(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``KL(softmax(teacher / T) || softmax(student / T))`` per query over ``[Q, G]`` group scores, batch-mean."""
    if student.shape != teacher.shape:
        raise ValueError(f"student {tuple(student.shape)} and teacher {tuple(teacher.shape)} scores differ in shape")
    t = F.log_softmax(teacher / temperature, dim=1)
    s = F.log_softmax(student / temperature, dim=1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean")


def normalize_teacher(scores: torch.Tensor) -> torch.Tensor:
    """Per-query min-max normalisation to [0, 1] (a query whose scores are all equal gets zeros)."""
    lo = scores.min(dim=1, keepdim=True).values
    hi = scores.max(dim=1, keepdim=True).values
    span = hi - lo
    return torch.where(span > 0, (scores - lo) / span.clamp(min=1e-12), torch.zeros_like(scores))


def ensemble_teacher(teachers: dict[str, torch.Tensor], weights: dict[str, float] | None = None,
                     scale: float = 1.0) -> torch.Tensor:
    """Weighted sum of per-query normalised teacher scores (``[Q, G]`` each), times ``scale``.

    ``scale`` sets the sharpness of the target distribution for KL (normalised scores span [0, 1];
    the inference-free paper rescales the aggregate before the softmax).
    """
    if not teachers:
        raise ValueError("no teacher scores")
    weights = weights or {}
    total = None
    for name, s in teachers.items():
        part = normalize_teacher(s) * float(weights.get(name, 1.0))
        total = part if total is None else total + part
    return total * scale


class SparseLoss:
    """The training objective as one composed object: ranking + distillation + sparsity regularizers.

    ``total = contrastive_weight * contrastive(scores) + distill_weight * distill(group scores, teachers)
    + doc_regularizer(doc vectors) + query_regularizer(query vectors)``; each regularizer is a
    :class:`~training.regularizers.Regularizer` with its own weight, warm-up and controller (the
    shape of Sentence-Transformers' ``SpladeLoss(model, loss, document_regularizer_weight, ...)``,
    with the regularizers as objects rather than weights).

    Args:
        contrastive: weight of the InfoNCE loss (0: none).
        in_batch, temperature: InfoNCE over in-batch negatives too; score temperature.
        distill: ``"none"``, ``"kl"`` or ``"margin_mse"``; distill_weight its weight.
        distill_temperature: KL temperature; teacher_weights, teacher_scale: the teacher ensemble.
        doc_regularizer, query_regularizer: regularizers (None: none on that side).
        dim: vocabulary size (for the running document-frequency estimate DF-FLOPS uses).

    Example:
        >>> from training.regularizers import FlopsRegularizer
        >>> loss = SparseLoss(contrastive=1.0, doc_regularizer=FlopsRegularizer(1e-3), dim=30522)  # doctest: +SKIP
        >>> total, logs = loss(scores, batch, q_vec, d_vec, step=10)                             # doctest: +SKIP
    """

    def __init__(self, *, contrastive: float = 1.0, in_batch: bool = True, temperature: float = 1.0,
                 distill: str = "none", distill_weight: float = 1.0, distill_temperature: float = 1.0,
                 teacher_weights: dict | None = None, teacher_scale: float = 10.0,
                 doc_regularizer=None, query_regularizer=None, dim: int):
        from .regularizers import DocumentFrequency

        if distill not in ("none", "kl", "margin_mse"):
            raise ValueError(f"distill must be 'none', 'kl' or 'margin_mse', got {distill!r}")
        self.contrastive_weight, self.in_batch, self.temperature = float(contrastive), bool(in_batch), temperature
        self.distill, self.distill_weight, self.distill_temperature = distill, float(distill_weight), distill_temperature
        self.teacher_weights, self.teacher_scale = dict(teacher_weights or {}), float(teacher_scale)
        self.regularizers = {"doc": doc_regularizer, "query": query_regularizer}
        self.df = DocumentFrequency(dim)

    @classmethod
    def from_config(cls, loss, regularizer, *, dim: int, query_side: bool = True) -> SparseLoss:
        """From a :class:`~training.config.TrainConfig`'s ``loss`` and ``regularizer`` sections
        (``query_side=False``: inference-free, queries carry no learned weights to regularize)."""
        from .regularizers import make_regularizer

        return cls(contrastive=loss.contrastive, in_batch=loss.in_batch, temperature=loss.temperature,
                   distill=loss.distill, distill_weight=loss.distill_weight,
                   distill_temperature=loss.distill_temperature, teacher_weights=loss.teacher_weights,
                   teacher_scale=loss.teacher_scale, doc_regularizer=make_regularizer(regularizer.doc),
                   query_regularizer=make_regularizer(regularizer.query) if query_side else None, dim=dim)

    def __call__(self, scores: torch.Tensor, batch, q_vec: torch.Tensor, d_vec: torch.Tensor,
                 step: int) -> tuple[torch.Tensor, dict]:
        """The total loss of a batch (``scores`` ``[Q, Q * G]``) and its log record."""
        logs: dict = {}
        total = scores.new_zeros(())
        if self.contrastive_weight > 0:
            exclude = torch.as_tensor(batch.false_negatives(), device=scores.device) if batch.positives else None
            rank = contrastive(scores, batch.group, in_batch=self.in_batch, temperature=self.temperature,
                               exclude=exclude)
            total = total + self.contrastive_weight * rank
            logs["contrastive"] = float(rank.detach())
        if self.distill != "none" and batch.teacher and batch.group > 1:
            names = [t for t in batch.teacher if not self.teacher_weights or t in self.teacher_weights]
            teacher = ensemble_teacher({t: torch.as_tensor(batch.teacher[t], device=scores.device) for t in names},
                                       self.teacher_weights,
                                       scale=self.teacher_scale)
            student = group_scores(scores, batch.group) / self.temperature
            kd = kl_distillation(student, teacher, self.distill_temperature) if self.distill == "kl" \
                else margin_mse(student, teacher)
            total = total + self.distill_weight * kd
            logs["distill"] = float(kd.detach())
        df = self.df.update(d_vec)
        for side, vec in (("doc", d_vec), ("query", q_vec)):
            reg = self.regularizers[side]
            if reg is None:
                continue
            part, info = reg(vec, step, df)
            total = total + part
            logs[f"{side}_reg"], logs[f"{side}_lambda"] = info["reg"], info["lambda"]
        with torch.no_grad():
            dn, qn = (d_vec > 0).float(), (q_vec > 0).float()
            logs["doc_nnz"] = float(dn.sum(1).mean())
            logs["query_nnz"] = float(qn.sum(1).mean())
            logs["flops"] = float((qn.mean(0) * dn.mean(0)).sum())
        logs["loss"] = float(total.detach())
        return total, logs

    def update(self, logs: dict, step: int) -> None:
        """After an optimizer step: the controllers see the step's measured sparsity."""
        for side, reg in self.regularizers.items():
            if reg is not None:
                reg.update(logs[f"{side}_nnz"], logs["flops"], step)

    def state_dict(self) -> dict:
        return {"controllers": {side: s for side, reg in self.regularizers.items()
                                if reg is not None and (s := reg.state_dict()) is not None},
                "df": self.df.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        for side, s in state.get("controllers", {}).items():
            if self.regularizers.get(side) is not None:
                self.regularizers[side].load_state_dict(s)
        self.df.load_state_dict(state["df"])

    def describe(self) -> dict:
        return {"contrastive": self.contrastive_weight, "distill": self.distill,
                "regularizers": {side: reg.config() for side, reg in self.regularizers.items() if reg is not None}}
