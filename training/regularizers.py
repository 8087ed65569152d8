"""Sparsity regularizers, their warm-up, and a controller that reaches a sparsity target.

Every regularizer maps a batch of activated vectors ``w`` (``[N, |V|]``, non-negative) to a scalar:

* :func:`flops` — ``sum_j (mean_i w_ij)^2`` (Paria et al., ICLR 2020, "Minimizing FLOPs to Learn
  Efficient Sparse Representations"; SPLADE's document and query regularizer).
* :func:`l1` — ``mean_i sum_j |w_ij|`` (used on queries by Efficient SPLADE, Lassance & Clinchant 2022).
* :func:`l0_masked_flops` — FLOPS over only the vectors with more than ``threshold`` non-zeros
  (Shen et al. 2025, arXiv 2504.14839, "Exploring l0 Sparsification for Inference-free Sparse
  Retrievers"; 150 in the authors' recipe), so short documents are not pushed further. The same
  paper's l0-approximating activation ``log(1 + log(1 + ReLU(x)))`` is ``activation="log_log"`` of
  the model.
* :func:`df_flops` — ``sum_j a(df_j) (mean_i w_ij)^2`` with ``a(x) = 1 / (1 + (x^(log_alpha 2) - 1)^beta)``
  of the fraction ``x`` of documents holding term ``j`` (Porco et al. 2025, arXiv 2505.15070,
  "An Alternative to FLOPS Regularization to Effectively Productionize SPLADE-Doc"): a(alpha) = 0.5,
  a(x) -> 0 for rare terms, a(1) = 1, so long posting lists are what gets penalised. The paper
  re-estimates df every 100 steps on validation documents; :class:`DocumentFrequency` keeps a
  running estimate over the training batches instead (no extra encoding pass).
* IDF-aware FLOPS (Geng et al. 2024, arXiv 2411.04403) is not a different penalty but a different
  score: inference-free queries carry IDF weights during training, ``s(q, d) = sum_j idf_j q_j d_j``,
  so the ranking gradient on a document term is scaled by its IDF while the FLOPS gradient is not,
  and low-IDF expansions are the first the regularizer removes. In lsr it is
  ``model.query_weights="idf"`` with any of the penalties here; ``"binary"`` is the plain variant.

:func:`quadratic_warmup` is SPLADE's schedule ``lambda_t = lambda * min(1, t / T)^2``.
:class:`SparsityController` replaces a fixed lambda with a target (mean non-zeros or FLOPS).

Example:
    >>> import torch
    >>> w = torch.tensor([[1.0, 0.0, 2.0], [1.0, 2.0, 0.0]])
    >>> float(flops(w))          # means per term 1, 1, 1 -> 1 + 1 + 1
    3.0
"""

from __future__ import annotations

import math

import torch

PENALTIES = ("flops", "l1", "df_flops", "none")


def flops(w: torch.Tensor) -> torch.Tensor:
    """``sum_j (mean_i |w_ij|)^2``."""
    if w.shape[0] == 0:
        return w.sum() * 0.0
    return (w.abs().mean(dim=0) ** 2).sum()


def l1(w: torch.Tensor) -> torch.Tensor:
    """``mean_i sum_j |w_ij|``."""
    if w.shape[0] == 0:
        return w.sum() * 0.0
    return w.abs().sum(dim=1).mean()


def l0_mask(w: torch.Tensor, threshold: int) -> torch.Tensor:
    """Boolean ``[N]``: vectors with more than ``threshold`` non-zeros (the only ones the l0 mask regularizes)."""
    return (w > 0).sum(dim=1) > int(threshold)


def l0_masked_flops(w: torch.Tensor, threshold: int) -> torch.Tensor:
    """FLOPS over the vectors longer than ``threshold`` non-zeros, averaged over the whole batch.

    The mean stays over all ``N`` vectors (the masked ones contribute zero), so the penalty fades as
    documents fall under the threshold instead of jumping to the remaining few.
    """
    keep = l0_mask(w, threshold).to(w.dtype)
    if w.shape[0] == 0:
        return w.sum() * 0.0
    return (((w.abs() * keep[:, None]).sum(dim=0) / w.shape[0]) ** 2).sum()


def df_weight(df_fraction: torch.Tensor, alpha: float = 0.1, beta: float = 4.0) -> torch.Tensor:
    """DF-FLOPS' activation ``1 / (1 + (x^(log_alpha 2) - 1)^beta)`` for ``x`` in [0, 1] (0.5 at ``x = alpha``)."""
    if not 0 < alpha < 1 or beta <= 0:
        raise ValueError("df_flops needs 0 < alpha < 1 and beta > 0")
    x = df_fraction.clamp(min=1e-9, max=1.0)
    p = math.log(2.0) / math.log(alpha)  # log_alpha(2) < 0
    inner = (x ** p - 1.0).clamp(min=0.0)
    return 1.0 / (1.0 + inner ** beta)


def df_flops(w: torch.Tensor, df_fraction: torch.Tensor, alpha: float = 0.1, beta: float = 4.0) -> torch.Tensor:
    """``sum_j a(df_j) (mean_i |w_ij|)^2`` (DF-FLOPS)."""
    if w.shape[0] == 0:
        return w.sum() * 0.0
    return (df_weight(df_fraction, alpha, beta).to(w.dtype) * w.abs().mean(dim=0) ** 2).sum()


class DocumentFrequency:
    """Running estimate of each term's document fraction from the training batches (exponential average)."""

    def __init__(self, dim: int, momentum: float = 0.99):
        self.value = torch.zeros(dim)
        self.momentum = float(momentum)
        self.updates = 0

    def update(self, w: torch.Tensor) -> torch.Tensor:
        batch = (w.detach() > 0).float().mean(dim=0)
        if self.value.device != batch.device:  # follows the model (a checkpoint loads it on the CPU)
            self.value = self.value.to(batch.device)
        m = self.momentum if self.updates else 0.0
        self.value = m * self.value + (1 - m) * batch
        self.updates += 1
        return self.value

    def state_dict(self) -> dict:
        return {"value": self.value, "updates": self.updates, "momentum": self.momentum}

    def load_state_dict(self, state: dict) -> None:
        self.value, self.updates, self.momentum = state["value"], int(state["updates"]), float(state["momentum"])


def quadratic_warmup(step: int, total: int) -> float:
    """SPLADE's ``min(1, step / total)^2`` (1.0 when ``total`` is 0)."""
    if total <= 0:
        return 1.0
    return min(1.0, step / total) ** 2


def penalty(kind: str, w: torch.Tensor, *, l0_threshold: int | None = None, df: torch.Tensor | None = None,
            df_alpha: float = 0.1, df_beta: float = 4.0) -> torch.Tensor:
    """One regularizer by name, with the l0 mask applied first when ``l0_threshold`` is set."""
    if kind == "none":
        return w.sum() * 0.0
    if l0_threshold is not None:
        w = w * l0_mask(w, l0_threshold).to(w.dtype)[:, None]
    if kind == "flops":
        return flops(w)
    if kind == "l1":
        return l1(w)
    if kind == "df_flops":
        if df is None:
            raise ValueError("df_flops needs document-frequency estimates")
        return df_flops(w, df, df_alpha, df_beta)
    raise ValueError(f"unknown regularizer {kind!r}; choose one of {PENALTIES}")


class SparsityController:
    """Adapts a regularizer weight so that a measured statistic reaches a target.

    A proportional-integral controller on log-lambda. With ``e = ema / target - 1`` the relative
    error of an exponential average of the measured statistic (mean non-zeros per vector, or FLOPS):

        integral += gain * e                    (clipped to one decade per call)
        lambda    = exp(integral + damping * e)   (the damping term clipped to one decade)

    Too dense -> lambda grows, too sparse -> it shrinks. Acting on log-lambda with a relative error
    keeps it scale-free, so the same target works for any batch size, accumulation or model; lambda
    stays within ``[min_weight, max_weight]`` (the integral is clipped there too, so it cannot wind up).

    Why the proportional (``damping``) term: a model does not jump to the sparsity that a lambda
    implies; it drifts towards it while lambda stays off balance, so the model itself integrates the
    controller's output. Integral action alone on such a plant oscillates without decay (observed in
    a 2-hour run here: batch document non-zeros swinging 180-300 around a target of 235 with a period
    of a few hundred steps). The proportional term reacts to the error at once and damps the loop;
    ``damping=0`` gives the integral-only controller.

    Args:
        target: the wanted value of the statistic (e.g. 200 document non-zeros).
        weight: the starting lambda.
        gain: integral gain, how fast lambda's level moves (0.05: ~5 % per step at 100 % error).
        damping: proportional gain (4.0: lambda x1.5 at once at 10 % error).
        smoothing: EMA factor of the measurement.

    Example:
        >>> c = SparsityController(target=100, weight=1e-3)
        >>> c.update(300.0) > 1e-3        # too dense: the weight goes up
        True
    """

    def __init__(self, target: float, weight: float, *, gain: float = 0.05, damping: float = 4.0,
                 smoothing: float = 0.9, min_weight: float = 1e-7, max_weight: float = 10.0):
        if target <= 0 or weight <= 0:
            raise ValueError("a sparsity target and its starting weight must be > 0")
        if gain < 0 or damping < 0 or not 0 <= smoothing < 1:
            raise ValueError(f"controller gains must be >= 0 and smoothing in [0, 1); got gain={gain}, "
                             f"damping={damping}, smoothing={smoothing}")
        self.target, self.weight, self.gain, self.smoothing = float(target), float(weight), float(gain), float(smoothing)
        self.damping = float(damping)
        self.min_weight, self.max_weight = float(min_weight), float(max_weight)
        self.ema: float | None = None
        self.integral = math.log(self.weight)

    def _clip(self, log_w: float) -> float:
        return min(math.log(self.max_weight), max(math.log(self.min_weight), log_w))

    def update(self, measured: float) -> float:
        m = float(measured)
        self.ema = m if self.ema is None else self.smoothing * self.ema + (1 - self.smoothing) * m
        error = self.ema / self.target - 1.0
        decade = math.log(10.0)
        step = max(-decade, min(decade, self.gain * error))
        self.integral = self._clip(self.integral + step)
        # the proportional kick is bounded too: a model starting at 5x its target must not be slammed to zero
        kick = max(-decade, min(decade, self.damping * error))
        self.weight = math.exp(self._clip(self.integral + kick))
        return self.weight

    def state_dict(self) -> dict:
        return {"target": self.target, "weight": self.weight, "ema": self.ema, "integral": self.integral}

    def load_state_dict(self, state: dict) -> None:
        self.target, self.weight, self.ema = float(state["target"]), float(state["weight"]), state["ema"]
        # checkpoints written before the proportional term: the weight was the integral
        self.integral = float(state.get("integral", math.log(self.weight)))


class Regularizer:
    """One side's sparsity penalty as an object with its own configuration, composed into
    :class:`~training.losses.SparseLoss` (as Sentence-Transformers composes ``SpladeLoss``).

    The object owns everything about its penalty: the function (:meth:`penalty`, per subclass), the
    optional l0 mask (only vectors with more than ``l0_threshold`` non-zeros are penalised), the
    weight with SPLADE's quadratic warm-up, and, when a target is given, the
    :class:`SparsityController` that moves the weight until the target is met.

    Args:
        weight: lambda (the controller's starting value when a target is set).
        warmup_steps: quadratic warm-up of lambda (0: none).
        l0_threshold: penalise only vectors longer than this (Shen et al. 2025; 150 in their recipe).
        target_nnz, target_flops: a sparsity target met by a controller (at most one of them).
        controller_gain, controller_damping: the controller's integral and proportional gains.

    Example:
        >>> import torch
        >>> reg = FlopsRegularizer(weight=0.1)
        >>> loss, logs = reg(torch.tensor([[1.0, 0.0], [1.0, 2.0]]), step=0)
        >>> round(float(loss), 3), logs["lambda"]       # FLOPS 1 + 1 = 2, times 0.1
        (0.2, 0.1)
    """

    kind = "none"

    def __init__(self, weight: float = 1e-3, *, warmup_steps: int = 0, l0_threshold: int | None = None,
                 target_nnz: float | None = None, target_flops: float | None = None,
                 controller_gain: float = 0.05, controller_damping: float = 4.0):
        if weight < 0 or warmup_steps < 0:
            raise ValueError("a regularizer's weight and warmup_steps must be >= 0")
        if target_nnz is not None and target_flops is not None:
            raise ValueError("give target_nnz or target_flops, not both")
        self.weight, self.warmup_steps = float(weight), int(warmup_steps)
        self.l0_threshold = None if l0_threshold is None else int(l0_threshold)
        self.target_nnz, self.target_flops = target_nnz, target_flops
        target = target_nnz or target_flops
        self.controller = SparsityController(target, weight, gain=controller_gain, damping=controller_damping) \
            if target else None

    def penalty(self, w: torch.Tensor, df: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def lambda_at(self, step: int) -> float:
        """The weight at ``step``: the controller's (or the fixed) weight times the warm-up factor."""
        base = self.controller.weight if self.controller is not None else self.weight
        return base * quadratic_warmup(step, self.warmup_steps)

    def __call__(self, w: torch.Tensor, step: int, df: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """``(lambda * penalty, {"reg": penalty, "lambda": lambda})`` for a batch of activated vectors."""
        if self.l0_threshold is not None:
            w = w * l0_mask(w, self.l0_threshold).to(w.dtype)[:, None]
        reg = self.penalty(w, df)
        lam = self.lambda_at(step)
        return lam * reg, {"reg": float(reg.detach()), "lambda": lam}

    def update(self, nnz: float, flops_value: float, step: int) -> None:
        """Feed the controller the batch's measured non-zeros / FLOPS (after the warm-up only)."""
        if self.controller is not None and step >= self.warmup_steps:
            self.controller.update(nnz if self.target_nnz else flops_value)

    def config(self) -> dict:
        return {"kind": self.kind, "weight": self.weight, "warmup_steps": self.warmup_steps,
                "l0_threshold": self.l0_threshold, "target_nnz": self.target_nnz, "target_flops": self.target_flops}

    def state_dict(self) -> dict | None:
        return self.controller.state_dict() if self.controller is not None else None

    def load_state_dict(self, state: dict | None) -> None:
        if state is not None and self.controller is not None:
            self.controller.load_state_dict(state)


class FlopsRegularizer(Regularizer):
    """FLOPS (Paria et al. 2020): ``sum_j (mean_i |w_ij|)^2``; with ``l0_threshold`` the l0-masked FLOPS."""

    kind = "flops"

    def penalty(self, w, df=None):
        return flops(w)


class L1Regularizer(Regularizer):
    """L1: ``mean_i sum_j |w_ij|`` (Efficient SPLADE's query regularizer)."""

    kind = "l1"

    def penalty(self, w, df=None):
        return l1(w)


class DfFlopsRegularizer(Regularizer):
    """DF-FLOPS (Porco et al. 2025): FLOPS weighted by ``a(df_j)``, so long posting lists pay most.

    Args:
        alpha, beta: the activation's half point (document fraction where ``a = 0.5``) and steepness.
        other arguments: as :class:`Regularizer`.
    """

    kind = "df_flops"

    def __init__(self, weight: float = 1e-3, *, alpha: float = 0.1, beta: float = 4.0, **kwargs):
        super().__init__(weight, **kwargs)
        if not 0 < alpha < 1 or beta <= 0:
            raise ValueError("df_flops needs 0 < alpha < 1 and beta > 0")
        self.alpha, self.beta = float(alpha), float(beta)

    def penalty(self, w, df=None):
        if df is None:
            raise ValueError("df_flops needs document-frequency estimates")
        return df_flops(w, df, self.alpha, self.beta)

    def config(self) -> dict:
        return {**super().config(), "alpha": self.alpha, "beta": self.beta}


REGULARIZERS = {"flops": FlopsRegularizer, "l1": L1Regularizer, "df_flops": DfFlopsRegularizer}


def make_regularizer(p) -> Regularizer | None:
    """The regularizer a :class:`~training.config.PenaltyConfig` describes (None for ``kind="none"``)."""
    if p.kind == "none":
        return None
    if p.kind not in REGULARIZERS:
        raise ValueError(f"unknown regularizer {p.kind!r}; choose one of {PENALTIES}")
    extra = {"alpha": p.df_alpha, "beta": p.df_beta} if p.kind == "df_flops" else {}
    return REGULARIZERS[p.kind](p.weight, warmup_steps=p.warmup_steps, l0_threshold=p.l0_threshold,
                                target_nnz=p.target_nnz, target_flops=p.target_flops,
                                controller_gain=p.controller_gain, controller_damping=p.controller_damping, **extra)
