"""Losses, regularizers and the sparsity controller on hand-built tensors."""

import math

import pytest

torch = pytest.importorskip("torch")

from training import losses, regularizers  # noqa: E402
from training.regularizers import SparsityController  # noqa: E402


def test_contrastive_by_hand():
    scores = torch.tensor([[2.0, 0.0, 1.0, 0.0],
                           [0.0, 1.0, 3.0, 0.0]])  # Q=2, group=2: positives at columns 0 and 2
    lse0 = math.log(math.exp(2) + 1 + math.e + 1)
    lse1 = math.log(1 + math.e + math.exp(3) + 1)
    expected = ((lse0 - 2) + (lse1 - 3)) / 2
    assert float(losses.contrastive(scores, 2)) == pytest.approx(expected, rel=1e-6)
    # without in-batch negatives: only each query's own group
    own = ((math.log(math.exp(2) + 1) - 2) + (math.log(math.exp(3) + 1) - 3)) / 2
    assert float(losses.contrastive(scores, 2, in_batch=False)) == pytest.approx(own, rel=1e-6)
    # temperature divides the scores
    assert float(losses.contrastive(scores * 2, 2, temperature=2.0)) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="Q, Q\\*3"):
        losses.contrastive(scores, 3)


def test_margin_mse_and_kl_by_hand():
    student = torch.tensor([[3.0, 1.0, 0.0]])
    teacher = torch.tensor([[2.0, 1.0, 1.0]])
    # margins: student (2, 3), teacher (1, 1) -> ((2-1)^2 + (3-1)^2) / 2
    assert float(losses.margin_mse(student, teacher)) == pytest.approx(2.5)
    p = torch.softmax(teacher, 1)
    kl = float((p * (torch.log(p) - torch.log_softmax(student, 1))).sum())
    assert float(losses.kl_distillation(student, teacher)) == pytest.approx(kl, rel=1e-5)
    assert float(losses.kl_distillation(teacher, teacher)) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="shape"):
        losses.margin_mse(student, teacher[:, :2])


def test_teacher_normalisation_and_ensemble():
    dense = torch.tensor([[0.9, 0.5, 0.1], [0.3, 0.3, 0.3]])
    bm25 = torch.tensor([[30.0, 10.0, 20.0], [5.0, 15.0, 10.0]])
    n = losses.normalize_teacher(dense)
    assert n[0].tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert n[1].tolist() == [0.0, 0.0, 0.0]  # all equal: no preference
    ens = losses.ensemble_teacher({"dense": dense, "bm25": bm25}, {"bm25": 2.0}, scale=10.0)
    assert ens[0].tolist() == pytest.approx([10 * (1 + 2 * 1.0), 10 * (0.5 + 0.0), 10 * (0 + 2 * 0.5)])
    with pytest.raises(ValueError):
        losses.ensemble_teacher({})


def test_group_scores_picks_each_querys_group():
    scores = torch.arange(12.0).view(2, 6)  # Q=2, group=3
    assert losses.group_scores(scores, 3).tolist() == [[0, 1, 2], [9, 10, 11]]


W = torch.tensor([[1.0, 0.0, 2.0, 0.0],
                  [3.0, 1.0, 0.0, 0.0],
                  [0.0, 0.0, 0.0, 4.0]])


def test_flops_l1_by_hand():
    # means per term: 4/3, 1/3, 2/3, 4/3
    assert float(regularizers.flops(W)) == pytest.approx((16 + 1 + 4 + 16) / 9)
    assert float(regularizers.l1(W)) == pytest.approx((3 + 4 + 4) / 3)
    assert float(regularizers.flops(W[:0])) == 0.0


def test_l0_mask_counts_only_long_vectors():
    # non-zeros per row: 2, 2, 1; threshold 1 keeps rows 0 and 1
    assert regularizers.l0_mask(W, 1).tolist() == [True, True, False]
    kept = W * torch.tensor([1.0, 1.0, 0.0])[:, None]
    assert float(regularizers.l0_masked_flops(W, 1)) == pytest.approx(float(regularizers.flops(kept)))
    assert float(regularizers.l0_masked_flops(W, 5)) == 0.0  # every vector is short enough
    assert float(regularizers.penalty("flops", W, l0_threshold=1)) == pytest.approx(float(regularizers.flops(kept)))


def test_df_flops_weights():
    x = torch.tensor([1e-6, 0.1, 1.0])
    a = regularizers.df_weight(x, alpha=0.1, beta=4.0)
    assert a[0] < 1e-6 and a[1] == pytest.approx(0.5) and a[2] == pytest.approx(1.0)
    assert (torch.diff(regularizers.df_weight(torch.linspace(0.01, 1, 50))) >= -1e-7).all()  # monotone
    df = torch.tensor([1.0, 1e-6, 0.1, 1.0])
    expected = sum(float(w) * m ** 2 for w, m in zip(regularizers.df_weight(df), [4 / 3, 1 / 3, 2 / 3, 4 / 3]))
    assert float(regularizers.df_flops(W, df)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError):
        regularizers.df_weight(x, alpha=1.5)


def test_penalty_names_and_warmup():
    assert float(regularizers.penalty("none", W)) == 0.0
    with pytest.raises(ValueError, match="unknown regularizer"):
        regularizers.penalty("flop", W)
    with pytest.raises(ValueError, match="document-frequency"):
        regularizers.penalty("df_flops", W)
    assert regularizers.quadratic_warmup(0, 100) == 0.0
    assert regularizers.quadratic_warmup(50, 100) == pytest.approx(0.25)
    assert regularizers.quadratic_warmup(500, 100) == 1.0
    assert regularizers.quadratic_warmup(3, 0) == 1.0


def test_document_frequency_estimate():
    df = regularizers.DocumentFrequency(4, momentum=0.5)
    assert df.update(W).tolist() == pytest.approx([2 / 3, 1 / 3, 1 / 3, 1 / 3])
    assert df.update(torch.zeros(2, 4)).tolist() == pytest.approx([1 / 3, 1 / 6, 1 / 6, 1 / 6])


def test_controller_reaches_a_sparsity_target_on_a_toy_problem():
    """Every term is rewarded in proportion to its importance; an L1 penalty on log(1 + ReLU) whose
    weight the controller sets decides how many stay active. Logits are kept in [-1, 1] so that a
    term pushed out can come back (a model's shared weights do that in real training)."""
    torch.manual_seed(0)
    n, dim = 16, 300
    logits = torch.nn.Parameter(torch.rand(n, dim) * 0.5 + 0.2)  # starts fully dense
    importance = torch.rand(dim)
    opt = torch.optim.SGD([logits], lr=0.05)
    for target in (60, 150):
        ctrl = SparsityController(target=target, weight=1e-3, gain=0.05)
        measured = []
        for _ in range(800):
            w = torch.log1p(torch.relu(logits))
            loss = -(importance * logits).sum(1).mean() + ctrl.weight * regularizers.l1(w)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                logits.clamp_(-1, 1)
            nnz = float((w > 0).sum(1).float().mean())
            ctrl.update(nnz)
            measured.append(nnz)
        final = sum(measured[-100:]) / 100
        assert abs(final - target) / target < 0.1, (target, final)


def test_controller_state_round_trip_and_bounds():
    c = SparsityController(target=10, weight=1.0, max_weight=2.0)
    for _ in range(100):
        c.update(1000)
    assert c.weight == 2.0
    d = SparsityController(target=1, weight=1)
    d.load_state_dict(c.state_dict())
    assert d.state_dict() == c.state_dict()
    with pytest.raises(ValueError):
        SparsityController(target=0, weight=1)


def test_contrastive_excludes_false_negatives():
    scores = torch.tensor([[2.0, 0.0, 5.0, 0.0],
                           [0.0, 1.0, 3.0, 0.0]])
    exclude = torch.tensor([[False, False, True, False],   # doc 2 is also a positive of query 0
                            [False, False, False, False]])
    masked = losses.contrastive(scores, 2, exclude=exclude)
    lse0 = math.log(math.exp(2) + 1 + 1)
    lse1 = math.log(1 + math.e + math.exp(3) + 1)
    assert float(masked) == pytest.approx(((lse0 - 2) + (lse1 - 3)) / 2, rel=1e-6)


def _lagged_plant(controller, steps=3000):
    """A model that drifts towards sparsity while lambda is above its balance point (it integrates the
    controller's output, as a network under a FLOPS penalty does), with noisy batch measurements."""
    gen = torch.Generator().manual_seed(0)
    nnz, log_balance, trace = 300.0, math.log(3e-4), []
    for _ in range(steps):
        nnz *= math.exp(-3e-3 * (math.log(controller.weight) - log_balance))
        controller.update(nnz * (1 + 0.09 * float(torch.randn((), generator=gen))))
        trace.append(nnz)
    return trace


def test_controller_damping_settles_a_lagged_model_that_integral_action_alone_leaves_swinging():
    target = 235
    swinging = _lagged_plant(SparsityController(target, 1e-3, damping=0.0))
    damped = _lagged_plant(SparsityController(target, 1e-3, damping=4.0))
    late = slice(1500, None)
    spread = lambda t: max(t[late]) - min(t[late])  # noqa: E731
    assert spread(swinging) > 100                      # integral only: still swinging by more than 100
    assert spread(damped) < 15                         # damped: held within a few percent
    assert abs(sum(damped[late]) / len(damped[late]) - target) / target < 0.02


def test_controller_resumes_from_a_checkpoint_without_the_integral_term():
    c = SparsityController(target=10, weight=1e-3)
    c.load_state_dict({"target": 10, "weight": 2e-3, "ema": 11.0})
    assert c.integral == pytest.approx(math.log(2e-3))
    with pytest.raises(ValueError, match="damping"):
        SparsityController(target=10, weight=1e-3, damping=-1)


def test_controller_damping_kick_is_bounded_for_a_model_far_from_its_target():
    c = SparsityController(target=200, weight=1e-3)            # a dense start: 2,000 non-zeros, 9x too many
    assert 1e-3 < c.update(2000.0) < 1e-3 * 10 * 1.6           # one decade of kick + one integral step (x1.57)
    d = SparsityController(target=200, weight=1e-3)
    assert 1e-3 / 10 / 1.1 < d.update(0.0) < 1e-3             # collapsed vectors: lambda falls, by a decade at most


def test_regularizer_objects_match_the_functions_and_own_their_schedule():
    w = torch.tensor([[1.0, 0.0, 2.0, 0.5], [1.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0]])
    reg = regularizers.FlopsRegularizer(0.5, warmup_steps=10)
    loss, logs = reg(w, step=5)
    assert logs["lambda"] == pytest.approx(0.5 * 0.25)
    assert float(loss) == pytest.approx(0.125 * float(regularizers.flops(w)))
    l0 = regularizers.FlopsRegularizer(1.0, l0_threshold=1)  # the one-term vector is not penalised
    assert float(l0(w, step=0)[0]) == pytest.approx(float(regularizers.l0_masked_flops(w, 1)))
    assert float(regularizers.L1Regularizer(1.0)(w, 0)[0]) == pytest.approx(float(regularizers.l1(w)))
    df = torch.tensor([0.9, 0.01, 0.5, 0.2])
    assert float(regularizers.DfFlopsRegularizer(1.0)(w, 0, df)[0]) == pytest.approx(
        float(regularizers.df_flops(w, df)))
    with pytest.raises(ValueError, match="document-frequency"):
        regularizers.DfFlopsRegularizer(1.0)(w, 0)
    target = regularizers.FlopsRegularizer(1e-3, target_nnz=1.0)
    target.update(nnz=3.0, flops_value=0.0, step=0)  # too dense: lambda goes up
    assert target.lambda_at(0) > 1e-3
    again = regularizers.FlopsRegularizer(1e-3, target_nnz=1.0)
    again.load_state_dict(target.state_dict())
    assert again.lambda_at(0) == target.lambda_at(0)


def test_sparse_loss_composes_ranking_distillation_and_regularizers():
    from types import SimpleNamespace

    scores = torch.tensor([[5.0, 1.0, 0.0, 0.5], [0.2, 0.1, 4.0, 1.0]], requires_grad=True)
    batch = SimpleNamespace(group=2, positives=None, teacher={"bm25": [[3.0, 1.0], [2.0, 0.0]]})
    d_vec = torch.tensor([[1.0, 0.0, 2.0], [1.0, 2.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    q_vec = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    loss = losses.SparseLoss(contrastive=1.0, distill="kl", distill_weight=0.5,
                             doc_regularizer=regularizers.FlopsRegularizer(0.1), dim=3)
    total, logs = loss(scores, batch, q_vec, d_vec, step=0)
    expected = (losses.contrastive(scores, 2) + 0.5 * logs["distill"] + 0.1 * regularizers.flops(d_vec))
    assert float(total.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    assert logs["doc_nnz"] == pytest.approx(1.5) and "query_reg" not in logs
    total.backward()
    assert scores.grad is not None
