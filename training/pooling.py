"""Vocabulary projection + pooling with sparse backward passes (what makes CPU training affordable).

A SPLADE forward pass projects every token onto the vocabulary (``rows x |V|`` logits, 30,522
columns for BERT) and max-pools them per text. Autograd would keep the whole logits tensor for
the backward pass and push a dense ``rows x |V|`` gradient back through the projection, although
max pooling sends each term's gradient to one token only (its arg-max) and ``log(1 + ReLU(.))``
sends nothing where the pooled logit is <= 0. :class:`MaxPoolProjection` exploits both:

* forward: one text's ``|V| x tokens`` logits at a time (bias fused into the product), max-pooled;
  only the pooled values and the arg-max row of each (text, term) are kept;
* backward: for the few (text, term) pairs with a non-zero incoming gradient, the gradient goes to
  the arg-max row's hidden state (``g * W[term]``), to ``W[term]`` (``g * h[row]``) and to the bias.

The result is bit-for-bit the gradient of ``max`` (ties broken like ``torch.max``) at a fraction of
the time and memory. :class:`TopKProjection` does the same for SLIM's per-token top-k.

Example:
    >>> import torch
    >>> h = torch.randn(5, 8, requires_grad=True); W = torch.randn(30, 8); b = torch.zeros(30)
    >>> pooled = max_pool_projection(h, W, b, lengths=[2, 3])   # two texts of 2 and 3 tokens
    >>> pooled.shape
    torch.Size([2, 30])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: logits rows computed at once (rows x vocabulary x 4 bytes ~ 250 MB for BERT)
CHUNK_ROWS = 2048


def _logits(h: torch.Tensor, W: torch.Tensor, b: torch.Tensor, low_precision: bool) -> torch.Tensor:
    if low_precision:
        return (h.to(torch.bfloat16) @ W.to(torch.bfloat16).T).float() + b.float()
    return h.float() @ W.float().T + b.float()


class MaxPoolProjection(torch.autograd.Function):
    """``pooled[t, j] = max_{i in text t} (h_i . W_j + b_j)`` with a sparse backward (see module doc)."""

    @staticmethod
    def forward(ctx, h, W, b, lengths, low_precision):
        lengths = [int(x) for x in lengths]
        n_texts, dim = len(lengths), W.shape[0]
        pooled = torch.full((n_texts, dim), float("-inf"), dtype=torch.float32)
        arg = torch.zeros((n_texts, dim), dtype=torch.int32)
        offsets = torch.zeros(n_texts, dtype=torch.int64)
        dtype = torch.bfloat16 if low_precision else torch.float32
        with torch.no_grad():
            Wc, bc = W.detach().to(dtype), b.detach().to(dtype)[:, None]
            hc = h.detach().to(dtype)
            row = 0
            for t, n in enumerate(lengths):
                offsets[t] = row
                if n:
                    # |V| x n logits, bias fused into the product; reducing along the contiguous axis is
                    # ~2x faster than max over rows of the n x |V| layout
                    v, i = torch.addmm(bc, Wc, hc[row:row + n].T).max(dim=1)
                    pooled[t], arg[t] = v.float(), i.to(torch.int32)
                row += n
        ctx.save_for_backward(h, W, arg, offsets)
        return pooled

    @staticmethod
    def backward(ctx, grad):
        h, W, arg, offsets = ctx.saved_tensors
        grad = grad.float()
        t, j = torch.nonzero(grad, as_tuple=True)
        g = grad[t, j]
        rows = offsets[t] + arg[t, j].to(torch.int64)
        grad_h = grad_W = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_h = torch.zeros(h.shape, dtype=torch.float32)
            grad_h.index_add_(0, rows, g[:, None] * W[j].float())
            grad_h = grad_h.to(h.dtype)
        if ctx.needs_input_grad[1]:
            grad_W = torch.zeros(W.shape, dtype=torch.float32)
            grad_W.index_add_(0, j, g[:, None] * h[rows].float())
            grad_W = grad_W.to(W.dtype)
        if ctx.needs_input_grad[2]:
            grad_b = torch.zeros(W.shape[0], dtype=torch.float32).index_add_(0, j, g)
        return grad_h, grad_W, grad_b, None, None


def max_pool_projection(h: torch.Tensor, W: torch.Tensor, b: torch.Tensor, lengths: Sequence[int],
                        low_precision: bool = False) -> torch.Tensor:
    """Max-pooled vocabulary logits of texts whose token rows are stacked in ``h``.

    Args:
        h: ``[total_rows, hidden]`` transformed hidden states of the non-padding tokens, texts one
            after the other.
        W, b: the decoder (``[|V|, hidden]``, often tied to the word embeddings) and its bias.
        lengths: tokens per text (sums to ``total_rows``); a text of length 0 pools to ``-inf``.
        low_precision: compute the logits in bfloat16 (pooled values and gradients stay float32).

    Returns:
        ``[len(lengths), |V|]`` float32 raw max logits; apply the activation afterwards.
    """
    return MaxPoolProjection.apply(h, W, b, list(lengths), bool(low_precision))


class TopKProjection(torch.autograd.Function):
    """Per-row top-``k`` vocabulary logits ``(values, indices)`` with a sparse backward (SLIM)."""

    @staticmethod
    def forward(ctx, h, W, b, k, low_precision):
        n = h.shape[0]
        vals = torch.zeros((n, k), dtype=torch.float32)
        idx = torch.zeros((n, k), dtype=torch.int64)
        with torch.no_grad():
            for r0 in range(0, n, CHUNK_ROWS):
                logits = _logits(h[r0:r0 + CHUNK_ROWS], W, b, low_precision)
                v, i = torch.topk(logits, k, dim=1)
                vals[r0:r0 + CHUNK_ROWS], idx[r0:r0 + CHUNK_ROWS] = v, i
        ctx.save_for_backward(h, W, idx)
        ctx.mark_non_differentiable(idx)
        return vals, idx

    @staticmethod
    def backward(ctx, grad_vals, _grad_idx):
        h, W, idx = ctx.saved_tensors
        grad_vals = grad_vals.float()
        r, c = torch.nonzero(grad_vals, as_tuple=True)
        g = grad_vals[r, c]
        j = idx[r, c]
        grad_h = grad_W = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_h = torch.zeros(h.shape, dtype=torch.float32).index_add_(0, r, g[:, None] * W[j].float()).to(h.dtype)
        if ctx.needs_input_grad[1]:
            grad_W = torch.zeros(W.shape, dtype=torch.float32).index_add_(0, j, g[:, None] * h[r].float()).to(W.dtype)
        if ctx.needs_input_grad[2]:
            grad_b = torch.zeros(W.shape[0], dtype=torch.float32).index_add_(0, j, g)
        return grad_h, grad_W, grad_b, None, None


def topk_projection(h: torch.Tensor, W: torch.Tensor, b: torch.Tensor, k: int, low_precision: bool = False):
    """Top-``k`` vocabulary logits of every row of ``h``: ``(values [rows, k], indices [rows, k])``."""
    return TopKProjection.apply(h, W, b, int(k), bool(low_precision))
