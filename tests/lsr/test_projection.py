"""The sparse-backward projections give the same values and gradients as plain autograd."""

import pytest

torch = pytest.importorskip("torch")

from lsr.encoders import projection as pooling  # noqa: E402
from lsr.encoders.projection import activate  # noqa: E402


def _inputs(seed=0, rows=(3, 5, 1, 4), hidden=8, dim=50):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(sum(rows), hidden, generator=g, dtype=torch.float64).float().requires_grad_(True)
    W = torch.randn(dim, hidden, generator=g).requires_grad_(True)
    b = (torch.randn(dim, generator=g) - 1.0).requires_grad_(True)
    return h, W, b, list(rows)


def _reference_pool(h, W, b, lengths):
    logits = h @ W.T + b
    return torch.stack([part.max(dim=0).values for part in torch.split(logits, lengths)])


@pytest.mark.parametrize("chunk", [2048, 4])  # 4: texts spread over several logit chunks
def test_max_pool_projection_matches_autograd(monkeypatch, chunk):
    monkeypatch.setattr(pooling, "CHUNK_ROWS", chunk)
    h, W, b, lengths = _inputs()
    weights = torch.randn(len(lengths), W.shape[0])
    got = activate(pooling.max_pool_projection(h, W, b, lengths), "log1p_relu")
    (got * weights).sum().backward()
    grads = [t.grad.clone() for t in (h, W, b)]
    for t in (h, W, b):
        t.grad = None
    ref = activate(_reference_pool(h, W, b, lengths), "log1p_relu")
    (ref * weights).sum().backward()
    torch.testing.assert_close(got, ref)
    for mine, theirs in zip(grads, (h.grad, W.grad, b.grad)):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)


def test_max_pool_projection_empty_text_and_bf16():
    h, W, b, _ = _inputs(rows=(2, 3))
    out = pooling.max_pool_projection(h, W, b, [2, 0, 3])
    assert torch.isinf(out[1]).all() and torch.isfinite(out[[0, 2]]).all()
    low = pooling.max_pool_projection(h, W, b, [2, 0, 3], low_precision=True)
    torch.testing.assert_close(low[[0, 2]], out[[0, 2]], rtol=0.05, atol=0.05)


def test_topk_projection_matches_autograd():
    h, W, b, _ = _inputs(rows=(6,))
    k = 5
    vals, idx = pooling.topk_projection(h, W, b, k)
    weights = torch.randn(vals.shape)
    (activate(vals, "log_log") * weights).sum().backward()
    grads = [t.grad.clone() for t in (h, W, b)]
    for t in (h, W, b):
        t.grad = None
    ref_vals, ref_idx = torch.topk(h @ W.T + b, k, dim=1)
    (activate(ref_vals, "log_log") * weights).sum().backward()
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(vals, ref_vals)
    for mine, theirs in zip(grads, (h.grad, W.grad, b.grad)):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
