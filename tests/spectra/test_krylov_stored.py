"""eigsh's true residuals from the stored products ``W = A V`` (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

import spectra.krylov._basis as basis_mod
from spectra import Operator, as_operator, eigsh
from spectra.krylov._basis import Basis
from spectra.testing import matrix_from_eigenvalues


def _true(A, res):
    X = res.eigenvectors
    return np.linalg.norm(A @ X - X * res.eigenvalues, axis=0)


def test_stored_residuals_equal_recomputed_after_restarts():
    # a small basis on a slow problem: many thick restarts rotate V and W together
    A = matrix_from_eigenvalues(np.r_[np.linspace(0, 1, 197), [1.02, 1.04, 1.07]], rng=0)
    B = Basis(as_operator(A), 12, np.random.default_rng(0))
    B.set_start(np.random.default_rng(1).standard_normal(200))
    for _ in range(6):
        while B.size < B.m:
            B.step()
        theta, Y, _ = B.ritz()
        B.restart(theta, Y, np.argsort(-theta)[:6])
    while B.size < B.m:
        B.step()
    theta, Y, _ = B.ritz()
    X = B.vectors(Y)
    stored = B.stored_residuals(X, Y, theta)
    fresh = np.linalg.norm(B.inv * (A @ X) - X * theta, axis=0)
    assert B.drift > 0
    np.testing.assert_allclose(stored, fresh, rtol=1e-6, atol=B.drift)
    # the stored products are products: W = inv A V to the rotation bound
    W = B.W[: B.size]
    assert np.linalg.norm(W - B.inv * (B.V[: B.size] @ A), 2) <= B.drift


def test_returned_residuals_are_true_and_cost_no_products():
    A = matrix_from_eigenvalues(np.linspace(-2, 7, 150), rng=2)
    op = as_operator(A)
    res = eigsh(op, 3, tol=1e-10, ncv=10, rng=0, check_copies=False)
    assert res.converged and res.num_restarts > 0 and "explicit" in res.message
    assert op.num_matvecs == res.num_matvecs
    np.testing.assert_allclose(res.residual_norms, _true(A, res), rtol=1e-4, atol=1e-13)


def test_stored_residuals_see_a_non_symmetric_error():
    # declared symmetric, but not: the Lanczos estimates vanish, the stored products
    # keep the true residual (about 3e-7) and the run is not converged
    g = np.random.default_rng(0)
    M = matrix_from_eigenvalues(np.linspace(1, 3, 100), rng=0) + 1e-7 * g.standard_normal(
        (100, 100))
    op = Operator.from_matvec(lambda v: M @ v, (100, 100), dtype=np.float64, symmetric=True)
    with pytest.warns(match="not converged"):
        res = eigsh(op, 2, tol=1e-10, rng=0, check_copies=False)
    assert not res.converged
    np.testing.assert_allclose(res.residual_norms, _true(M, res), rtol=1e-6)


def test_stored_and_fresh_products_agree(monkeypatch):
    A = matrix_from_eigenvalues(np.linspace(0, 5, 120), rng=4)
    stored = eigsh(A, 4, tol=1e-10, rng=0, check_copies=False)
    monkeypatch.setattr(basis_mod, "STORE_LIMIT", 0)
    fresh = eigsh(A, 4, tol=1e-10, rng=0, check_copies=False)
    assert fresh.num_matvecs == stored.num_matvecs + 4
    np.testing.assert_allclose(stored.eigenvalues, fresh.eigenvalues, rtol=1e-13)
    np.testing.assert_allclose(stored.residual_norms, fresh.residual_norms, rtol=1e-3,
                               atol=1e-13)


def test_products_dropped_when_their_bound_cannot_decide(monkeypatch):
    # with _DROP = 0 the stored products go at the first restart: the run then checks
    # its residuals with k fresh products, as a run that never stored them
    import spectra.krylov._run as run_mod

    A = matrix_from_eigenvalues(np.linspace(0, 5, 160), rng=7)
    monkeypatch.setattr(run_mod, "_DROP", 0.0)
    dropped = eigsh(A, 3, tol=1e-10, ncv=12, rng=0, check_copies=False)
    monkeypatch.setattr(basis_mod, "STORE_LIMIT", 0)
    never = eigsh(A, 3, tol=1e-10, ncv=12, rng=0, check_copies=False)
    assert dropped.num_restarts > 0 and dropped.converged
    assert dropped.num_matvecs == never.num_matvecs
    np.testing.assert_allclose(dropped.eigenvalues, never.eigenvalues, rtol=1e-13)
    np.testing.assert_allclose(dropped.residual_norms, _true(A, dropped), rtol=1e-4,
                               atol=1e-13)
