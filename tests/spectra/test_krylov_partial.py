"""Partial reorthogonalisation in eigsh's basis (Simon's omega recurrence, issue 14).

Partial against full and against dense eigenvalues on prescribed spectra (clusters, a
float32 operator with outliers, a 3-D Poisson matrix with restarts), true residuals,
orthonormal Ritz vectors, reproducibility, the count of passes over the basis, a case
that loses orthogonality (the estimate triggers and keeps it semi-orthogonal), the
thick restart on the orthonormalised span, and the choice of ``reorth="auto"``.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import spectra.krylov._basis as basis_mod
from spectra import Operator, as_operator, eigsh
from spectra.krylov._basis import Basis, LeanBasis, make_basis
from spectra.krylov._partial import gram_restart, orthonormal_columns
from spectra.probes import as_rng


def _diag(d, backend="numpy"):
    """A matrix-free diagonal operator (not an explicit matrix: the general path)."""
    n = d.shape[0]
    if backend == "torch":
        dt = torch.from_numpy(d)
        return Operator.from_matvec(lambda v: dt * v, (n, n), dtype=dt.dtype, symmetric=True,
                                    matmat=lambda V: dt[:, None] * V)
    return Operator.from_matvec(lambda v: d * v if v.ndim == 1 else d[:, None] * v, (n, n),
                                dtype=d.dtype, symmetric=True)


def _clusters(n=6000, seed=0):
    g = np.random.default_rng(seed)
    d = g.uniform(0.0, 1.0, n)
    d[:6] = [3.0, 3.0 - 1e-4, 3.0 - 2e-4, 2.0, 2.0 - 1e-3, 1.5]  # a tight cluster at 3
    d[6:9] = [-1.0, -1.0 + 1e-5, -0.9]
    return d


def _poisson3d(m):
    T = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1])
    eye = sp.identity(m)
    A = (sp.kron(sp.kron(T, eye), eye) + sp.kron(sp.kron(eye, T), eye)
         + sp.kron(sp.kron(eye, eye), T)).tocsr()
    t = 2 - 2 * np.cos(np.arange(1, m + 1) * np.pi / (m + 1))
    lam = np.sort((t[:, None, None] + t[None, :, None] + t[None, None, :]).ravel())
    return A, lam


def _counting(monkeypatch):
    """Count the steps that orthogonalise against the whole basis."""
    calls = []
    orig = Basis._against_basis

    def spy(self, *args):
        calls.append(self.size)
        return orig(self, *args)

    monkeypatch.setattr(Basis, "_against_basis", spy)
    return calls


def _wanted(lam, k, which):
    return np.sort(lam)[::-1][:k] if which == "LA" else np.sort(lam)[:k]


def _check_pairs(A_mul, res, tol, dtype_eps):
    X = np.asarray(res.eigenvectors, dtype=np.float64)
    k = X.shape[1]
    # orthonormal to the accuracy of the dtype
    assert np.max(np.abs(X.T @ X - np.eye(k))) <= 20 * dtype_eps * max(k, 1)
    R = A_mul(X) - X * res.eigenvalues
    true = np.linalg.norm(R, axis=0)
    anorm = np.max(np.abs(res.eigenvalues))
    thr = np.maximum(tol * np.maximum(np.abs(res.eigenvalues), dtype_eps ** (2 / 3) * anorm),
                     8 * dtype_eps * anorm)
    # the explicit residuals of the returned (orthonormalised) vectors pass, as reported
    assert np.all(true <= 1.05 * thr + 10 * dtype_eps * anorm), (true, thr)
    np.testing.assert_allclose(res.residual_norms, true, rtol=0.05, atol=10 * dtype_eps * anorm)


@pytest.mark.parametrize("which", ["LA", "SA"])
def test_partial_matches_full_and_dense_on_clusters(which, monkeypatch):
    d = _clusters()
    op = _diag(d)
    k, tol = 4, 1e-10
    full = eigsh(op, k, which=which, tol=tol, rng=1, reorth="full", check_copies=False)
    part = eigsh(op, k, which=which, tol=tol, rng=1, reorth="partial", check_copies=False)
    ref = _wanted(d, k, which)  # the exact eigenvalues of a diagonal
    assert full.converged and part.converged
    np.testing.assert_allclose(part.eigenvalues, ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(part.eigenvalues, full.eigenvalues, rtol=1e-9, atol=1e-12)
    _check_pairs(lambda X: d[:, None] * X, part, tol, np.finfo(np.float64).eps)
    again = eigsh(op, k, which=which, tol=tol, rng=1, reorth="partial", check_copies=False)
    np.testing.assert_array_equal(again.eigenvalues, part.eigenvalues)
    np.testing.assert_array_equal(again.eigenvectors, part.eigenvectors)


def test_partial_on_dense_prescribed_spectrum():
    # a dense matrix with a prescribed spectrum through a matrix-free operator
    from spectra.testing import matrix_from_eigenvalues

    lam = np.concatenate([np.linspace(0.0, 1.0, 290), [5.0, 4.0, 4.0 - 1e-6, 3.0]])
    lam = np.concatenate([lam, -lam[-6:]])
    M = matrix_from_eigenvalues(lam, rng=3)
    op = Operator.from_matvec(lambda v: M @ v, M.shape, dtype=np.float64, symmetric=True)
    res = eigsh(op, 3, tol=1e-10, rng=0, reorth="partial")
    ref = np.sort(np.linalg.eigvalsh(M))[::-1][:3]
    assert res.converged
    np.testing.assert_allclose(res.eigenvalues, ref, rtol=1e-10)
    _check_pairs(lambda X: M @ X, res, 1e-10, np.finfo(np.float64).eps)


def test_partial_float32_outliers_torch(monkeypatch):
    # a float32 torch operator with well separated outliers over a bulk: orthogonality
    # is lost within a few steps once the top pair converges (the estimate triggers)
    n = 100_000
    g = np.random.default_rng(0)
    d = (g.standard_normal(n) * 0.5).astype(np.float32)
    d[:6] = [1000.0, 700.0, 650.0, 500.0, 300.0, 200.0]
    op = _diag(d, "torch")
    calls = _counting(monkeypatch)
    full = eigsh(op, 4, tol=1e-5, rng=0, reorth="full", check_copies=False)
    n_full = len(calls)
    calls.clear()
    part = eigsh(op, 4, tol=1e-5, rng=0, reorth="partial", check_copies=False)
    assert full.converged and part.converged
    assert 0 < len(calls) < n_full  # it triggered, and made fewer passes than full
    ref = np.sort(d.astype(np.float64))[::-1][:4]
    e32 = float(np.finfo(np.float32).eps)
    np.testing.assert_allclose(part.eigenvalues, ref, rtol=1e-5)
    np.testing.assert_allclose(part.eigenvalues, full.eigenvalues, rtol=1e-5)
    assert part.eigenvectors.dtype == torch.float32
    _check_pairs(lambda X: d.astype(np.float64)[:, None] * X, part, 1e-5, e32)


def test_partial_poisson_with_restarts(monkeypatch):
    # 3-D Poisson 18^3 (n = 5832, above the lean size): many thick restarts, each on the
    # orthonormalised span of the semi-orthogonal basis
    A, lam = _poisson3d(18)
    op = as_operator(A)
    calls = _counting(monkeypatch)
    k, tol = 3, 1e-9
    full = eigsh(op, k, which="SA", tol=tol, ncv=16, rng=0, reorth="full",
                 check_copies=False)
    n_full = len(calls)
    calls.clear()
    part = eigsh(op, k, which="SA", tol=tol, ncv=16, rng=0, reorth="partial",
                 check_copies=False)
    assert part.converged and part.num_restarts > 3
    assert len(calls) < n_full / 4  # float64: few steps reach sqrt(eps) within a cycle
    # the grid's smallest eigenvalue is simple, the next ones triple: without the check
    # for copies one Krylov sequence sees one copy of each (full and partial alike)
    distinct = np.unique(np.round(lam, 12))[:k]
    np.testing.assert_allclose(part.eigenvalues, distinct, rtol=1e-8)
    np.testing.assert_allclose(part.eigenvalues, full.eigenvalues, rtol=1e-8)
    _check_pairs(lambda X: A @ X, part, tol, np.finfo(np.float64).eps)
    assert part.num_matvecs <= 1.1 * full.num_matvecs


def test_omega_triggers_and_keeps_semi_orthogonality():
    # a well separated top eigenvalue converges in a few steps; Paige: the new vectors
    # then regain a component along its Ritz vector, growing by about ||A|| / beta a step
    n, m = 50_000, 50
    d = np.random.default_rng(0).uniform(0.0, 1.0, n)
    d[:3] = [10.0, 5.0, 3.0]
    op = _diag(d)
    delta = np.sqrt(np.finfo(np.float64).eps)

    def run(threshold):
        B = Basis(op, m, as_rng(0), partial=True)
        B.omega.delta = threshold
        B.set_start(np.random.default_rng(1).standard_normal(n))
        worst, under = 0.0, 0.0
        for _ in range(m - 1):
            B.step()
            s = B.size + 1
            E = np.abs(B.V[:s] @ B.V[:s].T - np.eye(s))
            Om = np.abs(B.omega.est[:s, :s] - np.eye(s))
            worst = max(worst, float(E.max()))
            big = E > 1e-3 * delta
            if big.any():  # where the loss matters the estimate is not far below it
                under = max(under, float(np.max(E[big] / Om[big])))
        return B, worst, under

    plain, lost, _ = run(np.inf)  # the local recurrence only: orthogonality is lost
    assert plain.omega.full == 0 and lost > 1e-2
    B, worst, under = run(delta)
    assert 2 <= B.omega.full < m // 2  # triggered, in pairs, on fewer than half the steps
    assert worst <= 5 * delta  # semi-orthogonal throughout
    assert under <= 4.0  # the estimate tracks the true loss (within a small factor)


def test_gram_restart_gives_orthonormal_basis_and_projection():
    n, m = 20_000, 30
    d = np.random.default_rng(2).uniform(0.0, 1.0, n)
    d[:3] = [4.0, 3.5, 3.0]
    op = _diag(d)
    B = Basis(op, m, as_rng(0), partial=True)
    B.set_start(np.random.default_rng(3).standard_normal(n))
    B.advance(m)
    assert B.omega.full > 0  # the basis was only semi-orthogonal
    theta, Y = np.linalg.eigh(B.H[:m, :m])
    keep = np.argsort(-theta)[:10]
    kept = gram_restart(B, keep)
    s = B.size + 1
    V = B.V[:s]
    e = np.finfo(np.float64).eps
    assert np.max(np.abs(V @ V.T - np.eye(s))) <= 100 * e
    # H is the projection of A on the new basis (diagonal block and arrow), to rounding
    P = B.inv * (V[:-1] @ (d[:, None] * V[:-1].T))  # the run is on inv * A
    np.testing.assert_allclose(P, B.H[: s - 1, : s - 1], atol=100 * e * 4.0)
    arrow = B.inv * (V[:-1] @ (d * V[-1]))
    np.testing.assert_allclose(B.H[: s - 1, s - 1], arrow, atol=100 * e * 4.0)
    np.testing.assert_allclose(np.sort(kept), np.sort(theta[keep]), rtol=1e-12)
    assert B.asym <= 1e3 * e * 4.0 and B.loss > 1e3 * e


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_orthonormal_columns_against_numpy_qr(backend):
    g = np.random.default_rng(0)
    Q = np.linalg.qr(g.standard_normal((3000, 5)))[0]
    X = Q + 1e-4 * g.standard_normal((3000, 5))
    X = torch.from_numpy(X.copy()) if backend == "torch" else X.copy()
    out = np.asarray(orthonormal_columns(X))
    assert np.max(np.abs(out.T @ out - np.eye(5))) <= 1e-14
    # the same span, and the same vectors up to the sign of the R factor: X = Q R
    Qr, R = np.linalg.qr(np.asarray(X) if backend == "numpy" else X.numpy())
    np.testing.assert_allclose(np.abs(out.T @ Qr), np.eye(5), atol=1e-12)


def test_partial_copies_check_finds_double_eigenvalue():
    d = np.random.default_rng(5).uniform(0.0, 1.0, 8000)
    d[:3] = [2.0, 2.0, 1.5]  # a double top eigenvalue: one Krylov sequence sees one copy
    res = eigsh(_diag(d), 2, tol=1e-8, rng=0, reorth="partial")
    assert res.converged
    np.testing.assert_allclose(res.eigenvalues, [2.0, 2.0], rtol=1e-8)
    _check_pairs(lambda X: d[:, None] * X, res, 1e-8, np.finfo(np.float64).eps)


def test_auto_chooses_partial_where_the_passes_dominate(monkeypatch):
    d = np.linspace(0.0, 1.0, 8000)
    op = _diag(d)
    g = as_rng(0)
    assert make_basis(op, 40, g, reorth="auto").omega is None  # 40 n below STORE_LIMIT
    monkeypatch.setattr(basis_mod, "STORE_LIMIT", 1000)
    B = make_basis(op, 40, g, reorth="auto")
    assert B.omega is not None and B.W is None and B.lean is None
    # a small explicit matrix keeps its compiled lean path under "auto"
    small = as_operator(sp.diags(np.linspace(0, 1, 500)).tocsr())
    assert isinstance(make_basis(small, 40, g, reorth="auto"), LeanBasis)
    part = make_basis(small, 40, g, reorth="partial")
    assert not isinstance(part, LeanBasis) and part.omega is not None


def test_partial_small_explicit_matrix_matches_lean():
    A, lam = _poisson3d(8)  # n = 512: the compiled lean path under "auto"
    lean = eigsh(A, 2, tol=1e-10, rng=0, check_copies=False)
    part = eigsh(A, 2, tol=1e-10, rng=0, check_copies=False, reorth="partial")
    assert lean.converged and part.converged
    np.testing.assert_allclose(part.eigenvalues, lean.eigenvalues, rtol=1e-10)
    np.testing.assert_allclose(part.eigenvalues, lam[::-1][:2], rtol=1e-10)


def test_reorth_argument_errors():
    d = np.linspace(0.0, 1.0, 100)
    with pytest.raises(ValueError, match="reorth must be one of"):
        eigsh(_diag(d), 1, reorth="selective")
    with pytest.raises(TypeError, match="reorth"):
        eigsh(_diag(d), 1, reorth=1)
    with pytest.raises(ValueError, match="block_size=1"):
        eigsh(_diag(d), 1, reorth="partial", block_size=2)


def test_partial_memory_matches_the_formula():
    # without stored products: ncv + 2 k + 5 n-vectors (the Gram and the estimates are
    # (ncv + 1)^2 host numbers; the Ritz vectors' orthonormalisation one n-vector)
    import tracemalloc

    n, k, ncv = 40_000, 2, 12
    d = np.linspace(0.0, 1.0, n)
    d[-3:] = [1.02, 1.04, 1.06]  # small gaps: several restarts
    op = as_operator(sp.diags(d).tocsr())

    def call():
        return eigsh(op, k, ncv=ncv, rng=0, tol=1e-8, check_copies=False, reorth="partial",
                     max_matvecs=3000)

    res = call()
    assert res.num_restarts > 0 and res.converged
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        call()
        peak = (tracemalloc.get_traced_memory()[1] - base) / (8 * n)
    finally:
        tracemalloc.stop()
    assert 0.5 * ncv <= peak <= 1.2 * (ncv + 2 * k + 5), peak


@pytest.mark.parametrize("which", ["LA", "BE"])
def test_partial_after_breakdowns(which):
    # five distinct eigenvalues of multiplicity 2000: the Krylov space is invariant after
    # five steps, each breakdown continues from a random vector orthogonal to the basis
    d = np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], 2000)
    res = eigsh(_diag(d), 4, which=which, tol=1e-10, rng=0, reorth="partial")
    ref = [5.0] * 4 if which == "LA" else [1.0, 1.0, 5.0, 5.0]
    assert res.converged
    np.testing.assert_allclose(res.eigenvalues, ref, rtol=1e-10)
    _check_pairs(lambda X: d[:, None] * X, res, 1e-10, np.finfo(np.float64).eps)
