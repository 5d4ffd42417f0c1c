import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hessian_refs import Dense, cnn, data, mlp  # noqa: E402

import hessian  # noqa: E402

CE = torch.nn.CrossEntropyLoss()


@pytest.fixture(scope="module")
def case():
    model = cnn()
    X, y = data("cnn", 12)
    Hd = Dense(model).hessian(CE, [(X, y)]).numpy()
    return model, (X, y), Hd


def test_top_eigenvalues(case):
    model, batch, Hd = case
    lam = np.linalg.eigvalsh(Hd)
    res = hessian.top_eigenvalues(model, CE, batch, k=3, rng=0, tol=1e-10)
    np.testing.assert_allclose(res.eigenvalues, lam[::-1][:3], rtol=1e-8)
    assert res.converged and res.eigenvectors.shape == (77, 3)
    sa = hessian.top_eigenvalues(model, CE, batch, k=1, which="SA", rng=0, tol=1e-10)
    np.testing.assert_allclose(sa.eigenvalues, lam[:1], rtol=1e-8)


def test_per_layer_top_eigenvalues_and_trace(case):
    model, batch, Hd = case
    res = hessian.top_eigenvalues(model, CE, batch, k=1, per_layer=True, rng=0, tol=1e-10)
    tr = hessian.trace(model, CE, batch, 200, per_layer=True, rng=0)
    assert list(res) == ["conv", "fc"]
    for name, (lo, hi) in {"conv": (0, 20), "fc": (20, 77)}.items():
        block = Hd[lo:hi, lo:hi]
        np.testing.assert_allclose(res[name].eigenvalues[0], np.linalg.eigvalsh(block)[-1],
                                   rtol=1e-8)
        np.testing.assert_allclose(tr[name].value, np.trace(block), rtol=1e-8)


def test_trace_diagonal_density_exact_at_full_budget(case):
    model, batch, Hd = case
    tr = hessian.trace(model, CE, batch, 77, rng=0)
    np.testing.assert_allclose(tr.value, np.trace(Hd), rtol=1e-9)
    dg = hessian.diagonal(model, CE, batch, 77, rng=0)
    np.testing.assert_allclose(dg.value, np.diag(Hd), rtol=1e-8, atol=1e-10)
    den = hessian.density(model, CE, batch, num_probes=2, num_steps=100, rng=0)
    np.testing.assert_allclose(np.sort(den.nodes), np.linalg.eigvalsh(Hd), atol=1e-9)


def test_stochastic_trace_is_near_truth():
    model = mlp()
    X, y = data("mlp", 40)
    G = Dense(model).ggn(CE, X, y).numpy()
    est = hessian.trace(model, CE, (X, y), 24, kind="ggn", rng=1)
    assert abs(est.value - np.trace(G)) < 4 * est.stderr + 1e-3 * abs(np.trace(G))
    jtj = hessian.top_eigenvalues(model, None, X, kind="jtj", rng=0, tol=1e-10)
    J = Dense(model).jacobian(X).numpy()
    np.testing.assert_allclose(jtj.eigenvalues[0], np.linalg.eigvalsh(J.T @ J)[-1], rtol=1e-8)


def test_ready_operator_and_bad_kind(case):
    model, batch, Hd = case
    H = hessian.HessianOperator(model, CE, batch)
    assert hessian.curvature_operator(H) is H
    np.testing.assert_allclose(hessian.trace(H, num_matvecs=77, rng=0).value, np.trace(Hd),
                               rtol=1e-9)
    with pytest.raises(ValueError, match="kind"):
        hessian.trace(model, CE, batch, kind="laplacian")


def test_progress_bar_on_demand_and_quiet_otherwise(case, capsys):
    model, batch, _ = case
    X, y = batch
    loader = [(X[:6], y[:6]), (X[6:], y[6:])]
    hessian.trace(model, CE, loader, 10, rng=0, progress=True)
    err = capsys.readouterr().err
    assert "trace" in err and "vec-batch" in err
    hessian.trace(model, CE, loader, 10, rng=0)  # stderr is not a terminal under pytest
    assert capsys.readouterr().err == ""
