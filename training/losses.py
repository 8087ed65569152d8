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
    idx = torch.arange(q)[:, None] * group + torch.arange(group)[None, :]
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
        return F.cross_entropy(group_scores(logits, group), torch.zeros(scores.shape[0], dtype=torch.long))
    target = torch.arange(scores.shape[0]) * group
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
