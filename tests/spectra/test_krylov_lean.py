"""The lean (small-n) projection kernel of eigsh against its plain NumPy twin."""

from __future__ import annotations

import numpy as np
import pytest

import spectra.krylov._basis as basis_mod
from spectra import eigsh
from spectra._numba.krylov import project_small
from spectra.testing import matrix_from_eigenvalues


def _project_twin(V, j, w, col, dgks):
    """NumPy twin of project_small: local couplings, CGS with the DGKS second pass."""
    w = w - col @ V[:j]
    alpha = V[j] @ w
    w = w - alpha * V[j]
    w2 = w @ w
    h = np.zeros(j + 1)
    for _ in range(2):
        hp = V[: j + 1] @ w
        w = w - hp @ V[: j + 1]
        h += hp
        if not (w2 - hp @ hp < dgks**2 * w2):
            break
        w2 -= hp @ hp
    h[j] += alpha
    return w, h, np.linalg.norm(w)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("j", [0, 1, 7])
def test_project_small_matches_twin(dtype, j):
    g = np.random.default_rng(j)
    n = 50
    V = np.linalg.qr(g.standard_normal((n, 10)))[0].T.astype(dtype).copy()
    col = np.zeros(j)
    if j:
        col[-1] = 0.7
    w = (g.standard_normal(n) + 3.0 * V[j]).astype(dtype)
    w_ref, h_ref, b_ref = _project_twin(V.astype(np.float64), j, w.astype(np.float64), col,
                                        0.7071)
    w_got = w.copy()
    h, b = project_small(V, j, w_got, col, 0.7071)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(h, h_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(b, b_ref, rtol=tol)
    np.testing.assert_allclose(w_got, w_ref, atol=tol)


def test_project_small_flags_non_finite():
    V = np.eye(4)
    w = np.array([np.nan, 1.0, 0.0, 0.0])
    _, b = project_small(V, 0, w, np.zeros(0), 0.7071)
    assert np.isnan(b)


def test_lean_and_blas_paths_agree(monkeypatch):
    A = matrix_from_eigenvalues(np.linspace(-1, 4, 300), rng=0)
    lean = eigsh(A, 3, tol=1e-10, rng=0)
    monkeypatch.setattr(basis_mod, "LEAN_N", 0)
    blas = eigsh(A, 3, tol=1e-10, rng=0)
    np.testing.assert_allclose(lean.eigenvalues, blas.eigenvalues, rtol=1e-12)
    assert abs(lean.num_matvecs - blas.num_matvecs) <= 3
