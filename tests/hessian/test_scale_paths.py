"""The model-scale paths of issue 14: probes from a torch generator, products checked
once, the cached first-order graph reused (products equal to fresh-graph and dense ones)."""

import numpy as np
import pytest
import torch
from torch import nn

import hessian
import spectra
from spectra.results import NonFiniteError


def _conv_model():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)  # parameter initialisation only
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.Tanh(),
                          nn.Flatten(), nn.Linear(3 * 4 * 4, 3)).double()
    model[1].running_mean.uniform_(-0.5, 0.5, generator=g)
    model[1].running_var.uniform_(0.5, 2.0, generator=g)
    model.eval()
    X = torch.randn(6, 2, 4, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (6,), generator=g)
    return model, X, y


def _dense_hessian(model, X, y):
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach() for p in model.parameters())

    def loss(*ps):
        out = torch.func.functional_call(model, dict(zip(names, ps, strict=True)), (X,))
        return nn.functional.cross_entropy(out, y)

    blocks = torch.autograd.functional.hessian(loss, params)
    sizes = [p.numel() for p in params]
    return torch.cat([torch.cat([blocks[i][j].reshape(sizes[i], sizes[j])
                                 for j in range(len(params))], 1)
                      for i in range(len(params))], 0)


def test_products_on_the_cached_graph_equal_fresh_graph_and_dense_products():
    model, X, y = _conv_model()
    H = hessian.HessianOperator(model, nn.CrossEntropyLoss(), (X, y))
    assert H.cache_graph
    P = H.shape[0]
    V = torch.randn(P, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    cached = H.matmat(V)  # builds the graph once, then reuses it
    again = H.matmat(V)
    fresh = V.new_empty(4, P)
    with H._guard():
        H._pass(V, fresh, fresh=True)  # a new forward and first backward
    assert torch.equal(cached, again)
    assert torch.equal(cached, fresh.T)
    D = _dense_hessian(model, X, y)
    np.testing.assert_allclose(cached.numpy(), (D @ V).numpy(), rtol=1e-10, atol=1e-12)


def test_helpers_pass_rng_through_to_the_one_probe_mechanism():
    # the helpers do no seeding of their own: spectra.probes draws torch probes
    model, X, y = _conv_model()
    H = hessian.HessianOperator(model, nn.CrossEntropyLoss(), (X, y))
    a = hessian.trace(H, num_matvecs=8, method="hutchinson", rng=4, progress=False)
    b = hessian.trace(H, num_matvecs=8, method="hutchinson", rng=4, progress=False)
    assert a.value == b.value
    ref = spectra.trace(H, 8, method="hutchinson", rng=4, block_size=3)
    assert ref.value == pytest.approx(a.value, rel=1e-12)  # batching-invariant
    c = hessian.trace(H, num_matvecs=8, method="hutchinson", rng=5, progress=False)
    assert c.value != a.value
    tg = hessian.trace(H, num_matvecs=8, method="hutchinson", progress=False,
                       rng=torch.Generator().manual_seed(3))
    assert tg.value == spectra.trace(H, 8, method="hutchinson",
                                     rng=torch.Generator().manual_seed(3)).value
    with pytest.raises(TypeError, match="rng"):
        hessian.trace(H, num_matvecs=8, rng=2.5, progress=False)


def test_full_budget_trace_is_exact_and_stderr_covers_the_truth():
    model, X, y = _conv_model()
    H = hessian.HessianOperator(model, nn.CrossEntropyLoss(), (X, y))
    truth = float(torch.trace(_dense_hessian(model, X, y)))
    exact = hessian.trace(H, num_matvecs=H.shape[0], rng=0, progress=False)
    assert exact.value == pytest.approx(truth, rel=1e-9)
    est = hessian.trace(H, num_matvecs=40, rng=0, progress=False)
    assert abs(est.value - truth) <= 3 * est.stderr


def test_curvature_products_are_checked_once_and_still_refuse_nan():
    model, X, y = _conv_model()
    H = hessian.HessianOperator(model, nn.CrossEntropyLoss(), (X, y))
    assert H._checks_finite and not spectra.as_operator(np.eye(2))._checks_finite
    with torch.no_grad():
        model[4].weight[0, 0] = float("nan")
    H.free()
    with pytest.raises(NonFiniteError, match="batch 0"):
        H.matmat(torch.ones(H.shape[0], 2, dtype=torch.float64))
    op = spectra.Operator.from_matvec(lambda v: v * float("nan"), (3, 3), dtype=torch.float64)
    with pytest.raises(NonFiniteError, match="NaN or Inf"):
        op.matvec(torch.ones(3, dtype=torch.float64))
