"""eigsh on float32 operators at large n, its float64-summed dots, the honest stop when
the explicit residuals stagnate, and the copies check's random-start bound (issue 14)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from spectra import ConvergenceWarning, Operator, eigsh
from spectra.backend import DOT_CHUNK
from spectra.backend import rowdots as dots
from spectra.krylov import _run
from spectra.krylov._basis import sqnorm
from spectra.testing import matrix_from_eigenvalues

TOP = np.array([1000.0, 700.0, 650.0, 500.0, 300.0, 200.0, 150.0, 120.0])


def _skewed(n: int, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and a vector with a few entries 1e5 times the others (Lanczos-like)."""
    g = np.random.default_rng(seed)
    X = g.standard_normal((rows, n)) * 1e-3
    X[:, :8] += g.standard_normal((rows, 8))
    w = g.standard_normal(n) * 1e-2
    w[:8] *= 1e5
    return X, w


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("rows", [1, 5])
def test_dots_and_sqnorm_against_float64(backend, rows):
    n = 40 * DOT_CHUNK + 37  # a tail after the pieces
    X, w = _skewed(n, rows, 0)
    X32, w32 = X.astype(np.float32), w.astype(np.float32)
    ref = X32.astype(np.float64) @ w32.astype(np.float64)
    ref2 = float(w32.astype(np.float64) @ w32.astype(np.float64))
    if backend == "torch":
        X32, w32 = torch.from_numpy(X32), torch.from_numpy(w32)
    got, got2 = dots(X32, w32), sqnorm(w32)
    assert got.dtype == np.float64 and got.shape == (rows,)
    scale = np.linalg.norm(X, axis=1) * np.linalg.norm(w)
    # float32 products, float64 sums: a few eps of float32 relative to |x| |w|
    assert np.all(np.abs(got - ref) <= 4 * np.finfo(np.float32).eps * scale)
    assert abs(got2 - ref2) <= 4 * np.finfo(np.float32).eps * ref2
    # float64 operands: one product, exact to float64 rounding
    np.testing.assert_allclose(dots(X, w), X @ w, rtol=1e-12, atol=1e-12 * scale.max())
    assert sqnorm(w) == pytest.approx(float(w @ w), rel=1e-13)


def _diagonal32(n: int, noisy: bool = False) -> tuple[Operator, torch.Tensor]:
    """A float32 torch operator with a Hessian-like spectrum: outliers over a bulk."""
    g = torch.Generator().manual_seed(0)
    d = torch.randn(n, generator=g) * 0.5
    d[:8] = torch.from_numpy(TOP).float()
    return Operator.from_matvec(lambda v: d * v, (n, n), dtype=torch.float32, symmetric=True,
                                matmat=lambda V: d[:, None] * V), d


@pytest.mark.parametrize("k", [1, 5])
def test_float32_large_n_converges(k):
    # before: float32 sums over the whole length left the Lanczos vectors 1e-6 off unit
    # norm, and the explicit residuals stagnated above tol (k = 5: "not converged" after
    # 35 products, four checks, no restart; k = 1 on a ResNet Hessian the same)
    op, d = _diagonal32(200_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        res = eigsh(op, k, rng=0)
    assert res.converged and "explicit residuals" in res.message
    np.testing.assert_allclose(res.eigenvalues, TOP[:k], rtol=2e-6)
    X = res.eigenvectors.double()
    true = (d.double()[:, None] * X - X * torch.from_numpy(res.eigenvalues)).norm(dim=0)
    eps = np.finfo(np.float32).eps
    # the float32 residual against the float64 one: equal to a fraction of eps ||A||
    np.testing.assert_allclose(res.residual_norms, true.numpy(), rtol=0.05, atol=0.2 * eps * TOP[0])
    assert np.all(res.residual_norms <= np.maximum(1e-6 * np.abs(res.eigenvalues),
                                                   8 * eps * TOP[0]))
    assert res.num_matvecs < 100


def test_stagnation_stops_with_the_attainable_residual():
    # a (declared symmetric) operator whose products carry a non-symmetric error 1e-4:
    # no Krylov method reaches tol = 1e-9; before, the run spent four checks and said
    # "Raise max_matvecs or ncv"
    g = np.random.default_rng(1)
    A = matrix_from_eigenvalues(np.linspace(1.0, 3.0, 300), rng=0)
    M = A + 1e-4 * g.standard_normal((300, 300)) / np.sqrt(300)
    op = Operator.from_matvec(lambda v: M @ v, (300, 300), dtype=np.float64, symmetric=True)
    with pytest.warns(ConvergenceWarning, match="stopped decreasing"):
        res = eigsh(op, 1, tol=1e-9, rng=0)
    assert not res.converged
    assert "more products cannot reach tol" in res.message and "Loosen tol to about" in res.message
    X = res.eigenvectors
    true = np.linalg.norm(M @ X - X * res.eigenvalues, axis=0)
    np.testing.assert_allclose(res.residual_norms, true, rtol=1e-6)
    assert np.all(true > 1e-9 * np.abs(res.eigenvalues))
    assert res.num_matvecs < 200  # two checks after the estimates converged, not the budget


# ------------------------------------------------------------------ copies bound
@pytest.mark.parametrize("seed", range(5))
def test_kept_holds_both_extremes(seed):
    g = np.random.default_rng(seed)
    th = g.standard_normal(12)
    order = np.argsort(-np.abs(th), kind="stable")  # "LM"
    for keep in (1, 2, 3, 6):
        sel = _run._kept(th, order, keep)
        assert int(np.argmax(th)) in sel and int(np.argmin(th)) in sel
        assert len(set(sel.tolist())) == len(sel) == max(keep, 2)
        # the rest are the most wanted ones, in order
        rest = [i for i in order if i not in (np.argmax(th), np.argmin(th))]
        assert [i for i in sel if i not in (np.argmax(th), np.argmin(th))] == rest[: len(sel) - 2]


def test_copies_bound_counts_the_first_cycle_only(monkeypatch):
    # a cluster just below the wanted value: the check cannot pass its bound in one cycle
    # of m = 20 steps and restarts; the bound must stay that of the first cycle (the
    # Krylov space of the random start), not use the total step count
    lam = np.concatenate([[2.0], 1.999 - 1e-3 * np.arange(40), np.linspace(-1, 1.5, 360)])
    A = matrix_from_eigenvalues(lam, rng=3)
    seen = {}
    judge = _run._judge

    def spy(theta, slack, which, th, r, steps, anorm, dim):
        seen["max_steps"] = max(seen.get("max_steps", 0), steps)
        return judge(theta, slack, which, th, r, steps, anorm, dim)

    monkeypatch.setattr(_run, "_judge", spy)
    restarts = []
    Basis = _run.make_basis

    def make(*args, **kw):
        B = Basis(*args, **kw)
        if kw.get("lock") is not None:
            orig = B.restart

            def restart(*a):
                restarts.append(1)
                return orig(*a)

            B.restart = restart
        return B

    monkeypatch.setattr(_run, "make_basis", make)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = eigsh(A, 1, tol=1e-8, rng=0, ncv=20)
    assert res.converged and res.eigenvalues[0] == pytest.approx(2.0, rel=1e-8)
    assert restarts, "the check was meant to restart"
    assert seen["max_steps"] <= 20
